// Generate and recognise session ids: OS CSPRNG bytes, base64url without padding.
import { createHash, randomBytes } from 'node:crypto';

const ALPHABET = /^[A-Za-z0-9_-]+$/;

/** Characters of a base64url sid with `bytes` bytes of entropy (32 -> 43). */
export function sidCharacters(bytes: number): number {
  return Math.ceil((bytes * 4) / 3);
}

export function generateSid(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

/**
 * A session's id that is safe to show: 16 base64url characters (96 bits) of the sid's SHA-256. The
 * sid cannot be recovered from it, so a devices page, a log line or an audit event may carry it;
 * the sid itself is a bearer secret and must not leave the cookie.
 */
export function sidFingerprint(sid: string): string {
  // A hashed store name ("#" and the sid's SHA-256) starts with this very fingerprint.
  if (sid.startsWith(HASHED)) return sid.slice(1, 17);
  return sidHash(sid).slice(0, 16);
}

/** The SHA-256 of a sid, base64url without padding (43 characters): its store name with `hashSids`. */
export function sidHash(sid: string): string {
  return createHash('sha256').update(sid).digest('base64url');
}

/**
 * Marks a store name that is used as it is (`#<name>`): a sid's hash, or a name read back from the
 * store (an index entry, a tombstone, a listing). "#" never occurs in a sid or an index name.
 */
export const HASHED = '#';

/** True when `sid` could have been made by `generateSid(bytes)`: exact length, base64url alphabet. */
export function isWellFormedSid(sid: string, bytes: number): boolean {
  return sid.length === sidCharacters(bytes) && ALPHABET.test(sid);
}
