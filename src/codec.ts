// The stored record: a text header with the expiry, then the session data in CBOR or JSON; reads either format.
//
// Layout (one string, as every Keyv adapter needs):  <tag>:<expires>:<permanent>:<payload>
//   tag        "c1" (CBOR, base64) or "j1" (JSON); the digit is the record version
//   expires    absolute expiry, milliseconds since the epoch, in decimal
//   permanent  "1" for a permanent session, "0" for a browser-session one
// The expiry sits in plain text before the payload so that SQL can purge expired rows in one
// statement without decoding CBOR, and a refresh decision needs no second read.
import { Encoder } from 'cbor-x';

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

export function encodePayload(data: SessionData, format: Format): string {
  if (format === 'json') return JSON.stringify(data);
  let bytes = cbor.encode(data);
  if (bytes.indexOf(PROTO) !== -1) bytes = cbor.encode(renameKeys(data, (key) => (ESCAPE.test(key) ? `${key}_` : key)));
  return bytes.toString('base64');
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
    return cbor.encode(value);
  } catch {
    return undefined;
  }
}

export function frameRecord(payload: string, format: Format, expires: number, permanent: boolean): string {
  return `${TAG[format]}:${expires}:${permanent ? '1' : '0'}:${payload}`;
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
