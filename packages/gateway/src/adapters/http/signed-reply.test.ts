import { generateKeyPairSync } from 'node:crypto';
import { verifyMessage } from '@sparkpay/protocol';
import { describe, expect, it } from 'vitest';
import type { Ids } from '../../app/ports.js';
import { reusedSignatures } from './signed-reply.js';

describe('reusedSignatures (the answers to a client over its budget of refusals)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  let nowMs = 1_700_000_000_000;
  let signed = 0;
  const ids = { nonce: () => `nonce${(signed += 1)}` } as unknown as Ids;
  const signer = { clock: { nowMs: () => nowMs }, ids };
  const body = '{"code":40011,"message":"too many"}';

  it('signs an answer once a second per key and body, a verifiable signature shared by the copies of that second', () => {
    const reused = reusedSignatures(signer);
    const a = reused.headers({ privateKey, serial: 'S1' }, body);
    const b = reused.headers({ privateKey, serial: 'S1' }, body);
    expect(b).toBe(a);
    const h = Object.fromEntries(a);
    expect(verifyMessage(publicKey, h['Sparkpay-Timestamp']!, h['Sparkpay-Nonce']!, body, h['Sparkpay-Signature']!)).toBe(true);
    expect(h['Sparkpay-Serial']).toBe('S1');
    nowMs += 1_000;
    expect(Object.fromEntries(reused.headers({ privateKey, serial: 'S1' }, body))['Sparkpay-Nonce']).not.toBe(h['Sparkpay-Nonce']);
  });

  it('keeps every key named by a flood that cycles through more keys than a small cache holds: still once a second per key (was: a full clear at 64)', () => {
    const reused = reusedSignatures(signer, 200);
    const before = signed;
    for (let round = 0; round < 10; round += 1) for (let k = 0; k < 150; k += 1) reused.headers({ privateKey, serial: `K${k}` }, body);
    expect(signed - before).toBe(150);
  });

  it('evicts the least recently used past its capacity, never everything', () => {
    const reused = reusedSignatures(signer, 3);
    const before = signed;
    for (const k of ['A', 'B', 'C', 'A', 'D']) reused.headers({ privateKey, serial: k }, body);
    // A was used again before D came: B went, A and C stayed.
    expect(signed - before).toBe(4);
    reused.headers({ privateKey, serial: 'A' }, body);
    reused.headers({ privateKey, serial: 'C' }, body);
    expect(signed - before).toBe(4);
    reused.headers({ privateKey, serial: 'B' }, body);
    expect(signed - before).toBe(5);
  });
});
