// The stored record's header: a text header with the expiry, then the session data in CBOR or JSON (codec.ts).
//
// Format 2 (written):  <tag>:<expires>:<permanent>:<version><earlier>:<created>:<lifetime>:<payload>
//   tag        "c2" (CBOR, base64) or "j2" (JSON); the digit is the record format
//   expires    absolute expiry, milliseconds since the epoch, in decimal
//   permanent  "1" for a permanent session, "0" for a browser-session one
//   version    8 random base64url characters, new on every write: what a compare-and-set compares
//   earlier    the versions of the writes before it, newest first, up to 7 (none for a new record): a
//              writer whose reply was lost finds its own version there and knows its write landed
//   created    when the session was created (or last regenerated), ms since the epoch
//   lifetime   this session's own lifetime in ms, or empty for the configured one
// The expiry sits in plain text, second in the header, so that SQL can purge expired rows in one
// statement without decoding CBOR, and a refresh decision needs no second read.
import { randomFillSync } from 'node:crypto';

export type Format = 'cbor' | 'json';

/** Session data as stored and decoded: any keys (the public, declared shape is session-types.ts's `SessionData`). */
export type StoredData = Record<string, unknown>;

/** A record as stored, with the payload still encoded: decoding waits until it is needed. */
export interface StoredRecord {
  /** The version token of the write that stored it, then those of the writes before it (8 characters each). */
  readonly versions: string;
  readonly format: Format;
  readonly expires: number;
  readonly permanent: boolean;
  /**
   * Stored under the hash of its sid (`hashSids`): such a record answers only to the sid whose hash names it, never to
   * a cookie holding its key.
   */
  readonly hashed: boolean;
  /** When the session was created or last regenerated; undefined when the header does not say (a user index). */
  readonly created: number | undefined;
  /** The session's own lifetime (ms), when it has one. */
  readonly lifetime: number | undefined;
  /** The encoded data exactly as stored: the baseline that change detection compares against. */
  readonly payload: string;
  /** The whole stored string: what a compare-and-set expects to find. */
  readonly raw: string;
}

/** A stored value that is not a record this version can read. */
export class CorruptRecordError extends Error {
  override readonly name = 'CorruptRecordError';
}

const TAG: Record<Format, string> = { cbor: 'c2', json: 'j2' };
const HEADER_2 = /^([cj])2:(\d{1,16}):([0-3]):((?:[\w-]{8}){1,8}):(\d{0,16}):(\d{0,16}):/;
/** Versions kept in a record: its own and up to seven earlier ones. */
const KEPT_VERSIONS = 8;

// Version tokens from a pool of random bytes: one getrandom call per 512 tokens, not one per write.
const POOL = Buffer.allocUnsafe(6 * 512);
let poolUsed = POOL.length;

/** A new version token: 8 base64url characters (48 random bits). */
export function newVersion(): string {
  if (poolUsed === POOL.length) {
    randomFillSync(POOL);
    poolUsed = 0;
  }
  poolUsed += 6;
  return POOL.toString('base64url', poolUsed - 6, poolUsed);
}

/**
 * What a record keeps about its session besides the data: when it was created, and its own lifetime if it has one (each
 * empty when unknown or none).
 */
export interface RecordMeta {
  readonly created: number | undefined;
  readonly lifetime?: number | undefined;
  /** Stored under the hash of its sid (`hashSids`). */
  readonly hashed?: boolean | undefined;
  /** The record this write replaces: its versions are kept behind the new one. */
  readonly after?: StoredRecord | undefined;
}

/**
 * A format-2 record: the header (with a new version token), then the payload. Without `meta`: creation
 * time unknown, the configured lifetime, stored under the sid. The third field holds two bits:
 * 1 permanent, 2 stored under the hash of the sid.
 */
export function frameRecord(
  payload: string,
  format: Format,
  expires: number,
  permanent: boolean,
  meta: RecordMeta = { created: undefined },
): string {
  const versions =
    meta.after === undefined ? newVersion() : newVersion() + meta.after.versions.slice(0, (KEPT_VERSIONS - 1) * 8);
  const flags = (permanent ? 1 : 0) + (meta.hashed === true ? 2 : 0);
  return `${TAG[format]}:${expires}:${flags}:${versions}:${meta.created ?? ''}:${meta.lifetime ?? ''}:${payload}`;
}

/**
 * True when the stored value `current` holds the write of `written`: it is that very record, or one
 * written after it, on top of it (its versions name `written`'s). A compare-and-set retried after a
 * lost reply finds its own write this way, instead of taking it for another writer's.
 */
export function holdsWrite(current: string, written: string): boolean {
  if (current === written) return true;
  const version = HEADER_2.exec(written)?.[4]?.slice(0, 8);
  const versions = HEADER_2.exec(current)?.[4];
  if (version === undefined || versions === undefined) return false;
  for (let at = 0; at < versions.length; at += 8) if (versions.slice(at, at + 8) === version) return true;
  return false;
}

/** True when a stored value is a record kept under the hash of its sid (header bit 2); false for anything else. */
export function isHashedRecord(raw: string): boolean {
  try {
    return parseRecord(raw).hashed;
  } catch {
    return false;
  }
}

/** The live record `record` framed again for the other key layout (a new version token, everything else kept). */
export function relaidRecord(record: StoredRecord, hashed: boolean): string {
  return frameRecord(record.payload, record.format, record.expires, record.permanent, {
    created: record.created,
    lifetime: record.lifetime,
    hashed,
  });
}

/** True when `a` and `b` hold the same record, apart from its versions (which every framing draws anew). */
export function sameRecord(a: string, b: string | undefined): boolean {
  if (b === undefined) return false;
  const left = HEADER_2.exec(a);
  const right = HEADER_2.exec(b);
  if (left === null || right === null) return a === b;
  const without = (match: RegExpExecArray, raw: string) =>
    `${match.slice(1, 4).join(':')}:${match.slice(5).join(':')}:${raw.slice(match[0].length)}`;
  return without(left, a) === without(right, b);
}

/**
 * What a compare-and-set expecting `expected` must find: a stored value starting with `stamp`. For a
 * format-2 record that is its header through its versions (the first of which is new on every write),
 * so a store compares a few dozen bytes and hashes nothing; any other value is compared whole.
 */
export function casStamp(expected: string): { readonly stamp: string; readonly whole: boolean } {
  const match = HEADER_2.exec(expected);
  if (match === null) return { stamp: expected, whole: true };
  // Through "<versions>:": "c2:" + expiry + ":1:" + the versions + ":".
  return { stamp: expected.slice(0, (match[2] as string).length + 7 + (match[4] as string).length), whole: false };
}

/** The expiry in a stored value's header, read without decoding anything; NaN for a value that is not a record. */
export function recordExpiry(raw: unknown): number {
  return typeof raw === 'string' ? Number(/^[cj]\d+:(\d{1,16}):/.exec(raw)?.[1] ?? Number.NaN) : Number.NaN;
}

/** Splits a stored string into header and payload; throws CorruptRecordError for anything else. */
export function parseRecord(raw: unknown): StoredRecord {
  if (typeof raw !== 'string') throw new CorruptRecordError(`session record is a ${typeof raw}, not a string`);
  const match = HEADER_2.exec(raw);
  if (match !== null) {
    return {
      versions: match[4] as string,
      format: match[1] === 'c' ? 'cbor' : 'json',
      expires: Number(match[2]),
      permanent: match[3] === '1' || match[3] === '3',
      hashed: match[3] === '2' || match[3] === '3',
      created: match[5] === '' ? undefined : Number(match[5]),
      lifetime: match[6] === '' ? undefined : Number(match[6]),
      payload: raw.slice(match[0].length),
      raw,
    };
  }
  const format = /^[cj](\d+):/.exec(raw)?.[1];
  if (format !== undefined && format !== '2') {
    throw new CorruptRecordError(`session record format ${format} is not supported by this version of koa-kv-session`);
  }
  throw new CorruptRecordError('session record has no valid header');
}
