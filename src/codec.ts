// The stored record: a text header with the expiry, then the session data in CBOR or JSON; reads either format.
//
// Layout (one string, as every Keyv adapter needs):  <tag>:<expires>:<permanent>:<payload>
//   tag        "c1" (CBOR, base64) or "j1" (JSON); the digit is the record version
//   expires    absolute expiry, milliseconds since the epoch, in decimal
//   permanent  "1" for a permanent session, "0" for a browser-session one
// The expiry sits in plain text before the payload so that SQL can purge expired rows in one
// statement without decoding CBOR, and a refresh decision needs no second read.
import { Encoder } from 'cbor-x';
import { SessionError } from './errors.js';

export type Format = 'cbor' | 'json';
export type SessionData = Record<string, unknown>;

/** A record as stored, with the payload still encoded: decoding waits until it is needed. */
export interface StoredRecord {
  readonly format: Format;
  readonly expires: number;
  readonly permanent: boolean;
  /** The encoded data exactly as stored: the baseline that change detection compares against. */
  readonly payload: string;
  /** The whole stored string: what a compare-and-set expects to find. */
  readonly raw: string;
}

/** A stored value that is not a record this version can read. */
export class CorruptRecordError extends Error {
  override readonly name = 'CorruptRecordError';
}

// Plain CBOR maps for objects (no cbor-x records, so other decoders can read it); Maps keep tag 259.
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true });
const TAG: Record<Format, string> = { cbor: 'c1', json: 'j1' };
const HEADER = /^([cj])(\d+):(\d{1,16}):([01]):/;
const CURRENT_VERSION = '1';

// cbor-x decodes a "__proto__" key as "__proto_" (its guard against prototype pollution), so such
// keys are escaped with one more trailing underscore: "__proto__" <-> "__proto___", and so on. The
// walk only runs when the encoded bytes contain "__proto__" at all.
const PROTO = Buffer.from('__proto__');
const ESCAPE = /^__proto__+$/;
const UNESCAPE = /^__proto___+$/;

function renameKeys(value: unknown, rename: (key: string) => string): unknown {
  if (Array.isArray(value)) return value.map((item) => renameKeys(item, rename));
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [k, renameKeys(v, rename)]));
  if (value instanceof Set) return new Set([...value].map((item) => renameKeys(item, rename)));
  if (typeof value !== 'object' || value === null) return value;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    Object.defineProperty(out, rename(key), { value: renameKeys(item, rename), writable: true, enumerable: true, configurable: true });
  }
  return out;
}

// cbor-x encodes into one buffer that every encoder in the process shares and keeps, grown to
// several times the largest value it was ever given (a refused 100 MB session would pin ~375 MB).
// After a large encode, or a failed one, it gets a small buffer again.
const KEEP_BUFFER_BELOW = 64 * 1024;
const FRESH_BUFFER = 8192;
// Present on every cbor-x Encoder, missing from its type declarations.
const shared = cbor as unknown as { useBuffer(buffer: Buffer): void };

function cborEncode(value: unknown): Buffer {
  let bytes: Buffer | undefined;
  try {
    bytes = cbor.encode(value);
    return bytes;
  } finally {
    if (bytes === undefined || bytes.length > KEEP_BUFFER_BELOW) shared.useBuffer(Buffer.allocUnsafeSlow(FRESH_BUFFER));
  }
}

/**
 * The payload of a record. With `maxSize`, a CBOR payload whose base64 text would exceed it is
 * refused (SESSION_TOO_LARGE) before that text is made.
 */
export function encodePayload(data: SessionData, format: Format, maxSize = Number.POSITIVE_INFINITY): string {
  if (format === 'json') return JSON.stringify(data);
  let bytes = cborEncode(data);
  if (bytes.indexOf(PROTO) !== -1) bytes = cborEncode(renameKeys(data, (key) => (ESCAPE.test(key) ? `${key}_` : key)));
  const length = Math.ceil(bytes.length / 3) * 4;
  if (length > maxSize) throw tooLarge(length, maxSize);
  return bytes.toString('base64');
}

function tooLarge(bytes: number, max: number): SessionError {
  return new SessionError('SESSION_TOO_LARGE', `koa-kv-session: the session record is ${bytes} bytes, over maxSize (${max}); nothing was saved`);
}

/** Refuses a record over maxSize, before anything is written. */
export function checkSize(raw: string, max: number): void {
  if (raw.length > max || (raw.length * 3 > max && Buffer.byteLength(raw) > max)) throw tooLarge(Buffer.byteLength(raw), max);
}

function decodeCbor(payload: string): unknown {
  const bytes = Buffer.from(payload, 'base64');
  const data: unknown = cbor.decode(bytes);
  return bytes.indexOf(PROTO) === -1 ? data : renameKeys(data, (key) => (UNESCAPE.test(key) ? key.slice(0, -1) : key));
}

export function decodePayload(payload: string, format: Format): SessionData {
  let data: unknown;
  try {
    data = format === 'json' ? JSON.parse(payload) : decodeCbor(payload);
  } catch (error) {
    throw new CorruptRecordError(`session record payload is not valid ${format.toUpperCase()}`, { cause: error });
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data) || data instanceof Map) {
    throw new CorruptRecordError(`session record payload is not an object of session data (${format.toUpperCase()})`);
  }
  return data as SessionData;
}

/**
 * A comparable encoding of one value, taken when an object is first handed to a handler: if it
 * differs at commit, the handler mutated that key in place. Undefined when it cannot be encoded.
 */
export function fingerprint(value: unknown): Buffer | undefined {
  try {
    return cborEncode(value);
  } catch {
    return undefined;
  }
}

export function frameRecord(payload: string, format: Format, expires: number, permanent: boolean): string {
  return `${TAG[format]}:${expires}:${permanent ? '1' : '0'}:${payload}`;
}

/**
 * What a regenerate leaves under the sid it moved away from, for a while: a record that has always
 * expired (expiry 0), so it loads as no session, and that tells a request still holding the old sid
 * that its session lives on under another one (its browser may hold that cookie already: leave it).
 */
export const RETIRED_RECORD = 'j1:0:0:{}';

/**
 * What a stored value (as a compare-and-set found it) says of its session: still there, gone
 * (absent, expired: destroyed or timed out), or moved to a new sid by a regenerate. A value that is
 * not a record counts as there: a write replaces it.
 */
export function recordFate(raw: unknown, now: number): 'live' | 'gone' | 'moved' {
  if (raw === undefined || raw === null) return 'gone';
  const expires = recordExpiry(raw);
  if (expires === 0) return 'moved';
  return expires <= now ? 'gone' : 'live';
}

/** The expiry in a stored value's header, read without decoding anything; NaN for a value that is not a record. */
export function recordExpiry(raw: unknown): number {
  return typeof raw === 'string' ? Number(/^[cj]\d+:(\d{1,16}):/.exec(raw)?.[1] ?? Number.NaN) : Number.NaN;
}

/** Splits a stored string into header and payload; throws CorruptRecordError for anything else. */
export function parseRecord(raw: unknown): StoredRecord {
  if (typeof raw !== 'string') throw new CorruptRecordError(`session record is a ${typeof raw}, not a string`);
  const match = HEADER.exec(raw);
  if (!match) throw new CorruptRecordError('session record has no valid header');
  if (match[2] !== CURRENT_VERSION) {
    throw new CorruptRecordError(`session record version ${match[2]} is not supported by this version of koa-kv-session`);
  }
  return {
    format: match[1] === 'c' ? 'cbor' : 'json',
    expires: Number(match[3]),
    permanent: match[4] === '1',
    payload: raw.slice(match[0].length),
    raw,
  };
}
