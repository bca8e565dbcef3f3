import { describe, expect, it } from 'vitest';
import {
  NotificationError,
  decodeBase64,
  encodeBase64,
  generateAesKey,
  generateRsaKeyPair,
  openNotification,
  parsePrivateKey,
  parsePublicKey,
  sealNotification,
  type NotificationEnvelope,
} from './index.js';
import { constants, createCipheriv, publicEncrypt } from 'node:crypto';

const merchantPair = generateRsaKeyPair();
const platformPair = generateRsaKeyPair();
const merchantPrivateKey = parsePrivateKey(merchantPair.privateKeyPem);
const merchantPublicKey = parsePublicKey(merchantPair.publicKeyPem);
const platformPrivateKey = parsePrivateKey(platformPair.privateKeyPem);
const platformPublicKey = parsePublicKey(platformPair.publicKeyPem);
const openOpts = { merchantPrivateKey, platformPublicKey };

// Long enough for three AES blocks, so tampering with the first block leaves the padding intact.
const payloadJson = JSON.stringify({
  notify_id: 'N20250101000001',
  notify_type: 'ORDER_PAID',
  pay_status: 'PAID',
  total_amount: '10.5',
  merchant_order_desc: '一杯咖啡',
  sequence: 3,
});

const seal = (aesKey?: string): NotificationEnvelope =>
  sealNotification(payloadJson, { appId: 'app_1', serial: 'S1', merchantPublicKey, platformPrivateKey, aesKey });

function kindOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof NotificationError) return err.kind;
    throw err;
  }
  return 'NO ERROR';
}

/** Builds an envelope by hand, so that the AES key content itself can be chosen. */
function handMade(aesKey: Buffer, keyForAes = aesKey): NotificationEnvelope {
  const good = seal();
  const cipher = createCipheriv('aes-256-cbc', keyForAes, keyForAes.subarray(0, 16));
  const body = Buffer.concat([cipher.update(payloadJson, 'utf8'), cipher.final()]);
  const encKey = publicEncrypt({ key: merchantPublicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, aesKey);
  return { head: { ...good.head, aes_key: encodeBase64(encKey) }, body: encodeBase64(body) };
}

describe('sealNotification / openNotification', () => {
  it('round-trips the payload, app id and serial, from an object, a JSON string or a Buffer', () => {
    const env = seal();
    expect(env.head.charset).toBe('UTF-8');
    const expected = { payloadJson, payload: JSON.parse(payloadJson), appId: 'app_1', serial: 'S1' };
    expect(openNotification(env, openOpts)).toEqual(expected);
    expect(openNotification(JSON.stringify(env), openOpts)).toEqual(expected);
    expect(openNotification(Buffer.from(JSON.stringify(env)), openOpts)).toEqual(expected);
  });

  it('uses a fresh AES key each time unless one is given', () => {
    expect(seal().body).not.toBe(seal().body);
    const key = 'Ab3dEf6hIj9lMn2pQr5tUv8xYz1B4C7D';
    expect(seal(key).body).toBe(seal(key).body);
  });

  it('refuses to seal with an AES key that is not 32 characters of [A-Za-z0-9]', () => {
    for (const bad of ['short', `${'a'.repeat(31)}-`, 'a'.repeat(33), `${'a'.repeat(31)}é`]) {
      expect(() => seal(bad)).toThrow(RangeError);
    }
  });

  it('is deterministic with injected randomness except for the OAEP-encrypted key', () => {
    const fixed = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7) % 248);
    const aesKey = generateAesKey(fixed);
    const a = seal(aesKey);
    const b = seal(aesKey);
    expect(a.body).toBe(b.body);
    expect(a.head.sign).toBe(b.head.sign);
    expect(a.head.aes_key).not.toBe(b.head.aes_key); // OAEP is randomised by design
    expect(openNotification(a, openOpts).payloadJson).toBe(payloadJson);
    expect(openNotification(b, openOpts).payloadJson).toBe(payloadJson);
  });
});

describe('openNotification failures', () => {
  const env = seal();
  const withHead = (patch: Partial<NotificationEnvelope['head']>): NotificationEnvelope => ({ ...env, head: { ...env.head, ...patch } });
  const flip = (b64: string, index: number): string => {
    const bytes = decodeBase64(b64) ?? Buffer.alloc(0);
    bytes[index] = (bytes[index] ?? 0) ^ 0x01;
    return encodeBase64(bytes);
  };

  it.each([
    ['not JSON', '{"head":'],
    ['JSON null', 'null'],
    ['an array', []],
    ['no head', { body: env.body }],
    ['a head that is a string', { head: 'x', body: env.body }],
    ['no body', { head: env.head }],
    ['a numeric body', { head: env.head, body: 1 }],
    ['a missing sign', { head: { ...env.head, sign: undefined }, body: env.body }],
    ['a numeric app_id', { head: { ...env.head, app_id: 7 }, body: env.body }],
    ['another charset', { head: { ...env.head, charset: 'GBK' }, body: env.body }],
  ])('reports MALFORMED for %s', (_name, input) => {
    expect(kindOf(() => openNotification(input, openOpts))).toBe('MALFORMED');
  });

  it('reports KEY_DECRYPT for a tampered, garbled or foreign aes_key', () => {
    expect(kindOf(() => openNotification(withHead({ aes_key: flip(env.head.aes_key, 10) }), openOpts))).toBe('KEY_DECRYPT');
    expect(kindOf(() => openNotification(withHead({ aes_key: '!!' }), openOpts))).toBe('KEY_DECRYPT');
    expect(kindOf(() => openNotification(withHead({ aes_key: '' }), openOpts))).toBe('KEY_DECRYPT');
    const otherMerchant = parsePrivateKey(generateRsaKeyPair().privateKeyPem);
    expect(kindOf(() => openNotification(env, { ...openOpts, merchantPrivateKey: otherMerchant }))).toBe('KEY_DECRYPT');
  });

  it('reports KEY_DECRYPT when the decrypted key is not 32 characters of [A-Za-z0-9]', () => {
    const key32WithDash = Buffer.from('Ab3dEf6hIj9lMn2pQr5tUv8xYz1B4C7-', 'ascii');
    expect(kindOf(() => openNotification(handMade(key32WithDash), openOpts))).toBe('KEY_DECRYPT');
    const binaryKey = Buffer.alloc(32, 0xc3);
    expect(kindOf(() => openNotification(handMade(binaryKey), openOpts))).toBe('KEY_DECRYPT');
    const good = Buffer.from('Ab3dEf6hIj9lMn2pQr5tUv8xYz1B4C7D', 'ascii');
    expect(openNotification(handMade(good), openOpts).payloadJson).toBe(payloadJson);
  });

  it('reports BODY_DECRYPT for a body that is not Base64, not whole blocks, or badly padded', () => {
    expect(kindOf(() => openNotification({ ...env, body: 'not base64!' }, openOpts))).toBe('BODY_DECRYPT');
    expect(kindOf(() => openNotification({ ...env, body: encodeBase64(Buffer.alloc(15)) }, openOpts))).toBe('BODY_DECRYPT');
    expect(kindOf(() => openNotification({ ...env, body: '' }, openOpts))).toBe('BODY_DECRYPT');
    // Decrypting with a different key garbles the final block, so its padding cannot check out
    // except by a 1-in-256 chance; this key is fixed and checked to fail.
    const otherKey = Buffer.from('Zz9yXw8vUt7sRq6pOn5mLk4jIh3gFe2d', 'ascii');
    const good = Buffer.from('Ab3dEf6hIj9lMn2pQr5tUv8xYz1B4C7D', 'ascii');
    expect(kindOf(() => openNotification(handMade(good, otherKey), openOpts))).toBe('BODY_DECRYPT');
  });

  it('reports SIGNATURE when the body decrypts to other bytes, or the sign is wrong', () => {
    expect(kindOf(() => openNotification({ ...env, body: flip(env.body, 0) }, openOpts))).toBe('SIGNATURE');
    expect(kindOf(() => openNotification(withHead({ sign: flip(env.head.sign, 5) }), openOpts))).toBe('SIGNATURE');
    expect(kindOf(() => openNotification(withHead({ sign: 'garbage' }), openOpts))).toBe('SIGNATURE');
    const otherPlatform = parsePublicKey(generateRsaKeyPair().publicKeyPem);
    expect(kindOf(() => openNotification(env, { ...openOpts, platformPublicKey: otherPlatform }))).toBe('SIGNATURE');
  });

  it('reports MALFORMED for a correctly signed payload that is not JSON', () => {
    const sealed = sealNotification('not json', { appId: 'a', serial: 's', merchantPublicKey, platformPrivateKey });
    expect(kindOf(() => openNotification(sealed, openOpts))).toBe('MALFORMED');
  });

  it('does not authenticate app_id or serial, which the caller must check', () => {
    expect(openNotification(withHead({ app_id: 'other', serial: 'S2' }), openOpts)).toMatchObject({ appId: 'other', serial: 'S2' });
  });

  it('throws NotificationError instances with a name and message', () => {
    try {
      openNotification('x', openOpts);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(NotificationError);
      expect(err).toBeInstanceOf(Error);
      expect((err as NotificationError).name).toBe('NotificationError');
    }
  });
});

describe('generateAesKey', () => {
  it('makes 32 characters of [A-Za-z0-9]', () => {
    for (let i = 0; i < 50; i++) expect(generateAesKey()).toMatch(/^[A-Za-z0-9]{32}$/);
  });

  it('maps injected bytes without modulo bias, skipping bytes >= 248', () => {
    const bytes = [248, 255, 0, 61, 62, 247, ...Array.from({ length: 100 }, () => 1)];
    let offset = 0;
    const source = (n: number): Uint8Array => {
      const out = Uint8Array.from(bytes.slice(offset, offset + n));
      offset += n;
      return out;
    };
    expect(generateAesKey(source)).toBe(`A9A9${'B'.repeat(28)}`);
  });

  it('fails instead of looping forever on a source that only yields rejected bytes', () => {
    expect(() => generateAesKey((n) => new Uint8Array(n).fill(250))).toThrow(/random source/);
  });
});
