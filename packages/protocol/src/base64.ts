// Strict standard Base64 (RFC 4648 §4). Node's own decoder silently skips invalid characters,
// which would let a mangled signature or ciphertext decode to *something*; callers need a clear
// "malformed" instead, so the shape is checked before decoding.

// Whole quads, then an optional final group of 2 or 3 characters whose padding may be omitted
// (the protocol accepts unpadded signatures). A length of 4n+1 can never be valid. Checked as the
// alphabet, then the lengths (one character class is several times faster than the grouped
// pattern /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/ it equals, on
// every signed request).
const ALPHABET = /^[A-Za-z0-9+/]*(={0,2})$/;

/** Whether `s` is standard Base64 with optional padding: whole quads, then 2 or 3 characters. */
export function isBase64(s: string): boolean {
  const m = ALPHABET.exec(s);
  if (!m) return false;
  const padding = m[1]!.length;
  const rest = (s.length - padding) % 4;
  return padding === 0 ? rest !== 1 : padding === 1 ? rest === 3 : rest === 2;
}

/** Decodes standard Base64 (padding optional, no whitespace); null when malformed. */
export function decodeBase64(s: string): Buffer | null {
  if (!isBase64(s)) return null;
  // Non-canonical trailing bits (e.g. "QR==") are accepted: they carry no data and rejecting
  // them would buy nothing for signature or ciphertext checks, which fail on their own.
  return Buffer.from(s, 'base64');
}

/** Encodes as standard, padded Base64. */
export function encodeBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}
