// Independent vectors: the openssl command line produces keys, signatures and envelopes, and
// checks ours, so the implementation is not only tested against itself.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertRsa2048,
  decodeBase64,
  encodeBase64,
  openNotification,
  parsePrivateKey,
  parsePublicKey,
  sealNotification,
  signMessage,
  stringToSign,
  verifyMessage,
} from './index.js';

let dir: string;

function openssl(args: string[], input?: Buffer | string): Buffer {
  try {
    return execFileSync('openssl', args, { cwd: dir, input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer };
    if (e.code === 'ENOENT') throw new Error('these tests need the `openssl` command line on PATH');
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString() ?? String(err)}`);
  }
}

const file = (name: string): string => join(dir, name);
const write = (name: string, data: Buffer | string): string => {
  writeFileSync(file(name), data);
  return file(name);
};
const read = (name: string): Buffer => readFileSync(file(name));

/** Makes an RSA key pair with openssl: PKCS#8 private, SPKI public, PKCS#1 private. */
function opensslKeyPair(name: string): { pkcs8: string; spki: string; pkcs1: string } {
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', `${name}.key`]);
  openssl(['pkey', '-in', `${name}.key`, '-pubout', '-out', `${name}.pub`]);
  openssl(['rsa', '-in', `${name}.key`, '-traditional', '-out', `${name}.rsa`]);
  const text = (ext: string) => read(`${name}.${ext}`).toString('utf8');
  return { pkcs8: text('key'), spki: text('pub'), pkcs1: text('rsa') };
}

let merchant: ReturnType<typeof opensslKeyPair>;
let platform: ReturnType<typeof opensslKeyPair>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sparkpay-openssl-'));
  merchant = opensslKeyPair('merchant');
  platform = opensslKeyPair('platform');
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const timestamp = '1735689600';
const nonce = 'Zq3kX9b2LmN8pR4tV6wY1aC5eG7iK0oS';
const body = '{"merchant_no":"M100001","request_no":"r_1","total_amount":"10.50","desc":"咖啡 ☕"}';

describe('keys made by openssl', () => {
  it('parses the genpkey PKCS#8 key, its PKCS#1 (-traditional) form and the -pubout SPKI key', () => {
    const pkcs8 = parsePrivateKey(merchant.pkcs8);
    const pkcs1 = parsePrivateKey(merchant.pkcs1);
    const spki = parsePublicKey(merchant.spki);
    expect(merchant.pkcs1).toContain('BEGIN RSA PRIVATE KEY');
    for (const key of [pkcs8, pkcs1, spki]) assertRsa2048(key);
    expect(pkcs1.export({ type: 'pkcs8', format: 'pem' })).toBe(pkcs8.export({ type: 'pkcs8', format: 'pem' }));
  });
});

describe('request signatures against openssl dgst', () => {
  it('accepts a signature made by openssl dgst -sha256 -sign over timestamp\\nnonce\\nbody\\n', () => {
    write('message.bin', stringToSign(timestamp, nonce, body));
    const sig = openssl(['dgst', '-sha256', '-sign', 'merchant.key', 'message.bin']);
    expect(verifyMessage(parsePublicKey(merchant.spki), timestamp, nonce, body, encodeBase64(sig))).toBe(true);
    expect(verifyMessage(parsePublicKey(merchant.spki), timestamp, nonce, `${body} `, encodeBase64(sig))).toBe(false);
  });

  it('produces signatures that openssl dgst -verify accepts, byte-for-byte equal to openssl’s', () => {
    const message = write('message2.bin', `${timestamp}\n${nonce}\n${body}\n`);
    const ours = signMessage(parsePrivateKey(merchant.pkcs8), timestamp, nonce, body);
    write('ours.sig', decodeBase64(ours) ?? Buffer.alloc(0));
    const out = openssl(['dgst', '-sha256', '-verify', 'merchant.pub', '-signature', 'ours.sig', message]);
    expect(out.toString()).toMatch(/Verified OK/);
    const theirs = openssl(['dgst', '-sha256', '-sign', 'merchant.key', message]);
    expect(ours).toBe(encodeBase64(theirs));
  });

  it('signs the GET form timestamp\\nnonce\\n\\n identically to openssl', () => {
    write('get.bin', `${timestamp}\n${nonce}\n\n`);
    const theirs = openssl(['dgst', '-sha256', '-sign', 'merchant.rsa', 'get.bin']);
    expect(signMessage(parsePrivateKey(merchant.pkcs1), timestamp, nonce, '')).toBe(encodeBase64(theirs));
  });
});

describe('notification envelope against openssl', () => {
  const payloadJson = '{"notify_id":"N1","notify_type":"ORDER_PAID","pay_status":"PAID","total_amount":"10.5","note":"支付成功"}';

  it('seals an envelope that openssl alone can open (pkeyutl OAEP-SHA256, enc -aes-256-cbc, dgst -verify)', () => {
    const env = sealNotification(payloadJson, {
      appId: 'app_1',
      serial: 'S1',
      merchantPublicKey: parsePublicKey(merchant.spki),
      platformPrivateKey: parsePrivateKey(platform.pkcs8),
    });
    write('aes_key.enc', decodeBase64(env.head.aes_key) ?? Buffer.alloc(0));
    const aesKey = openssl([
      'pkeyutl', '-decrypt', '-inkey', 'merchant.key', '-in', 'aes_key.enc',
      '-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', 'rsa_oaep_md:sha256', '-pkeyopt', 'rsa_mgf1_md:sha256',
    ]).toString('latin1');
    expect(aesKey).toMatch(/^[A-Za-z0-9]{32}$/);

    write('body.enc', decodeBase64(env.body) ?? Buffer.alloc(0));
    const keyHex = Buffer.from(aesKey, 'ascii').toString('hex');
    const ivHex = Buffer.from(aesKey.slice(0, 16), 'ascii').toString('hex');
    const plain = openssl(['enc', '-d', '-aes-256-cbc', '-K', keyHex, '-iv', ivHex, '-in', 'body.enc']);
    expect(plain.toString('utf8')).toBe(payloadJson);

    write('payload.json', plain);
    write('notify.sig', decodeBase64(env.head.sign) ?? Buffer.alloc(0));
    const out = openssl(['dgst', '-sha256', '-verify', 'platform.pub', '-signature', 'notify.sig', 'payload.json']);
    expect(out.toString()).toMatch(/Verified OK/);
  });

  it('opens an envelope built by openssl (pkeyutl -encrypt OAEP-SHA256, enc -aes-256-cbc, dgst -sign)', () => {
    const aesKey = 'Ab3dEf6hIj9lMn2pQr5tUv8xYz1B4C7D';
    write('key.txt', aesKey);
    const encKey = openssl([
      'pkeyutl', '-encrypt', '-pubin', '-inkey', 'merchant.pub', '-in', 'key.txt',
      '-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', 'rsa_oaep_md:sha256', '-pkeyopt', 'rsa_mgf1_md:sha256',
    ]);
    write('payload2.json', payloadJson);
    const keyHex = Buffer.from(aesKey, 'ascii').toString('hex');
    const ivHex = Buffer.from(aesKey.slice(0, 16), 'ascii').toString('hex');
    const ciphertext = openssl(['enc', '-aes-256-cbc', '-K', keyHex, '-iv', ivHex, '-in', 'payload2.json']);
    const sign = openssl(['dgst', '-sha256', '-sign', 'platform.key', 'payload2.json']);
    const raw = JSON.stringify({
      head: { charset: 'UTF-8', app_id: 'app_9', aes_key: encodeBase64(encKey), sign: encodeBase64(sign), serial: 'S9' },
      body: encodeBase64(ciphertext),
    });

    const opened = openNotification(raw, {
      merchantPrivateKey: parsePrivateKey(merchant.pkcs1),
      platformPublicKey: parsePublicKey(platform.spki),
    });
    expect(opened).toEqual({ payloadJson, payload: JSON.parse(payloadJson), appId: 'app_9', serial: 'S9' });
  });

  it('encrypts the body exactly as openssl enc does for the same key (AES-256-CBC, PKCS#7, IV = key[0..16])', () => {
    const aesKey = 'K0k1K2k3K4k5K6k7K8k9LaLbLcLdLeLf';
    const env = sealNotification(payloadJson, {
      appId: 'a',
      serial: 's',
      aesKey,
      merchantPublicKey: parsePublicKey(merchant.spki),
      platformPrivateKey: parsePrivateKey(platform.pkcs8),
    });
    const keyHex = Buffer.from(aesKey, 'ascii').toString('hex');
    const ivHex = Buffer.from(aesKey.slice(0, 16), 'ascii').toString('hex');
    const theirs = openssl(['enc', '-aes-256-cbc', '-K', keyHex, '-iv', ivHex], payloadJson);
    expect(env.body).toBe(encodeBase64(theirs));
  });
});
