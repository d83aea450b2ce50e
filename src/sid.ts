// Generate and recognise session ids: OS CSPRNG bytes, base64url without padding.
import { randomBytes } from 'node:crypto';

const ALPHABET = /^[A-Za-z0-9_-]+$/;

/** Characters of a base64url sid with `bytes` bytes of entropy (32 -> 43). */
export function sidCharacters(bytes: number): number {
  return Math.ceil((bytes * 4) / 3);
}

export function generateSid(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

/** True when `sid` could have been made by `generateSid(bytes)`: exact length, base64url alphabet. */
export function isWellFormedSid(sid: string, bytes: number): boolean {
  return sid.length === sidCharacters(bytes) && ALPHABET.test(sid);
}
