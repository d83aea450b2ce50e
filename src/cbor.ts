// CBOR payloads: one shared cbor-x encoder, the "__proto__" key escape, a write that re-encodes only the keys a
// request changed, copying the bytes of every other key from the payload it loaded, and a read that decodes only the
// keys a request reads (StoredMap).
import { Encoder } from 'cbor-x';

// Plain CBOR maps for objects (no cbor-x records, so other decoders can read it); Maps keep tag 259.
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true });

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
    Object.defineProperty(out, rename(key), {
      value: renameKeys(item, rename),
      writable: true,
      enumerable: true,
      configurable: true,
    });
  }
  return out;
}

/**
 * The deepest nesting a record may hold. Encoders take deeper values than decoders give back (cbor-x
 * encodes an array nested 3,000 deep and then cannot decode it: the session would be lost at its next
 * read), so what cannot be read back is refused at write, in both formats, far below either limit.
 */
export const MAX_DEPTH = 256;

// cbor-x encodes into one buffer that every encoder in the process shares and keeps, grown to
// several times the largest value it was ever given (a refused 100 MB session would pin ~375 MB).
// After a large encode, or a failed one, it gets a small buffer again.
const KEEP_BUFFER_BELOW = 64 * 1024;
const FRESH_BUFFER = 8192;
// Present on every cbor-x Encoder, missing from its type declarations.
const shared = cbor as unknown as { useBuffer(buffer: Buffer): void };

/** `value` in CBOR: a view of the shared buffer, valid until the next encode (copy or consume it first). */
export function cborEncode(value: unknown): Buffer {
  let bytes: Buffer | undefined;
  try {
    bytes = cbor.encode(value);
    return bytes;
  } finally {
    if (bytes === undefined || bytes.length > KEEP_BUFFER_BELOW) shared.useBuffer(Buffer.allocUnsafeSlow(FRESH_BUFFER));
  }
}

/** Session data in CBOR, "__proto__" keys escaped: a view of the shared buffer, as cborEncode gives it. */
export function encodeCbor(data: Record<string, unknown>): Buffer {
  const bytes = cborEncode(data);
  if (bytes.indexOf(PROTO) === -1) return bytes;
  return cborEncode(renameKeys(data, (key) => (ESCAPE.test(key) ? `${key}_` : key)));
}

export function decodeCbor(payload: string): unknown {
  const bytes = Buffer.from(payload, 'base64');
  const data: unknown = cbor.decode(bytes);
  return bytes.indexOf(PROTO) === -1 ? data : renameKeys(data, (key) => (UNESCAPE.test(key) ? key.slice(0, -1) : key));
}

/**
 * A stored payload read key by key: a request that reads two keys of a large session decodes those two, not the
 * whole session. Made only for a payload as encodeCbor writes it (a map of text keys with a two-byte length, no
 * "__proto__" escape) that holds only plain items (no tag: Dates, Sets, Maps, bigints are decoded whole), and only
 * once it is checked whole: every item within the payload, nested no deeper than a write allows. What passes cannot
 * fail to decode later, key by key.
 */
export class StoredMap {
  /** The payload (base64), as stored. */
  readonly payload: string;
  /** How many keys the payload holds. */
  readonly size: number;
  readonly #bytes: Buffer;
  /** Where the entry of each key starts, and where the payload ends, last. */
  readonly #starts: number[];

  private constructor(payload: string, bytes: Buffer, starts: number[]) {
    this.payload = payload;
    this.#bytes = bytes;
    this.#starts = starts;
    this.size = starts.length - 1;
  }

  /** The payload read key by key; undefined for one that is decoded whole (or cannot be: decodeCbor says why). */
  static of(payload: string): StoredMap | undefined {
    const bytes = Buffer.from(payload, 'base64');
    if (bytes[0] !== 0xb9 || bytes.indexOf(PROTO) !== -1) return undefined;
    const count = ((bytes[1] as number) << 8) | (bytes[2] as number);
    const starts: number[] = [];
    let at = 3;
    try {
      for (let i = 0; i < count; i++) {
        if ((bytes[at] as number) >> 5 !== 3) return undefined;
        starts.push(at);
        at = skipItem(bytes, skipItem(bytes, at), MAX_DEPTH);
      }
    } catch {
      return undefined;
    }
    if (at !== bytes.length) return undefined;
    starts.push(at);
    return new StoredMap(payload, bytes, starts);
  }

  /**
   * The value stored at `key`, decoded anew on every call (byte strings are views of the payload's bytes, as a whole
   * decode gives them), or undefined when the payload has no such key.
   */
  find(key: string): { readonly value: unknown } | undefined {
    const bytes = this.#bytes;
    const ascii = isAscii(key);
    for (let i = 0; i < this.size; i++) {
      const { from, to } = this.#keyAt(i);
      const same = ascii ? sameAscii(bytes, from, to, key) : bytes.toString('utf8', from, to) === key;
      if (same) return { value: cbor.decode(bytes.subarray(to, this.#starts[i + 1])) };
    }
    return undefined;
  }

  /** The keys, in stored order. */
  keys(): string[] {
    const keys: string[] = [];
    for (let i = 0; i < this.size; i++) {
      const { from, to } = this.#keyAt(i);
      keys.push(this.#bytes.toString('utf8', from, to));
    }
    return keys;
  }

  /** Where the text of the i-th key starts and ends (its value starts there). */
  #keyAt(i: number): { from: number; to: number } {
    const at = this.#starts[i] as number;
    const info = (this.#bytes[at] as number) & 31;
    return { from: at + 1 + (info < 24 ? 0 : 1 << (info - 24)), to: skipItem(this.#bytes, at) };
  }

  /** Every key and value, decoded, in stored order: what decodeCbor gives. */
  decodeAll(): Record<string, unknown> {
    return cbor.decode(this.#bytes) as Record<string, unknown>;
  }
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 127) return false;
  return true;
}

/** True when the UTF-8 bytes from `from` to `to` spell `key`, a string of ASCII characters only. */
function sameAscii(bytes: Buffer, from: number, to: number, key: string): boolean {
  if (to - from !== key.length) return false;
  for (let i = 0; i < key.length; i++) if (bytes[from + i] !== key.charCodeAt(i)) return false;
  return true;
}

/** Where the CBOR item at `at` ends. Throws RangeError past the end (a payload we did not write). */
function skipItem(bytes: Buffer, at: number, plain?: number): number {
  const initial = bytes[at] as number;
  const major = initial >> 5;
  const info = initial & 31;
  if (plain !== undefined && !isPlain(major, info, plain)) throw new RangeError('not a plain item');
  const inner = plain === undefined ? undefined : plain - 1;
  let next = at + 1;
  let length = info;
  if (info >= 24) {
    if (info > 27) throw new RangeError('an indefinite or reserved CBOR length');
    const size = 1 << (info - 24);
    length = 0;
    for (let i = 0; i < size; i++) length = length * 256 + (bytes[next + i] as number);
    next += size;
  }
  if (major === 2 || major === 3) next += length;
  else if (major === 4) for (let i = 0; i < length; i++) next = skipItem(bytes, next, inner);
  else if (major === 5) for (let i = 0; i < 2 * length; i++) next = skipItem(bytes, next, inner);
  else if (major === 6) next = skipItem(bytes, next);
  if (next > bytes.length) throw new RangeError('past the end of the payload');
  return next;
}

/**
 * True for an item every decoder reads back as it is, `levels` deep at most: no tag (a Date, a Set, a bigint: cbor-x
 * builds those, and can fail to), no simple value but false, true, null and undefined.
 */
function isPlain(major: number, info: number, levels: number): boolean {
  if (major === 6) return false;
  if (major === 7) return info >= 20 && info <= 27 && info !== 24;
  return levels > 0 || (major !== 4 && major !== 5);
}

/** A key as CBOR text (head and UTF-8 bytes): what a stored map's key is compared with. */
function cborText(key: string): Buffer {
  return Buffer.from(cborEncode(key));
}

/** True for a key JavaScript orders before all others in an object: a canonical integer below 2^32 - 1. */
function isArrayIndex(key: string): boolean {
  return /^(?:0|[1-9]\d{0,9})$/.test(key) && Number(key) < 4_294_967_295;
}

/** One map entry, `key` and its value in `data`, encoded (a map of one entry, its three-byte head dropped). */
function entry(data: Record<string, unknown>, key: string): Buffer | undefined {
  const bytes = cborEncode({ [key]: data[key] });
  return bytes.indexOf(PROTO) === -1 ? Buffer.from(bytes.subarray(3)) : undefined;
}

/**
 * `data` as a CBOR payload built on `payload` (what it was decoded from): the entries of the keys
 * not in `changed` are copied from there as they are, in their order, and only the changed ones are
 * encoded, in place (new keys last). Undefined when that cannot be done exactly (a payload that is
 * no map of text keys as encodeCbor writes them, a key that needs the "__proto__" escape, a new key that
 * is an array index, data that does not match): then the whole data is encoded.
 */
export function spliceCbor(
  payload: string,
  data: Record<string, unknown>,
  changed: ReadonlySet<string>,
  partial = false,
): Buffer | undefined {
  const stored = Buffer.from(payload, 'base64');
  // encodeCbor writes an object as a map with a two-byte length.
  if (stored[0] !== 0xb9) return undefined;
  const count = ((stored[1] as number) << 8) | (stored[2] as number);
  const targets = [...changed].map((key) => ({ key, text: cborText(key), seen: false }));
  const parts: Buffer[] = [Buffer.alloc(3)];
  let entries = 0;
  let at = 3;
  let run = at;
  try {
    for (let i = 0; i < count; i++) {
      if ((stored[at] as number) >> 5 !== 3) return undefined;
      const keyEnd = skipItem(stored, at);
      const end = skipItem(stored, keyEnd);
      const target = targets.find(
        ({ text }) => text.length === keyEnd - at && stored.compare(text, 0, text.length, at, keyEnd) === 0,
      );
      if (target === undefined) entries++;
      else {
        target.seen = true;
        if (at > run) parts.push(stored.subarray(run, at));
        run = end;
        if (Object.hasOwn(data, target.key)) {
          const bytes = entry(data, target.key);
          if (bytes === undefined) return undefined;
          parts.push(bytes);
          entries++;
        }
      }
      at = end;
    }
  } catch {
    return undefined;
  }
  if (at !== stored.length) return undefined;
  if (at > run) parts.push(stored.subarray(run, at));
  for (const target of targets) {
    if (target.seen || !Object.hasOwn(data, target.key)) continue;
    // An array index ("0", "42") comes first in an object's keys, where a whole encode puts it: not last.
    if (ESCAPE.test(target.key) || isArrayIndex(target.key)) return undefined;
    const bytes = entry(data, target.key);
    if (bytes === undefined) return undefined;
    parts.push(bytes);
    entries++;
  }
  // Every key of the data accounted for, once: else the copied entries are not this data's. (Data read key by key
  // holds only the keys read or changed: the rest is the payload's by construction.)
  if ((!partial && entries !== Object.keys(data).length) || entries > 0xffff) return undefined;
  parts[0] = Buffer.from([0xb9, entries >> 8, entries & 0xff]);
  return Buffer.concat(parts);
}
