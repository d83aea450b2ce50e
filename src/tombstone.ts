// What a stored value means for its session (live, gone, moved: `RecordStatus`), and the tombstones that say
// "gone" and "moved": the one place that reads meaning from a record's expiry.
import { newVersion, parseRecord, recordExpiry } from './record.js';

/**
 * What a stored value says of its session: there, gone (absent, expired, destroyed, revoked), or moved by a
 * regenerate().
 */
export type RecordStatus = 'live' | 'gone' | 'moved';
/** Why a load found no session: gone, or moved by a regenerate() (the cookie's holder may have the new sid already). */
export type NoSession = Exclude<RecordStatus, 'live'>;

// How long the tombstone a regenerate() leaves keeps saying "moved" to requests that still hold the
// old sid, before it expires like any other: long enough for slow requests, short enough to cost
// nothing on apps that rotate often. A revocation's tombstone stays as long, for the same requests.
export const TOMBSTONE_LIFETIME = 10 * 60_000;

// Tombstones are records whose expiry has always passed: 0 says "moved", 1 says "revoked".
const MOVED = 0;
const REVOKED = 1;

/**
 * What a regenerate leaves under the sid it moved away from, for a while: a record that loads as no
 * session, and that tells a request still holding the old sid that its session lives on under
 * another one (its browser may hold that cookie already: leave it). It names where the session went
 * (`to`: the store name of the new sid), so that a revocation that read the old record can follow
 * the session there. Its version is its own, like any write's, and its header says whether its key
 * is a hash (`hashed`), as a session record's does.
 */
export function movedTombstone(to: string, hashed: boolean): string {
  return `j2:${MOVED}:${hashed ? 2 : 0}:${newVersion()}:0::${JSON.stringify({ to })}`;
}

/**
 * What a revocation leaves where a live session was: a record that loads as no session, so every
 * compare-and-set that expected the session finds it gone. Written by compare-and-set on the record
 * the revocation read, so a racing write or regenerate() either lands first (and the revocation
 * follows it) or finds this. Its version is its own; its header says whether its key is a hash.
 */
export function revokedTombstone(hashed: boolean): string {
  return `j2:${REVOKED}:${hashed ? 2 : 0}:${newVersion()}:0::{}`;
}

/** The store name a "moved" tombstone says its session went to; undefined for anything else. */
export function movedTo(raw: unknown): string | undefined {
  // Every record read passes here: a live one is told by its first characters, with no parsing.
  if (typeof raw !== 'string' || !raw.startsWith(`j2:${MOVED}:`)) return undefined;
  try {
    const to = (JSON.parse(parseRecord(raw).payload) as { to?: unknown }).to;
    return typeof to === 'string' ? to : undefined;
  } catch {
    return undefined;
  }
}

/** True for a tombstone ("moved" or "revoked"): no session, whatever its key. */
export function isTombstone(raw: unknown): boolean {
  const expires = recordExpiry(raw);
  return expires === MOVED || expires === REVOKED;
}

/**
 * What a stored value (as a read or a compare-and-set found it) says of its session. A value that is
 * not a record counts as there: a write replaces it.
 */
export function recordStatus(raw: unknown, now: number): RecordStatus {
  if (raw === undefined || raw === null) return 'gone';
  const expires = recordExpiry(raw);
  if (expires === MOVED) return 'moved';
  return expires <= now ? 'gone' : 'live';
}
