// Keccak-256 as Ethereum uses it (the original Keccak padding 0x01, not SHA3's 0x06), in pure
// TypeScript because the domain takes no dependencies. Used for EIP-55 address checksums, so
// it favours clarity over speed. Each 64-bit lane is held as two 32-bit halves (lo, hi) in a
// Uint32Array: lane (x, y) lives at indices 2·(x + 5y) (lo) and 2·(x + 5y) + 1 (hi).

const RATE_BYTES = 136; // 1088-bit rate for a 256-bit output

/** Round constants, derived from the spec's LFSR rather than typed in (no transcription slips). */
const ROUND_CONSTANTS: readonly (readonly [number, number])[] = (() => {
  const rcBit = (t: number): number => {
    let r = 1;
    for (let i = 0; i < t % 255; i += 1) {
      r <<= 1;
      if (r & 0x100) r ^= 0x171;
    }
    return r & 1;
  };
  const out: [number, number][] = [];
  for (let round = 0; round < 24; round += 1) {
    let lo = 0;
    let hi = 0;
    for (let j = 0; j <= 6; j += 1) {
      if (!rcBit(j + 7 * round)) continue;
      const bit = (1 << j) - 1; // position 2^j - 1 within the lane
      if (bit < 32) lo |= 1 << bit;
      else hi |= 1 << (bit - 32);
    }
    out.push([lo >>> 0, hi >>> 0]);
  }
  return out;
})();

/** Rotation offset of lane index x + 5y, and its destination index after the pi step. */
const RHO_PI: readonly (readonly [number, number, number])[] = (() => {
  const out: [number, number, number][] = [[0, 0, 0]];
  let x = 1;
  let y = 0;
  for (let t = 0; t < 24; t += 1) {
    const rot = (((t + 1) * (t + 2)) / 2) % 64;
    out.push([x + 5 * y, rot, y + 5 * ((2 * x + 3 * y) % 5)]);
    [x, y] = [y, (2 * x + 3 * y) % 5];
  }
  return out;
})();

function rotl(lo: number, hi: number, n: number): [number, number] {
  if (n === 0) return [lo, hi];
  if (n >= 32) {
    [lo, hi] = [hi, lo];
    n -= 32;
    if (n === 0) return [lo, hi];
  }
  return [((lo << n) | (hi >>> (32 - n))) >>> 0, ((hi << n) | (lo >>> (32 - n))) >>> 0];
}

function keccakF1600(s: Uint32Array): void {
  const c = new Uint32Array(10);
  const b = new Uint32Array(50);
  for (const [rcLo, rcHi] of ROUND_CONSTANTS) {
    // theta
    for (let x = 0; x < 5; x += 1) {
      c[2 * x] = (s[2 * x] ?? 0) ^ (s[2 * x + 10] ?? 0) ^ (s[2 * x + 20] ?? 0) ^ (s[2 * x + 30] ?? 0) ^ (s[2 * x + 40] ?? 0);
      c[2 * x + 1] = (s[2 * x + 1] ?? 0) ^ (s[2 * x + 11] ?? 0) ^ (s[2 * x + 21] ?? 0) ^ (s[2 * x + 31] ?? 0) ^ (s[2 * x + 41] ?? 0);
    }
    for (let x = 0; x < 5; x += 1) {
      const p = (x + 4) % 5;
      const q = (x + 1) % 5;
      const [rLo, rHi] = rotl(c[2 * q] ?? 0, c[2 * q + 1] ?? 0, 1);
      const dLo = (c[2 * p] ?? 0) ^ rLo;
      const dHi = (c[2 * p + 1] ?? 0) ^ rHi;
      for (let y = 0; y < 25; y += 5) {
        s[2 * (x + y)] = (s[2 * (x + y)] ?? 0) ^ dLo;
        s[2 * (x + y) + 1] = (s[2 * (x + y) + 1] ?? 0) ^ dHi;
      }
    }
    // rho and pi
    for (const [from, rot, to] of RHO_PI) {
      const [lo, hi] = rotl(s[2 * from] ?? 0, s[2 * from + 1] ?? 0, rot);
      b[2 * to] = lo;
      b[2 * to + 1] = hi;
    }
    // chi
    for (let y = 0; y < 25; y += 5) {
      for (let x = 0; x < 5; x += 1) {
        const i = x + y;
        const j = ((x + 1) % 5) + y;
        const k = ((x + 2) % 5) + y;
        s[2 * i] = (b[2 * i] ?? 0) ^ (~(b[2 * j] ?? 0) & (b[2 * k] ?? 0));
        s[2 * i + 1] = (b[2 * i + 1] ?? 0) ^ (~(b[2 * j + 1] ?? 0) & (b[2 * k + 1] ?? 0));
      }
    }
    // iota
    s[0] = (s[0] ?? 0) ^ rcLo;
    s[1] = (s[1] ?? 0) ^ rcHi;
  }
}

/** The Keccak sponge with a 136-byte rate and a 32-byte output; `padByte` 0x01 = Keccak-256. */
function sponge(message: Uint8Array, padByte: number): Uint8Array {
  const state = new Uint32Array(50);
  const blocks = Math.floor(message.length / RATE_BYTES) + 1;
  const padded = new Uint8Array(blocks * RATE_BYTES);
  padded.set(message);
  padded[message.length] = (padded[message.length] ?? 0) ^ padByte;
  padded[padded.length - 1] = (padded[padded.length - 1] ?? 0) ^ 0x80;
  for (let off = 0; off < padded.length; off += RATE_BYTES) {
    for (let i = 0; i < RATE_BYTES; i += 1) {
      // little-endian bytes within each 64-bit lane; 4 bytes per 32-bit half
      const word = i >> 2;
      state[word] = (state[word] ?? 0) ^ ((padded[off + i] ?? 0) << (8 * (i & 3)));
    }
    keccakF1600(state);
  }
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i += 1) out[i] = ((state[i >> 2] ?? 0) >>> (8 * (i & 3))) & 0xff;
  return out;
}

/** Keccak-256 (Ethereum's hash) of the given bytes. */
export function keccak256(message: Uint8Array): Uint8Array {
  return sponge(message, 0x01);
}

/** SHA3-256 (FIPS 202): the same permutation with SHA3 padding; kept to cross-check the sponge. */
export function sha3v256(message: Uint8Array): Uint8Array {
  return sponge(message, 0x06);
}

/** Bytes of an ASCII string (e.g. lower-case hex); code points above 0x7f are a misuse. */
export function asciiBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i += 1) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) throw new RangeError('asciiBytes: non-ASCII input');
    out[i] = c;
  }
  return out;
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}
