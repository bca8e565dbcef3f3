// Strict standard Base64 (RFC 4648 §4). Node's own decoder silently skips invalid characters,
// which would let a mangled signature or ciphertext decode to *something*; callers need a clear
// "malformed" instead, so the shape is checked before decoding.

// Whole quads, then an optional final group of 2 or 3 characters whose padding may be omitted
// (the protocol accepts unpadded signatures). A length of 4n+1 can never be valid.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

/** Decodes standard Base64 (padding optional, no whitespace); null when malformed. */
export function decodeBase64(s: string): Buffer | null {
  if (!BASE64.test(s)) return null;
  // Non-canonical trailing bits (e.g. "QR==") are accepted: they carry no data and rejecting
  // them would buy nothing for signature or ciphertext checks, which fail on their own.
  return Buffer.from(s, 'base64');
}

/** Encodes as standard, padded Base64. */
export function encodeBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}
