// What a value stored under a sid means for a request: a live session (its record, and its data or the payload to
// read it from key by key), or why there is none. A value that is no readable record is reported, and is none.
import { StoredMap } from './cbor.js';
import { decodePayload } from './codec.js';
import { CorruptRecordError, parseRecord, type StoredData, type StoredRecord } from './record.js';
import { SessionError } from './errors.js';
import { sidFingerprint } from './sid.js';
import type { Reading } from './store-types.js';
import { type NoSession, recordStatus } from './tombstone.js';

/** A live session record and its data. */
export type Loaded = { readonly record: StoredRecord; readonly data: StoredData };
/** A live session record and its data, or (CBOR) its payload to read key by key. */
export type LoadedLazily = { readonly record: StoredRecord; readonly data: StoredData | StoredMap };

/**
 * The session in `raw`, read under `name` (a sid), or why there is none. `lazily`: a CBOR payload is checked whole but
 * decoded key by key, as a request reads it (cbor.ts's StoredMap).
 */
export function decodeSession(raw: unknown, now: number, name: string, from: Reading): Loaded | NoSession;
export function decodeSession(
  raw: unknown,
  now: number,
  name: string,
  from: Reading,
  lazily: true,
): LoadedLazily | NoSession;
export function decodeSession(
  raw: unknown,
  now: number,
  name: string,
  from: Reading,
  lazily = false,
): LoadedLazily | NoSession {
  if (raw === undefined || raw === null) return 'gone';
  try {
    // A record larger than we would ever write is not decoded: a planted or stale giant costs nothing.
    if (typeof raw === 'string' && raw.length > from.maxSize)
      throw new CorruptRecordError(`session record is ${raw.length} characters, over maxSize (${from.maxSize})`);
    const record = parseRecord(raw);
    // Backends without native TTL keep expired rows until a purge: expiry is checked here.
    if (record.expires <= now) return recordStatus(raw, now) === 'moved' ? 'moved' : 'gone';
    const unread = lazily && record.format === 'cbor' ? StoredMap.of(record.payload) : undefined;
    return { record, data: unread ?? decodePayload(record.payload, record.format) };
  } catch (error) {
    if (!(error instanceof CorruptRecordError)) throw error;
    from.report(corruptRecordError(name, from.keyPrefix, error));
    return 'gone';
  }
}

/**
 * The error for a record that cannot be read. It names the session by its safe id: a sid is a bearer secret, and
 * onError output goes to logs.
 */
function corruptRecordError(sid: string, prefix: string, cause: Error): SessionError {
  return new SessionError(
    'SESSION_RECORD_CORRUPT',
    `koa-kv-session: the record of session ${sidFingerprint(sid)} (its safe id; key prefix ` +
      `${JSON.stringify(prefix)}) cannot be read (${cause.message}); a fresh session was started`,
    500,
    { cause },
  );
}
