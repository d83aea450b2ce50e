// The record of a user index, as stored and as read back: entries keyed by stored session name (users.ts keeps them).
//
// The index record of a user's sessions, at `<keyPrefix>~user~<sha256(id), base64url>` ("~" never occurs in a sid,
// so an index can never be loaded as a session). It is framed like a session record (JSON), so TTLs
// and `purge` treat it as one (record.ts's header, JSON, no creation time):
//   j2:<expires>:0:<versions>:::{"user":"<id>","sessions":{"<stored name>":[<covered>,<added>,<label>,<was>]}}
//   covered  the entry stays until then: always later than the session's own expiry (a refresh that
//            would pass it moves it forward, with a lifetime of headroom so that is rare)
//   added    when the entry was made: a young entry whose record is not there yet is a login in flight
//   label    what `describe(ctx)` said at login (left out, with `was`, when there is none)
//   was      the safe ids the session had before regenerate() moved it, newest first (left out when none)
import { frameRecord, parseRecord } from './record.js';

export interface Entry {
  covered: number;
  readonly added: number;
  /** What `describe(ctx)` said of the session when it was first indexed. */
  readonly label?: string | undefined;
  /** The safe ids it had before its regenerate()s, newest first: a devices page's id still finds it. */
  readonly was?: readonly string[] | undefined;
}

/**
 * The most sessions one user can have, whatever `maxSessionsPerUser` says: a login past it signs the
 * user's oldest sessions out. It bounds the index record (about 100 bytes an entry) and what a login
 * costs, so that a bot holding one password cannot make its account unable to log in.
 */
export const MAX_USER_SESSIONS = 1000;

/** Earlier safe ids an entry keeps. */
export const EARLIER_IDS = 4;

/** The longest label kept. */
const LABEL_LENGTH = 200;

/** A label from the `describe` option: a string, at most LABEL_LENGTH characters, never holding the sid; else none. */
export function labelOf(describe: () => string | undefined, sid: string): string | undefined {
  const text = describe();
  if (typeof text !== 'string' || text === '' || text.includes(sid)) return undefined;
  return text.length > LABEL_LENGTH ? text.slice(0, LABEL_LENGTH) : text;
}

/** The sids of `entries`, newest login first (ties by sid): the order every process ranks a user's sessions in. */
export function newestFirst(entries: Map<string, Entry>): string[] {
  return [...entries].sort(([a, x], [b, y]) => y.added - x.added || (a < b ? -1 : a > b ? 1 : 0)).map(([sid]) => sid);
}

/** The unexpired entries of a stored index; an index that cannot be read counts as empty (it is rewritten). */
export function readEntries(
  raw: string | undefined,
  now: number,
  nameOf: (stored: string) => string,
): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  if (raw === undefined) return entries;
  try {
    const record = parseRecord(raw);
    const sessions = (JSON.parse(record.payload) as { sessions?: unknown }).sessions;
    if (typeof sessions !== 'object' || sessions === null) return entries;
    for (const [sid, value] of Object.entries(sessions)) {
      if (!Array.isArray(value)) continue;
      const [covered, added, label, was] = value as unknown[];
      if (typeof covered !== 'number' || typeof added !== 'number' || covered <= now) continue;
      const earlier = Array.isArray(was) ? was.filter((id): id is string => typeof id === 'string') : undefined;
      entries.set(nameOf(sid), {
        covered,
        added,
        ...(typeof label === 'string' && label !== '' ? { label } : {}),
        ...(earlier === undefined ? {} : { was: earlier }),
      });
    }
  } catch {
    // Not an index we can read: start over rather than fail every login of this user.
  }
  return entries;
}

/** The index record for `entries`: expires with its last entry; an empty index lingers for a second. */
export function writeEntries(
  user: string,
  entries: Map<string, Entry>,
  now: number,
  storedName: (name: string) => string,
): { raw: string; ttl: number } {
  let expires = now + 1000;
  const sessions: Record<
    string,
    [number, number] | [number, number, string] | [number, number, string, readonly string[]]
  > = {};
  for (const [sid, entry] of entries) {
    const label = entry.label ?? '';
    sessions[storedName(sid)] =
      entry.was !== undefined
        ? [entry.covered, entry.added, label, entry.was]
        : entry.label === undefined
          ? [entry.covered, entry.added]
          : [entry.covered, entry.added, label];
    expires = Math.max(expires, entry.covered);
  }
  return {
    raw: frameRecord(JSON.stringify({ user, sessions }), 'json', expires, false, { created: undefined }),
    ttl: expires - now,
  };
}
