// Construction-time checks: a misconfigured client fails when it is built, not on a checkout.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { signMessage, verifyMessage } from '@sparkpay/protocol';
import { describe, expect, it } from 'vitest';
import {
  SDK_VERSION,
  SparkPayApiError,
  SparkPayClient,
  SparkPayConfigError,
  SparkPayNetworkError,
  SparkPayResponseError,
  SparkPayResponseSignatureError,
  SparkPaySdkError,
  type SparkPayClientOptions,
} from './index.js';

const merchant = generateKeyPairSync('rsa', { modulusLength: 2048 });
const platform = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = (k: KeyObject) => k.export({ type: k.type === 'private' ? 'pkcs8' : 'spki', format: 'pem' }).toString();
/** The Base64 body alone, as merchants often paste it from the console. */
const bare = (k: KeyObject) => pem(k).replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');

const valid: SparkPayClientOptions = {
  baseUrl: 'https://pay.example.com',
  appId: 'app_1',
  merchantPrivateKey: pem(merchant.privateKey),
  platformPublicKey: pem(platform.publicKey),
};

const configError = (override: Partial<SparkPayClientOptions>) => () => new SparkPayClient({ ...valid, ...override });

describe('SparkPayClient options', () => {
  it('accepts keys as PEM, as bare Base64 and as KeyObjects, and uses them both ways', async () => {
    for (const [merchantPrivateKey, platformPublicKey] of [
      [bare(merchant.privateKey), bare(platform.publicKey)],
      [merchant.privateKey, platform.publicKey],
    ] as const) {
      let requestVerified = false;
      // A stand-in platform behind the `fetch` option: checks the request, signs its answer.
      const fetch: typeof globalThis.fetch = async (_url, init) => {
        const h = new Headers(init?.headers);
        const body = Buffer.from(init?.body as Uint8Array);
        requestVerified = verifyMessage(merchant.publicKey, h.get('sparkpay-timestamp') ?? '', h.get('sparkpay-nonce') ?? '', body, h.get('sparkpay-signature') ?? '');
        const answer = '{"code":0,"message":"success","data":{"request_no":"R1","merchant_no":"M1","pay_status":"CLOSED"}}';
        const ts = String(Math.floor(Date.now() / 1000));
        return new Response(answer, {
          headers: { 'Sparkpay-Timestamp': ts, 'Sparkpay-Nonce': 'abc', 'Sparkpay-Signature': signMessage(platform.privateKey, ts, 'abc', answer) },
        });
      };
      const client = new SparkPayClient({ ...valid, merchantPrivateKey, platformPublicKey, fetch });
      await expect(client.closeOrder({ merchant_no: 'M1', request_no: 'R1' })).resolves.toMatchObject({ pay_status: 'CLOSED' });
      expect(requestVerified).toBe(true);
    }
  });

  it('refuses unusable keys with SparkPayConfigError', () => {
    expect(configError({ merchantPrivateKey: 'not a key' })).toThrow(SparkPayConfigError);
    expect(configError({ merchantPrivateKey: '' })).toThrow(SparkPayConfigError);
    expect(configError({ merchantPrivateKey: pem(merchant.publicKey) })).toThrow(SparkPayConfigError);
    expect(configError({ merchantPrivateKey: merchant.publicKey })).toThrow(/RSA private key/);
    expect(configError({ merchantPrivateKey: ec.privateKey })).toThrow(/RSA private key/);
    expect(configError({ platformPublicKey: pem(platform.privateKey) })).toThrow(SparkPayConfigError);
    expect(configError({ platformPublicKey: platform.privateKey })).toThrow(/RSA public key/);
    expect(configError({ platformPublicKey: {} })).toThrow(/empty/);
    expect(configError({ platformPublicKey: { pk_1: 'garbage' } })).toThrow(/platformPublicKey\["pk_1"\]/);
  });

  it('refuses a bad base URL, AppID, timeout or clock window', () => {
    expect(configError({ baseUrl: 'pay.example.com' })).toThrow(SparkPayConfigError);
    expect(configError({ baseUrl: 'ftp://pay.example.com' })).toThrow(/http/);
    expect(configError({ baseUrl: 'https://pay.example.com/?x=1' })).toThrow(/query/);
    expect(configError({ appId: '' })).toThrow(/appId/);
    expect(configError({ timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(configError({ maxClockSkewSeconds: -1 })).toThrow(/maxClockSkewSeconds/);
    expect(configError({ userAgent: ' ' })).toThrow(/userAgent/);
  });

  it('reports its version, equal to the package version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(SDK_VERSION).toBe(pkg.version);
  });

  it('throws only SparkPaySdkError subclasses, each with its own name', () => {
    const ctx = { method: 'GET', path: '/x' };
    const errors = [
      new SparkPayApiError({ ...ctx, code: 43005, message: 'm', httpStatus: 404, requestId: undefined }),
      new SparkPayResponseSignatureError('m', { ...ctx, reason: 'BAD_SIGNATURE', httpStatus: 200, requestId: undefined, serial: undefined }),
      new SparkPayResponseError('m', { ...ctx, httpStatus: 200, requestId: undefined }),
      new SparkPayNetworkError('m', { ...ctx, timedOut: false }),
      new SparkPayConfigError('m'),
    ];
    for (const e of errors) expect(e).toBeInstanceOf(SparkPaySdkError);
    expect(errors.map((e) => e.name)).toEqual([
      'SparkPayApiError', 'SparkPayResponseSignatureError', 'SparkPayResponseError', 'SparkPayNetworkError', 'SparkPayConfigError',
    ]);
  });
});
