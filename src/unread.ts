// A loaded CBOR session's data, read from its stored payload key by key as the handler asks: a request that reads two
// keys of a large session decodes those two. Until it is read whole, the data object holds the keys read or changed so
// far, and the payload (cbor.ts's StoredMap) every other.
import { StoredMap } from './cbor.js';
import type { StoredData } from './record.js';
import { messageOf, SessionError } from './errors.js';

export class UnreadPayload {
  readonly #stored: StoredMap;
  /** Keys asked for that the payload does not hold, and keys taken out of it since (take()). */
  #absent: Set<string> | undefined;

  constructor(stored: StoredMap) {
    this.#stored = stored;
  }

  /** The payload (base64) the data was loaded from. */
  get payload(): string {
    return this.#stored.payload;
  }

  /** Puts the stored value of `key` in `data`, unless `data` decides that key already (it holds it, or `changed`). */
  read(data: StoredData, key: string, changed: ReadonlySet<string> | undefined): void {
    if (Object.hasOwn(data, key) || changed?.has(key) || this.#absent?.has(key)) return;
    const found = decoding(() => this.#stored.find(key));
    if (found === undefined) (this.#absent ??= new Set()).add(key);
    // Assigned: only "__proto__" is an accessor of a plain object, and a payload that holds it is decoded whole.
    else data[key] = found.value;
  }

  /** `key` is no longer stored (take() took it out): it is not read back. */
  forget(key: string): void {
    (this.#absent ??= new Set()).add(key);
  }

  /**
   * Puts every stored key in `data`, in stored order, where `data` does not decide it already: a key read is kept as
   * it is (the handler may hold its value), a changed one as the handler left it, new keys after the stored ones.
   */
  readAll(data: StoredData, changed: ReadonlySet<string> | undefined): void {
    const all = decoding(() => this.#stored.decodeAll());
    const held: StoredData = { ...data };
    for (const key of Object.keys(held)) Reflect.deleteProperty(data, key);
    for (const key of Object.keys(all)) {
      const decided = Object.hasOwn(held, key) || changed?.has(key) === true || this.#absent?.has(key) === true;
      if (!decided) define(data, key, all[key]);
      else if (Object.hasOwn(held, key)) define(data, key, held[key]);
    }
    for (const key of Object.keys(held)) if (!Object.hasOwn(data, key)) define(data, key, held[key]);
  }

  /** True when nothing is left: `data` holds no key, and every stored key was deleted (`changed`) or taken. */
  empty(data: StoredData, changed: ReadonlySet<string> | undefined): boolean {
    for (const _ in data) return false;
    if (changed === undefined && this.#absent === undefined) return this.#stored.size === 0;
    return this.#stored.keys().every((key) => changed?.has(key) === true || this.#absent?.has(key) === true);
  }
}

export function define(data: StoredData, key: string, value: unknown): void {
  Reflect.defineProperty(data, key, { value, writable: true, enumerable: true, configurable: true });
}

/** Session data decoded whole: a payload read key by key is decoded now. */
export function dataOf(data: StoredData | StoredMap): StoredData {
  return data instanceof StoredMap ? decoding(() => data.decodeAll()) : data;
}

/** A stored payload decoded after load: one that passed the checks at load and still fails is a corrupt record. */
function decoding<T>(decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    throw new SessionError(
      'SESSION_RECORD_CORRUPT',
      `koa-kv-session: the stored session data cannot be decoded (${messageOf(error)})`,
      500,
      { cause: error },
    );
  }
}
