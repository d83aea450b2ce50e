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
  return createHash('sha256').update(sid).digest('base64url').slice(0, 16);
}

/** True when `sid` could have been made by `generateSid(bytes)`: exact length, base64url alphabet. */
export function isWellFormedSid(sid: string, bytes: number): boolean {
  return sid.length === sidCharacters(bytes) && ALPHABET.test(sid);
}
