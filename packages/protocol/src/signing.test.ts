import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  InvalidKeyError,
  generateRsaKeyPair,
  parsePrivateKey,
  parsePublicKey,
  signMessage,
  signPayload,
  stringToSign,
  verifyMessage,
  verifyPayload,
} from './index.js';

const keys = generateRsaKeyPair();
const priv = parsePrivateKey(keys.privateKeyPem);
const pub = parsePublicKey(keys.publicKeyPem);
const other = parsePublicKey(generateRsaKeyPair().publicKeyPem);

const ts = '1735689600';
const nonce = 'abcDEF123_-';
const body = '{"b":1, "a":"x"}';
const sig = signMessage(priv, ts, nonce, body);

describe('stringToSign', () => {
  it('joins timestamp, nonce and the exact body bytes, each ending in LF', () => {
    expect(stringToSign(ts, nonce, body).toString('utf8')).toBe(`${ts}\n${nonce}\n${body}\n`);
    expect(stringToSign(ts, nonce, '').toString('utf8')).toBe(`${ts}\n${nonce}\n\n`);
    const raw = Uint8Array.from([0xe4, 0xbd, 0xa0, 0xff]);
    expect(stringToSign('1', 'n', raw)).toEqual(Buffer.concat([Buffer.from('1\nn\n'), raw, Buffer.from('\n')]));
  });
});

describe('signMessage / verifyMessage', () => {
  it('verifies its own padded Base64 signature, from a string or the same bytes', () => {
    expect(sig).toMatch(/^[A-Za-z0-9+/]{342}==$/);
    expect(verifyMessage(pub, ts, nonce, body, sig)).toBe(true);
    expect(verifyMessage(pub, ts, nonce, Buffer.from(body), sig)).toBe(true);
    expect(verifyMessage(priv, ts, nonce, body, sig)).toBe(true);
  });

  it('is deterministic (PKCS#1 v1.5)', () => {
    expect(signMessage(priv, ts, nonce, body)).toBe(sig);
  });

  it('accepts the signature without its Base64 padding', () => {
    expect(verifyMessage(pub, ts, nonce, body, sig.replace(/=+$/, ''))).toBe(true);
  });

  it('rejects an altered body, timestamp or nonce', () => {
    expect(verifyMessage(pub, ts, nonce, '{"a":"x","b":1}', sig)).toBe(false);
    expect(verifyMessage(pub, ts, nonce, `${body}\n`, sig)).toBe(false);
    expect(verifyMessage(pub, '1735689601', nonce, body, sig)).toBe(false);
    expect(verifyMessage(pub, ts, 'abcDEF123_x', body, sig)).toBe(false);
    // A nonce smuggled into the timestamp header yields a different string to sign.
    expect(verifyMessage(pub, `${ts}\n${nonce}`, '', body, sig)).toBe(false);
  });

  it('rejects a signature made with another key', () => {
    expect(verifyMessage(other, ts, nonce, body, sig)).toBe(false);
  });

  it.each([
    ['empty', ''],
    ['not Base64', '!!!!'],
    ['URL-safe alphabet', sig.replace(/\+/g, '-').replace(/\//g, '_')],
    ['with whitespace', `${sig.slice(0, 10)} ${sig.slice(10)}`],
    ['truncated', sig.slice(0, -8)],
    ['too long', `${sig.replace(/=+$/, '')}AAAA`],
    ['one bit flipped', (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1)],
    ['all zero bytes', Buffer.alloc(256).toString('base64')],
    ['all 0xff bytes', Buffer.alloc(256, 0xff).toString('base64')],
  ])('returns false without throwing for a %s signature', (_name, bad) => {
    expect(verifyMessage(pub, ts, nonce, body, bad)).toBe(false);
  });

  it('returns false for a non-string signature or a non-RSA key', () => {
    expect(verifyMessage(pub, ts, nonce, body, undefined as unknown as string)).toBe(false);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    expect(verifyMessage(ec, ts, nonce, body, sig)).toBe(false);
  });

  it('refuses to sign with a non-RSA or a public key', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect(() => signMessage(ec, ts, nonce, body)).toThrow(InvalidKeyError);
    expect(() => signMessage(pub, ts, nonce, body)).toThrow(InvalidKeyError);
  });
});

describe('signPayload / verifyPayload', () => {
  it('signs the data itself, UTF-8 for strings', () => {
    const data = '{"notify_id":"N1","x":"支付"}';
    const s = signPayload(priv, data);
    expect(verifyPayload(pub, data, s)).toBe(true);
    expect(verifyPayload(pub, Buffer.from(data, 'utf8'), s)).toBe(true);
    expect(verifyPayload(pub, `${data}\n`, s)).toBe(false);
    expect(verifyPayload(other, data, s)).toBe(false);
    expect(verifyPayload(pub, data, 'garbage')).toBe(false);
  });

  it('differs from the request form, which adds timestamp and nonce', () => {
    expect(signPayload(priv, stringToSign(ts, nonce, body))).toBe(sig);
    expect(signPayload(priv, body)).not.toBe(sig);
  });
});
