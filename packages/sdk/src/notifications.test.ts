// parseNotification against real envelopes built by the platform side's `sealNotification`, with
// freshly generated RSA-2048 keys: every accepted case went through real OAEP, AES and
// SHA256withRSA, and every refused case differs from an accepted one in one thing only.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { encodeBase64, sealNotification, type NotificationEnvelope } from '@sparkpay/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  SparkPayConfigError,
  SparkPayNotificationError,
  SparkPaySdkError,
  parseNotification,
  type NotificationFailure,
  type ParseNotificationOptions,
} from './index.js';

interface Pair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}
let merchant: Pair;
let platform: Pair;
let other: Pair;
const pem = (k: KeyObject) => k.export({ type: k.type === 'private' ? 'pkcs8' : 'spki', format: 'pem' }).toString();

beforeAll(() => {
  const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
  merchant = rsa();
  platform = rsa();
  other = rsa();
});

const APP_ID = 'app_test_1';

const standardPayload = {
  payment_order_no: 'P20250101000000000001',
  order_time: 1_735_689_600,
  pay_time: 1_735_689_700,
  completed_time: 0,
  closed_time: 0,
  pay_status: 'PAID',
  real_pay_amount: '10.5',
  total_amount: '10.50',
  merchant_order_currency: 'USDT',
  merchant_customer_no: 'M100000000001',
  merchant_order_no: 'shop-1001',
  request_no: 'order_1001',
  merchant_order_time: 1_735_689_500,
  merchant_order_desc: '一杯咖啡（大杯）— café ☕',
  extension: '{"k":"v"}',
  payments: [],
  notify_id: 'N20250101000001',
  notify_type: 'ORDER_PAID',
  notify_time: 1_735_689_710,
  sequence: 2,
};

const options = (over: Partial<ParseNotificationOptions> = {}): ParseNotificationOptions => ({
  merchantPrivateKey: merchant.privateKey,
  platformPublicKey: platform.publicKey,
  ...over,
});

function seal(
  payload: unknown = standardPayload,
  over: { appId?: string; serial?: string; signer?: KeyObject; encryptTo?: KeyObject; aesKey?: string } = {},
): NotificationEnvelope {
  const json = typeof payload === 'string' ? payload : JSON.stringify(payload);
  return sealNotification(json, {
    appId: over.appId ?? APP_ID,
    serial: over.serial ?? 'pk_1',
    merchantPublicKey: over.encryptTo ?? merchant.publicKey,
    platformPrivateKey: over.signer ?? platform.privateKey,
    aesKey: over.aesKey,
  });
}

function failure(raw: unknown, opts: ParseNotificationOptions = options()): SparkPayNotificationError {
  try {
    parseNotification(raw as object, opts);
  } catch (err) {
    if (err instanceof SparkPayNotificationError) return err;
    throw err;
  }
  throw new Error('parseNotification accepted the notification');
}

const kindOf = (raw: unknown, opts?: ParseNotificationOptions): NotificationFailure => failure(raw, opts).kind;

/** Replaces one Base64 character (not padding) with a different one. */
function flipBase64(text: string, index: number): string {
  const c = text[index] === 'A' ? 'B' : 'A';
  return text.slice(0, index) + c + text.slice(index + 1);
}

describe('parseNotification: authentic notifications', () => {
  it('returns the signed payload exactly, non-ASCII text included, from an object, a string, a Buffer or a Uint8Array', () => {
    const env = seal();
    const json = JSON.stringify(env);
    for (const raw of [env, json, Buffer.from(json, 'utf8'), new Uint8Array(Buffer.from(json, 'utf8'))]) {
      const payload = parseNotification(raw, options());
      expect(payload).toEqual(standardPayload);
      expect(payload.merchant_order_desc).toBe('一杯咖啡（大杯）— café ☕');
    }
  });

  it('returns a Pro payload with its pricing fields', () => {
    const { total_amount: _t, merchant_order_currency: _c, ...rest } = standardPayload;
    const pro = { ...rest, pricing_amount: '99', pricing_currency: 'USD', notify_type: 'ORDER_COMPLETED', sequence: 3 };
    const payload = parseNotification(seal(pro), options());
    expect(payload).toEqual(pro);
    expect('pricing_amount' in payload && payload.pricing_currency).toBe('USD');
  });

  it('accepts every documented notify_type', () => {
    for (const type of ['ORDER_PAID', 'ORDER_COMPLETED', 'ORDER_CLOSED', 'ORDER_EXCEPTION'] as const) {
      expect(parseNotification(seal({ ...standardPayload, notify_type: type }), options()).notify_type).toBe(type);
    }
  });

  it('accepts keys as PEM strings as well as KeyObjects', () => {
    const opts = options({ merchantPrivateKey: pem(merchant.privateKey), platformPublicKey: pem(platform.publicKey) });
    expect(parseNotification(seal(), opts).notify_id).toBe('N20250101000001');
  });

  it('ignores head.serial with a single platform key (the serial is not signed)', () => {
    expect(parseNotification(seal(standardPayload, { serial: 'anything' }), options()).sequence).toBe(2);
  });

  it('accepts any head.app_id when no appId is configured, and the configured one when it is', () => {
    expect(parseNotification(seal(standardPayload, { appId: 'someone_else' }), options()).notify_id).toBe('N20250101000001');
    expect(parseNotification(seal(), options({ appId: APP_ID })).notify_id).toBe('N20250101000001');
  });

  it('chooses the platform key named by head.serial from a key map', () => {
    const keys = { pk_old: other.publicKey, pk_new: pem(platform.publicKey) };
    expect(parseNotification(seal(standardPayload, { serial: 'pk_new' }), options({ platformPublicKey: keys })).sequence).toBe(2);
    expect(parseNotification(seal(standardPayload, { serial: 'pk_old', signer: other.privateKey }), options({ platformPublicKey: keys })).sequence).toBe(2);
    // Signed by the platform key but claiming the other serial: verified with the other key, refused.
    expect(kindOf(seal(standardPayload, { serial: 'pk_old' }), options({ platformPublicKey: keys }))).toBe('SIGNATURE');
  });
});

describe('parseNotification: refused notifications', () => {
  it('refuses a body changed after sealing (SIGNATURE), leaving the padding intact', () => {
    const env = seal();
    // The first ciphertext block only garbles plaintext blocks 1–2; the padding (last block) survives.
    expect(kindOf({ ...env, body: flipBase64(env.body, 3) })).toBe('SIGNATURE');
  });

  it('refuses a body whose padding no longer decrypts (BODY_DECRYPT)', () => {
    const env = seal();
    expect(kindOf({ ...env, body: env.body.slice(0, -24) + env.body.slice(-8) })).toBe('BODY_DECRYPT');
    expect(kindOf({ ...env, body: 'not base64 at all!' })).toBe('BODY_DECRYPT');
  });

  it('refuses a changed signature (SIGNATURE)', () => {
    const env = seal();
    expect(kindOf({ ...env, head: { ...env.head, sign: flipBase64(env.head.sign, 10) } })).toBe('SIGNATURE');
    expect(kindOf({ ...env, head: { ...env.head, sign: seal({ ...standardPayload, sequence: 9 }).head.sign } })).toBe('SIGNATURE');
  });

  it('refuses an aes_key taken from another notification', () => {
    const a = seal(standardPayload, { aesKey: 'Ab3dEf6hIj9lMn2pQr5tUv8xYz1B4C7D' });
    const b = seal(standardPayload, { aesKey: 'Zy9xWv7uTs5rQp3oNm1lKj8iHg6fEd4C' });
    expect(parseNotification(a, options()).notify_id).toBe('N20250101000001');
    const kind = kindOf({ ...a, head: { ...a.head, aes_key: b.head.aes_key } });
    expect(['BODY_DECRYPT', 'SIGNATURE']).toContain(kind);
  });

  it('refuses a notification encrypted to another merchant key, or opened with the wrong one (KEY_DECRYPT)', () => {
    expect(kindOf(seal(standardPayload, { encryptTo: other.publicKey }))).toBe('KEY_DECRYPT');
    expect(kindOf(seal(), options({ merchantPrivateKey: other.privateKey }))).toBe('KEY_DECRYPT');
    const env = seal();
    expect(kindOf({ ...env, head: { ...env.head, aes_key: encodeBase64(Buffer.alloc(256, 7)) } })).toBe('KEY_DECRYPT');
  });

  it('refuses a notification signed by another key, or checked with the wrong platform key (SIGNATURE)', () => {
    expect(kindOf(seal(standardPayload, { signer: other.privateKey }))).toBe('SIGNATURE');
    expect(kindOf(seal(), options({ platformPublicKey: other.publicKey }))).toBe('SIGNATURE');
  });

  it('refuses a serial that names no configured key when platform keys are a map (UNKNOWN_SERIAL)', () => {
    const err = failure(seal(standardPayload, { serial: 'pk_9' }), options({ platformPublicKey: { pk_1: platform.publicKey } }));
    expect(err.kind).toBe('UNKNOWN_SERIAL');
    expect(err.message).toContain('"pk_9"');
  });

  it('refuses a head.app_id other than the configured appId, even when authentic (APP_ID_MISMATCH)', () => {
    const err = failure(seal(standardPayload, { appId: 'app_other' }), options({ appId: APP_ID }));
    expect(err.kind).toBe('APP_ID_MISMATCH');
    expect(err.message).toContain('"app_other"');
  });

  it('refuses what is not a notification envelope (MALFORMED)', () => {
    const env = seal();
    const cases: unknown[] = [
      '',
      'not json',
      '{"head":',
      Buffer.from([0x7b, 0xff, 0xfe, 0x7d]),
      '[]',
      'null',
      42,
      null,
      {},
      { body: env.body },
      { head: 'x', body: env.body },
      { head: { ...env.head, sign: 5 }, body: env.body },
      { head: { ...env.head, serial: undefined }, body: env.body },
      { head: { ...env.head, app_id: null }, body: env.body },
      { head: { ...env.head, charset: 'GBK' }, body: env.body },
      { head: env.head },
      { head: env.head, body: 12 },
    ];
    for (const raw of cases) expect([raw, kindOf(raw)]).toEqual([raw, 'MALFORMED']);
  });

  it('refuses an authentic payload that is not JSON (MALFORMED)', () => {
    expect(kindOf(seal('notify_id=N1&sequence=1'))).toBe('MALFORMED');
  });

  it('refuses an authentic payload without the fields a receiver relies on (BAD_PAYLOAD)', () => {
    const { notify_id: _n, ...withoutNotifyId } = standardPayload;
    const { payment_order_no: _p, ...withoutOrderNo } = standardPayload;
    const bad: unknown[] = [
      withoutNotifyId,
      { ...standardPayload, notify_id: '' },
      { ...standardPayload, notify_id: 17 },
      { ...standardPayload, notify_type: 'ORDER_REFUNDED' },
      { ...standardPayload, notify_type: undefined },
      { ...standardPayload, sequence: 1.5 },
      { ...standardPayload, sequence: '3' },
      { ...standardPayload, sequence: -1 },
      { ...standardPayload, notify_time: '1735689710' },
      { ...standardPayload, notify_time: undefined },
      withoutOrderNo,
      [standardPayload],
      'a string',
      null,
    ];
    for (const payload of bad) {
      const err = failure(seal(JSON.stringify(payload)));
      expect([payload, err.kind]).toEqual([payload, 'BAD_PAYLOAD']);
    }
    expect(failure(seal(withoutNotifyId)).message).toContain('notify_id');
  });

  it('throws SparkPayNotificationError, a SparkPaySdkError, whose messages carry no key material', () => {
    const keyText = [pem(merchant.privateKey), pem(platform.publicKey), pem(other.privateKey)]
      .flatMap((p) => p.split('\n').filter((line) => line.length > 40));
    const errors = [
      failure(seal(), options({ merchantPrivateKey: other.privateKey })),
      failure(seal(), options({ platformPublicKey: other.publicKey })),
      failure(seal(standardPayload, { serial: 'pk_9' }), options({ platformPublicKey: { pk_1: platform.publicKey } })),
      failure('not json'),
    ];
    for (const err of errors) {
      expect(err).toBeInstanceOf(SparkPaySdkError);
      expect(err.name).toBe('SparkPayNotificationError');
      const text = `${err.message} ${String(err.cause ?? '')} ${err.stack ?? ''}`;
      for (const line of keyText) expect(text).not.toContain(line);
    }
  });

  it('throws SparkPayConfigError for an unusable key or appId option, before looking at the body', () => {
    const env = seal();
    expect(() => parseNotification(env, options({ merchantPrivateKey: 'not a key' }))).toThrow(SparkPayConfigError);
    expect(() => parseNotification(env, options({ merchantPrivateKey: platform.publicKey }))).toThrow(SparkPayConfigError);
    expect(() => parseNotification(env, options({ platformPublicKey: merchant.privateKey }))).toThrow(SparkPayConfigError);
    expect(() => parseNotification(env, options({ platformPublicKey: {} }))).toThrow(SparkPayConfigError);
    expect(() => parseNotification(env, options({ appId: '' }))).toThrow(SparkPayConfigError);
  });
});
