import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  InvalidKeyError,
  assertRsa2048,
  generateRsaKeyPair,
  parsePrivateKey,
  parsePublicKey,
  publicKeyPem,
  signMessage,
  verifyMessage,
} from './index.js';

const pair = generateRsaKeyPair();
const bodyOf = (pem: string): string => pem.replace(/-----[A-Z ]+-----/g, '').trim();
const samePublic = (a: string, b: string): boolean => publicKeyPem(parsePublicKey(a)) === publicKeyPem(parsePublicKey(b));

describe('generateRsaKeyPair', () => {
  it('makes an RSA-2048 pair as PKCS#8 PEM and SPKI PEM that belong together', () => {
    expect(pair.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(pair.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const priv = parsePrivateKey(pair.privateKeyPem);
    const pub = parsePublicKey(pair.publicKeyPem);
    assertRsa2048(priv);
    assertRsa2048(pub);
    expect(publicKeyPem(priv)).toBe(pair.publicKeyPem);
    expect(publicKeyPem(pub)).toBe(pair.publicKeyPem);
    expect(verifyMessage(pub, '1', 'n', '', signMessage(priv, '1', 'n', ''))).toBe(true);
  });
});

describe('parsePublicKey', () => {
  it('accepts the PEM, the bare Base64 body, one-line Base64, CRLF and escaped newlines', () => {
    const body = bodyOf(pair.publicKeyPem);
    for (const variant of [
      pair.publicKeyPem,
      `  \n${pair.publicKeyPem}\n\n`,
      body,
      body.replace(/\n/g, ''),
      body.replace(/\n/g, '\r\n'),
      pair.publicKeyPem.replace(/\n/g, '\r\n'),
      pair.publicKeyPem.replace(/\n/g, '\\n'),
      `\uFEFF${pair.publicKeyPem}`,
      body.replace(/\n/g, ' \t '),
    ]) {
      expect(samePublic(variant, pair.publicKeyPem), JSON.stringify(variant.slice(0, 40))).toBe(true);
    }
  });

  it.each([
    ['garbage', 'not a key'],
    ['empty', ''],
    ['truncated Base64', bodyOf(pair.publicKeyPem).slice(0, 100)],
    ['a private key', pair.privateKeyPem],
    ['a private key body', bodyOf(pair.privateKeyPem)],
    ['a PKCS#1 public key', generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'pkcs1', format: 'pem' }).toString()],
    ['mismatched PEM labels', pair.publicKeyPem.replace('END PUBLIC KEY', 'END PRIVATE KEY')],
    ['a header without footer', pair.publicKeyPem.replace('-----END PUBLIC KEY-----', '')],
  ])('refuses %s with InvalidKeyError', (_name, text) => {
    expect(() => parsePublicKey(text)).toThrow(InvalidKeyError);
  });
});

describe('parsePrivateKey', () => {
  const pkcs1 = parsePrivateKey(pair.privateKeyPem).export({ type: 'pkcs1', format: 'pem' }).toString();

  it('accepts PKCS#8 and PKCS#1 PEM, with or without header lines, with CRLF', () => {
    expect(pkcs1).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    for (const variant of [
      pair.privateKeyPem,
      bodyOf(pair.privateKeyPem),
      pair.privateKeyPem.replace(/\n/g, '\r\n'),
      pkcs1,
      bodyOf(pkcs1),
      pkcs1.replace(/\n/g, '\r\n'),
    ]) {
      expect(publicKeyPem(parsePrivateKey(variant))).toBe(pair.publicKeyPem);
    }
  });

  it.each([
    ['a public key', pair.publicKeyPem],
    ['a public key body', bodyOf(pair.publicKeyPem)],
    ['garbage', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----'],
    ['an encrypted PKCS#8 key', parsePrivateKey(pair.privateKeyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }).toString()],
  ])('refuses %s with InvalidKeyError', (_name, text) => {
    expect(() => parsePrivateKey(text)).toThrow(InvalidKeyError);
  });
});

describe('assertRsa2048', () => {
  it('refuses RSA keys of 1024 and 4096 bits', () => {
    for (const modulusLength of [1024, 4096]) {
      const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength });
      expect(() => assertRsa2048(publicKey)).toThrow(/2048-bit/);
      expect(() => assertRsa2048(privateKey)).toThrow(InvalidKeyError);
    }
  });

  it('refuses EC, Ed25519 and RSA-PSS keys', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(() => assertRsa2048(parsePublicKey(pem))).toThrow(InvalidKeyError);
    expect(() => assertRsa2048(ec.privateKey)).toThrow(InvalidKeyError);
    expect(() => assertRsa2048(generateKeyPairSync('ed25519').publicKey)).toThrow(InvalidKeyError);
    expect(() => assertRsa2048(generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).publicKey)).toThrow(InvalidKeyError);
  });
});
