// What a handler did to the session data, key by key: what it set or deleted, what it may have mutated in place, and
// whether the data changed at all. A loaded CBOR session's data is read key by key as the handler asks (unread.ts).
import type { StoredMap } from './cbor.js';
import { encodePayload, fingerprint, splicePayload } from './codec.js';
import type { Format, StoredData as RecordData, StoredRecord } from './record.js';
import { messageOf, SessionError } from './errors.js';
import type { ChangeSet, Updater } from './plan.js';
import { define, UnreadPayload } from './unread.js';

const NO_UPDATES: ReadonlyMap<string, readonly Updater[]> = new Map();

/** Two encodings of a value differ; one that could not be encoded (undefined) counts as changed. */
function differs(before: Buffer | undefined, now: Buffer | undefined): boolean {
  return before === undefined || now === undefined || !before.equals(now);
}

export function isEmpty(data: object): boolean {
  for (const _ in data) return false;
  return true;
}

/**
 * The data of one request's session and what happened to it. Nothing is copied or encoded until
 * the commit asks: a read-only request pays for a Set it never creates.
 */
export class DataChanges {
  /** The data; while `#unread`, only the keys read or changed so far, the stored payload holding the rest. */
  readonly data: RecordData;
  readonly #maxSize: number;
  #unread: UnreadPayload | undefined;
  /** Top-level keys the handler set or deleted. */
  #touched: Set<string> | undefined;
  /**
   * Keys whose object value was handed to the handler, with its encoding then: nested mutation shows as a difference.
   */
  #snapshots: Map<string, Buffer | undefined> | undefined;
  /** The data was replaced or cleared as a whole. */
  #replaced = false;
  /** Keys changed only through update(), with their functions in order: run again at commit on the freshest value. */
  #updates: Map<string, Updater[]> | undefined;
  #encoded: { format: Format; payload: string } | undefined;
  /** Keys take() took out of the store. */
  #taken: Set<string> | undefined;

  /** `stored`: the payload of a loaded session, `data` (empty then) gets its keys as they are read. */
  constructor(data: RecordData, maxSize: number, stored?: StoredMap) {
    this.data = data;
    this.#maxSize = maxSize;
    this.#unread = stored === undefined ? undefined : new UnreadPayload(stored);
  }

  /** `key` is about to be read: its stored value is put in the data if it is not decided there yet. */
  read(key: string): void {
    this.#unread?.read(this.data, key, this.#touched);
  }

  /** The data with every key in it: before anything looks at it whole. */
  whole(): RecordData {
    this.#unread?.readAll(this.data, this.#touched);
    this.#unread = undefined;
    return this.data;
  }

  /** True when the session holds no data. */
  get empty(): boolean {
    return this.#unread === undefined ? isEmpty(this.data) : this.#unread.empty(this.data, this.#touched);
  }

  /**
   * The handler read the object `value` of a stored `key`: remember its encoding, once, unless the key was set since.
   */
  handedOut(key: string, value: object): void {
    if (this.#touched?.has(key) || this.#snapshots?.has(key) || !Object.hasOwn(this.data, key)) return;
    (this.#snapshots ??= new Map()).set(key, fingerprint(value));
  }

  /** The handler set, defined or deleted `key`. */
  touch(key: string | symbol): void {
    this.#encoded = undefined;
    if (typeof key !== 'string') return;
    (this.#touched ??= new Set()).add(key);
    // A plain assignment decides the key's value: updates before it are in it, or overwritten by it.
    this.#updates?.delete(key);
  }

  /**
   * ctx.session.update(`key`, `fn`): the key becomes fn's result now, and unless its value was
   * already decided in this request (assigned, mutated in place, or the data replaced), `fn` runs
   * again at commit on the freshest stored value. Resolves with the new value.
   */
  update(key: string, fn: Updater): unknown {
    const decided =
      this.#replaced || (this.#touched?.has(key) === true && this.#updates?.has(key) !== true) || this.#mutated(key);
    this.read(key);
    const value = fn(this.data[key]);
    if (typeof (value as PromiseLike<unknown> | undefined)?.then === 'function') {
      throw new TypeError(
        `ctx.session.update('${key}', fn): fn returned a Promise; it must be synchronous and free of side effects, ` +
          `because it runs again at commit on the freshest stored value`,
      );
    }
    define(this.data, key, value);
    this.#encoded = undefined;
    (this.#touched ??= new Set()).add(key);
    if (!decided) {
      const updates = (this.#updates ??= new Map());
      updates.set(key, [...(updates.get(key) ?? []), fn]);
    }
    return value;
  }

  /** The object at `key` was handed out and has been changed in place since. */
  #mutated(key: string): boolean {
    if (this.#snapshots?.has(key) !== true) return false;
    const before = this.#snapshots.get(key);
    const now = fingerprint(this.data[key]);
    return differs(before, now);
  }

  /** `key` is gone from the stored record and from the data alike (take()): nothing of it is left to write. */
  forget(key: string): void {
    this.#unread?.forget(key);
    // A write built on the payload loaded leaves it out, as a write of the whole data would.
    (this.#taken ??= new Set()).add(key);
    Reflect.deleteProperty(this.data, key);
    this.#snapshots?.delete(key);
    this.#encoded = undefined;
  }

  /** The handler's own value is at `key` (set by it, or the data replaced as a whole), not the stored one. */
  setByHandler(key: string): boolean {
    return this.#replaced || this.#touched?.has(key) === true;
  }

  /** The handler set `key`, or changed the object at it in place. */
  changedByHandler(key: string): boolean {
    return this.setByHandler(key) || this.#mutated(key);
  }

  /** Every key removed, as the handler's choice: the data is replaced as a whole. */
  clear(): void {
    this.#removeAll();
    this.#replaced = true;
    this.#updates = undefined;
    this.#encoded = undefined;
  }

  /** The data replaced as a whole by `entries` (`ctx.session = {...}`). */
  replace(entries: readonly [string, unknown][]): void {
    this.clear();
    for (const [key, value] of entries) define(this.data, key, value);
  }

  /** Every key removed and nothing remembered: a destroyed session starts over. */
  reset(): void {
    this.#removeAll();
    this.#touched = undefined;
    this.#updates = undefined;
    this.#snapshots = undefined;
    this.#taken = undefined;
    this.#replaced = false;
    this.#encoded = undefined;
  }

  #removeAll(): void {
    this.#unread = undefined;
    for (const key of Reflect.ownKeys(this.data)) Reflect.deleteProperty(this.data, key);
  }

  /** Encodes the data, once per format per commit; untouched data is still exactly `stored`'s payload. */
  encode(format: Format, stored: StoredRecord | undefined): string {
    if (this.#encoded?.format === format) return this.#encoded.payload;
    const untouched = this.#touched === undefined && this.#snapshots === undefined && this.#taken === undefined;
    if (stored?.format === format && !this.#replaced && untouched) return stored.payload;
    let payload: string;
    // Built on the stored payload where it can be: only what this request changed is encoded anew.
    const base =
      stored?.format === format && !this.#replaced
        ? { payload: stored.payload, changed: this.#changedKeys() }
        : undefined;
    try {
      // Data read key by key is spliced into the payload it was read from, else read whole first (take() changed it).
      const partial = base !== undefined && this.#unread?.payload === base.payload;
      const spliced = partial ? splicePayload(this.data, base, this.#maxSize) : undefined;
      payload = spliced ?? encodePayload(this.whole(), format, this.#maxSize, base);
    } catch (error) {
      if (error instanceof SessionError) throw error;
      throw new SessionError(
        'SESSION_UNENCODABLE',
        `koa-kv-session: the session data cannot be encoded as ${format.toUpperCase()}: ${messageOf(error)}`,
        500,
        { cause: error },
      );
    }
    this.#encoded = { format, payload };
    return payload;
  }

  /** The keys set, deleted or updated, and those handed out and changed in place since. */
  #changedKeys(): Set<string> {
    const changed = new Set([...(this.#touched ?? []), ...(this.#taken ?? [])]);
    for (const key of this.#snapshots?.keys() ?? []) if (!changed.has(key) && this.#mutated(key)) changed.add(key);
    return changed;
  }

  /** True when the data now differs from `stored`'s; compares encodings, so nested mutation counts. */
  differFrom(stored: StoredRecord | undefined): boolean {
    if (stored === undefined) return !this.empty;
    if (this.#replaced || this.#touched !== undefined) return this.encode(stored.format, stored) !== stored.payload;
    // Only objects were handed out: compare those, key by key, instead of encoding the whole session.
    for (const [key, before] of this.#snapshots ?? []) {
      const now = fingerprint(this.data[key]);
      if (differs(before, now)) return true;
    }
    return false;
  }

  /**
   * What this request changed, key by key: set or mutated in place, deleted, or updated; `permanent` when the flag
   * changed.
   */
  changeSet(permanent: boolean | undefined): ChangeSet {
    const set = new Map<string, unknown>();
    const deleted: string[] = [];
    const updates: ReadonlyMap<string, readonly Updater[]> = this.#updates ?? NO_UPDATES;
    if (this.#replaced) {
      for (const key of Object.keys(this.data)) set.set(key, this.data[key]);
      return { replaced: true, set, deleted, updates: NO_UPDATES, permanent };
    }
    const note = (key: string) => {
      if (Object.hasOwn(this.data, key)) set.set(key, this.data[key]);
      else deleted.push(key);
    };
    for (const key of this.#touched ?? []) if (!updates.has(key)) note(key);
    for (const [key, before] of this.#snapshots ?? []) {
      if (this.#touched?.has(key)) continue;
      const now = Object.hasOwn(this.data, key) ? fingerprint(this.data[key]) : undefined;
      if (differs(before, now)) note(key);
    }
    return { replaced: false, set, deleted, updates, permanent };
  }
}
