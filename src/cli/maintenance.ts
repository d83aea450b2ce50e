// The work behind the operator commands: census, listing, showing and finding stored sessions (re-encoding them:
// convert.ts; moving them under the hash of their sid: hash-sids.ts). No printing here.
import { messageOf } from '../errors.js';
import { decodePayload, decodeRecord } from '../codec.js';
import { isHashedRecord, parseRecord, type Format, type StoredData, type StoredRecord } from '../record.js';
import { isTombstone } from '../tombstone.js';
import type { Progress } from './progress.js';
import type { SessionStore } from '../store.js';
import type { ListedRecord } from '../store-types.js';
import { storedUserOf } from '../user-id.js';
import { isUserIndexName } from '../names.js';
import { scanPage, scansInKeyOrder } from '../store-scan.js';

/** How a long command walks the store: page size, where progress goes, and when to stop early (Ctrl-C). */
export interface WalkOptions {
  readonly pageSize?: number;
  readonly progress?: Progress;
  readonly stopped?: () => boolean;
}

const PAGE_SIZE = 1000;

/** Visits every page of records under the key prefix; false when it stopped before the end. */
export async function walk(
  store: SessionStore,
  options: WalkOptions,
  visit: (records: ListedRecord[]) => Promise<void>,
): Promise<boolean> {
  let cursor: string | undefined;
  do {
    if (options.stopped?.()) return false;
    const page = await scanPage(store, cursor, options.pageSize ?? PAGE_SIZE);
    await visit(page.records);
    options.progress?.advance(page.records.length);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return true;
}

/**
 * The session whose safe id (`listUserSessions()`'s `id`) is `id`, as the store's methods take its name; undefined when
 * none is stored. One walk of the records.
 */
export async function findBySafeId(store: SessionStore, id: string): Promise<string | undefined> {
  let found: string | undefined;
  await walk(store, { stopped: () => found !== undefined }, async (records) => {
    for (const { name, raw } of records) {
      const named = store.names.fromKey(name, isHashedRecord(raw));
      if (found === undefined && !isUserIndexName(name) && store.names.idOf(named, isHashedRecord(raw)) === id)
        found = named;
    }
  });
  return found;
}

/**
 * The sessions whose stored name starts with `prefix` (what `list` prints), as the store's methods take them; at most
 * two (two: ambiguous).
 */
export async function findByPrefix(store: SessionStore, prefix: string): Promise<string[]> {
  const found: string[] = [];
  await walk(store, { stopped: () => found.length > 1 }, async (records) => {
    for (const { name, raw } of records) {
      if (found.length < 2 && name.startsWith(prefix) && !isUserIndexName(name) && !isTombstone(raw))
        found.push(store.names.fromKey(name, isHashedRecord(raw)));
    }
  });
  return found;
}

/** What `stats` counts. */
export interface Census {
  /** Live session records. */
  sessions: number;
  /** Session records past their expiry, waiting for a purge (SQL) or for the server to drop them. */
  expired: number;
  /**
   * What a revocation or a regenerate() leaves for requests still in flight (expired too, gone within minutes or at the
   * next purge).
   */
  tombstones: number;
  /** Live sessions by encoding. */
  cbor: number;
  json: number;
  /** User indexes (with the userKey option). */
  users: number;
  /** Records under the prefix that are not readable session records. */
  unreadable: number;
  /** Bytes of every record under the prefix (UTF-8). */
  bytes: number;
  /** False when interrupted: the counts cover part of the store. */
  complete: boolean;
}

export async function census(store: SessionStore, options: WalkOptions = {}): Promise<Census> {
  const counts: Census = {
    sessions: 0,
    expired: 0,
    tombstones: 0,
    cbor: 0,
    json: 0,
    users: 0,
    unreadable: 0,
    bytes: 0,
    complete: false,
  };
  const now = Date.now();
  counts.complete = await walk(store, options, async (records) => {
    for (const { name, raw } of records) {
      counts.bytes += Buffer.byteLength(raw);
      if (isUserIndexName(name)) {
        counts.users++;
        continue;
      }
      try {
        const record = parseRecord(raw);
        if (isTombstone(raw)) counts.tombstones++;
        else if (record.expires <= now) counts.expired++;
        else {
          counts.sessions++;
          counts[record.format]++;
        }
      } catch {
        counts.unreadable++;
      }
    }
  });
  return counts;
}

/** One line of `list`. */
export interface ListedSession {
  readonly sid: string;
  /** Expiry (ms since the epoch); NaN for a record that cannot be read. */
  readonly expires: number;
  readonly permanent: boolean;
  readonly format: Format | undefined;
  readonly bytes: number;
  /** The user id (with the userKey option), when the session has one. */
  readonly user: string | undefined;
}

/** About `limit` session records from `cursor` on (user indexes left out), and the cursor of the next page. */
/** How many characters of a sid the operator's cursor keeps: 72 bits, never the whole secret. */
const CURSOR_SID_CHARACTERS = 12;

/** A cursor that `list` did not print. */
export class BadCursorError extends Error {}

/**
 * One page of sessions, and the operator's cursor of the next page (undefined: that was the last).
 * Where the store resumes after any string (SQL, etcd, memory), the cursor is `after:` and the first
 * 12 characters of the last sid read, never a whole one; records starting with those 12 characters
 * are skipped on the next page (the last one read, and others only with odds of 2^-72 each).
 * Elsewhere it is the store's own, `scan:<cursor>`: a number on Redis; DynamoDB's Scan resumes only
 * from an exact key, so its cursor is the last key read.
 */
export async function listPage(
  store: SessionStore,
  cursor: string | undefined,
  limit: number,
  userKey: string | undefined,
): Promise<{ sessions: ListedSession[]; cursor: string | undefined }> {
  const ordered = await scansInKeyOrder(store);
  let next: string | undefined;
  let skip: string | undefined;
  if (cursor !== undefined) {
    const [kind, value] = [cursor.slice(0, cursor.indexOf(':')), cursor.slice(cursor.indexOf(':') + 1)];
    if (kind === 'after' && ordered && value !== '') [next, skip] = [store.names.key(value), value];
    else if (kind === 'scan' && !ordered && value !== '') next = value;
    else
      throw new BadCursorError(
        `--cursor ${JSON.stringify(cursor)} is not a cursor that koa-kv-session list printed for this store`,
      );
  }
  const sessions: ListedSession[] = [];
  let last: string | undefined;
  do {
    const page = await scanPage(store, next, limit - sessions.length);
    next = page.cursor;
    for (const { name, raw } of page.records) {
      last = name;
      if (skip !== undefined && name.startsWith(skip)) continue;
      // User indexes and tombstones (of revoked or regenerated sessions) are no sessions: stats counts them apart.
      if (isUserIndexName(name) || isTombstone(raw)) continue;
      sessions.push(describeRecord(name, raw, userKey));
    }
    skip = undefined;
  } while (sessions.length < limit && next !== undefined);
  if (next === undefined) return { sessions, cursor: undefined };
  return {
    sessions,
    cursor: ordered && last !== undefined ? `after:${last.slice(0, CURSOR_SID_CHARACTERS)}` : `scan:${next}`,
  };
}

function describeRecord(sid: string, raw: string, userKey: string | undefined): ListedSession {
  const bytes = Buffer.byteLength(raw);
  try {
    const record = parseRecord(raw);
    let user: string | undefined;
    if (userKey !== undefined) {
      try {
        user = storedUserOf(decodePayload(record.payload, record.format), userKey);
      } catch {
        user = undefined; // the payload cannot be decoded: listed without a user
      }
    }
    return { sid, expires: record.expires, permanent: record.permanent, format: record.format, bytes, user };
  } catch {
    return { sid, expires: Number.NaN, permanent: false, format: undefined, bytes, user: undefined };
  }
}

/** What `show` finds under a sid. */
export type Shown =
  | { readonly status: 'missing' }
  | { readonly status: 'unreadable'; readonly raw: string; readonly reason: string }
  | { readonly status: 'found'; readonly record: StoredRecord; readonly data: StoredData; readonly bytes: number };

export async function showSession(store: SessionStore, sid: string): Promise<Shown> {
  // A session stored before hashSids was switched is under its other name until its next request.
  const other = store.names.otherName(sid);
  const raw = (await store.loadRaw(sid)) ?? (other === undefined ? undefined : await store.loadRaw(other));
  // A revoked or moved session's tombstone is no session record.
  if (raw === undefined || isTombstone(raw)) return { status: 'missing' };
  try {
    return { status: 'found', ...decodeRecord(raw), bytes: Buffer.byteLength(raw) };
  } catch (error) {
    return { status: 'unreadable', raw, reason: messageOf(error) };
  }
}

/** True when a user index is stored under the key prefix (one walk, stopping at the first). */
export async function hasUserIndex(store: SessionStore): Promise<boolean> {
  let found = false;
  await walk(store, { stopped: () => found }, async (records) => {
    found ||= records.some((record) => isUserIndexName(record.name));
  });
  return found;
}
