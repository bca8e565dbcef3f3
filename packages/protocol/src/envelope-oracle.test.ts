// openNotification must cost the same whether a tampered body's padding holds (the signature
// then fails) or not: the signature is over the plaintext (§13), so any difference a sender can
// time is a CBC padding oracle. Counted here as the bytes that go through AES.
import { describe, expect, it, vi } from 'vitest';

// Count the bytes each opening runs through AES (the work a remote sender can time).
const counter = vi.hoisted(() => ({ bytes: 0 }));
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return {
    ...real,
    createDecipheriv: (...args: Parameters<typeof real.createDecipheriv>) => {
      const d = real.createDecipheriv(...args);
      const update = d.update.bind(d) as (data: Buffer) => Buffer;
      (d as unknown as { update: (data: Buffer) => Buffer }).update = (data: Buffer) => {
        counter.bytes += data.length;
        return update(data);
      };
      return d;
    },
  };
});

const { NotificationError, decodeBase64, encodeBase64, generateRsaKeyPair, openNotification, parsePrivateKey, parsePublicKey, sealNotification } = await import('./index.js');

const m = generateRsaKeyPair();
const p = generateRsaKeyPair();
const opts = { merchantPrivateKey: parsePrivateKey(m.privateKeyPem), platformPublicKey: parsePublicKey(p.publicKeyPem) };

describe('openNotification padding oracle', () => {
  it('does the same work whether a tampered body has valid padding or not', () => {
    // A large captured notification (a padding-oracle attacker prepends blocks freely: only the last two matter).
    const payload = JSON.stringify({ notify_id: 'N1', filler: 'x'.repeat(40_000) });
    const env = sealNotification(payload, { appId: 'a', serial: 'S', merchantPublicKey: parsePublicKey(m.publicKeyPem), platformPrivateKey: parsePrivateKey(p.privateKeyPem) });
    const ct = decodeBase64(env.body)!;
    // Valid padding, wrong signature (an attacker's guess that hit): the body as captured, a forged sign.
    const forged = { head: { ...env.head, sign: encodeBase64(Buffer.alloc(256, 1)) }, body: env.body };
    // Invalid padding (an attacker's guess that missed): flip the last byte of the next-to-last block.
    const bad = Buffer.from(ct);
    bad[bad.length - 17]! ^= 0x5a;
    const missed = { head: forged.head, body: encodeBase64(bad) };
    const work = (e: unknown) => {
      counter.bytes = 0;
      let kind = 'NONE';
      try {
        openNotification(e, opts);
      } catch (err) {
        kind = err instanceof NotificationError ? err.kind : 'OTHER';
      }
      return { kind, bytes: counter.bytes };
    };
    const hit = work(forged);
    const miss = work(missed);
    expect(hit.kind).toBe('SIGNATURE');
    expect(miss.kind).toBe('BODY_DECRYPT');
    expect(miss.bytes).toBe(hit.bytes);
  });
});
