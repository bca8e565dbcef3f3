// EVM addresses (PROTOCOL §9, 41032): "0x" + 40 hex digits. All-lower or all-upper hex carries
// no checksum; mixed case must be the EIP-55 checksum spelling. Comparison is case-insensitive.

import { asciiBytes, keccak256 } from './keccak.js';

const SHAPE = /^0x[0-9a-fA-F]{40}$/;

/** The EIP-55 checksum spelling of a well-formed address (any case in, mixed case out). */
export function toChecksumAddress(address: string): string {
  if (!SHAPE.test(address)) throw new RangeError('not an EVM address');
  const hex = address.slice(2).toLowerCase();
  const hash = keccak256(asciiBytes(hex));
  let out = '0x';
  for (let i = 0; i < 40; i += 1) {
    const ch = hex.charAt(i);
    // nibble i of the hash: high nibble of byte i/2 for even i
    const byte = hash[i >> 1] ?? 0;
    const nibble = i % 2 === 0 ? byte >> 4 : byte & 0x0f;
    out += nibble >= 8 ? ch.toUpperCase() : ch;
  }
  return out;
}

/** Whether `s` is an address acceptable in a split: right shape and, if mixed case, EIP-55. */
export function isValidEvmAddress(s: string): boolean {
  if (!SHAPE.test(s)) return false;
  const hex = s.slice(2);
  if (hex === hex.toLowerCase() || hex === hex.toUpperCase()) return true;
  return toChecksumAddress(s) === s;
}

/** The zero address: nothing sent there can ever be moved again. */
export const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000';

export const isZeroAddress = (address: string): boolean => address.toLowerCase() === ZERO_ADDRESS;

/** Key for case-insensitive comparison of addresses. */
export function addressKey(address: string): string {
  return address.toLowerCase();
}
