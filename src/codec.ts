// The payload of a stored record (after its header, record.ts): session data in CBOR or JSON, checked for depth and
// size before it is written, and a record read whole.
import { cborEncode, decodeCbor, encodeCbor, MAX_DEPTH, spliceCbor } from './cbor.js';
import { tooLarge } from './errors.js';
import { CorruptRecordError, type Format, parseRecord, type StoredData, type StoredRecord } from './record.js';

/**
 * The payload of a record. With `maxSize`, a CBOR payload whose base64 text would exceed it is
 * refused (SESSION_TOO_LARGE) before that text is made. With `base` (the payload this data was
 * decoded from, in this format, and the keys changed since), only the changed keys are checked for
 * depth, and a CBOR payload keeps the bytes of the keys that did not change.
 */
export function encodePayload(
  data: StoredData,
  format: Format,
  maxSize = Number.POSITIVE_INFINITY,
  base?: PayloadBase,
): string {
  // What was read back from a payload was checked when it was written: only changed keys are walked.
  if (base === undefined) {
    if (!nestedWithin(data, MAX_DEPTH)) throw tooDeep();
  } else for (const key of base.changed) if (!nestedWithin(data[key], MAX_DEPTH - 1)) throw tooDeep();
  if (format === 'json') return JSON.stringify(data);
  const spliced = base === undefined ? undefined : spliceCbor(base.payload, data, base.changed);
  return base64Within(spliced ?? encodeCbor(data), maxSize);
}

/**
 * The changed keys of `data` spliced into `base.payload`, for data read key by key (cbor.ts's StoredMap): it holds the
 * keys read or changed, the payload the rest. Undefined when a splice cannot be done: the data is then decoded whole.
 */
export function splicePayload(data: StoredData, base: PayloadBase, maxSize: number): string | undefined {
  for (const key of base.changed) if (!nestedWithin(data[key], MAX_DEPTH - 1)) throw tooDeep();
  const spliced = spliceCbor(base.payload, data, base.changed, true);
  return spliced === undefined ? undefined : base64Within(spliced, maxSize);
}

/** `bytes` as base64 text, refused (SESSION_TOO_LARGE) before that text is made when it would exceed `maxSize`. */
function base64Within(bytes: Buffer, maxSize: number): string {
  const length = Math.ceil(bytes.length / 3) * 4;
  if (length > maxSize) throw tooLarge(length, maxSize);
  return bytes.toString('base64');
}

/** The payload some data was decoded from, and the keys changed since (set, deleted or changed in place). */
export interface PayloadBase {
  readonly payload: string;
  readonly changed: ReadonlySet<string>;
}

function tooDeep(): Error {
  return new Error(
    `it is nested deeper than ${MAX_DEPTH} levels (or refers to itself), deeper than a reader can take back`,
  );
}

/** True when `value` nests at most `levels` objects, arrays, Maps or Sets deep. */
function nestedWithin(value: unknown, levels: number): boolean {
  if (typeof value !== 'object' || value === null || value instanceof Date || ArrayBuffer.isView(value)) return true;
  if (levels === 0) return false;
  const items: Iterable<unknown> =
    Array.isArray(value) || value instanceof Set
      ? value
      : value instanceof Map
        ? [...value.keys(), ...value.values()]
        : Object.values(value);
  for (const item of items) if (!nestedWithin(item, levels - 1)) return false;
  return true;
}

/** Refuses a record over maxSize, before anything is written. */
export function checkSize(raw: string, max: number): void {
  if (raw.length > max || (raw.length * 3 > max && Buffer.byteLength(raw) > max))
    throw tooLarge(Buffer.byteLength(raw), max);
}

export function decodePayload(payload: string, format: Format): StoredData {
  let data: unknown;
  try {
    data = format === 'json' ? JSON.parse(payload) : decodeCbor(payload);
  } catch (error) {
    throw new CorruptRecordError(`session record payload is not valid ${format.toUpperCase()}`, { cause: error });
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data) || data instanceof Map) {
    throw new CorruptRecordError(`session record payload is not an object of session data (${format.toUpperCase()})`);
  }
  return data as StoredData;
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

/** A stored string's record and its decoded data; throws for anything that is not a readable record. */
export function decodeRecord(raw: unknown): { record: StoredRecord; data: StoredData } {
  const record = parseRecord(raw);
  return { record, data: decodePayload(record.payload, record.format) };
}
