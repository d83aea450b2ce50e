// In-process stores: `memory://` (entries that expire), and a plain Map handed in as `store`.
import { recordExpiry } from '../record.js';
import { missed, pageOfKeys, type Backend, type CasResult, type ScannedPage } from './contract.js';

/**
 * The store for `memory://`: a Map whose entries expire. Keyv's plain Map never forgets an entry,
 * so a long-running test server would grow without bound. Atomic by construction: nothing else
 * runs between a check and a write.
 */
export class MemoryBackend implements Backend {
  readonly scansInKeyOrder = true;
  readonly #entries = new Map<string, { value: unknown; expires: number }>();
  #writes = 0;

  async get(key: string): Promise<unknown> {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expires <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    // Sweep expired entries now and then, so memory follows the live sessions.
    if (++this.#writes % 1000 === 0) this.sweep();
    this.#entries.set(key, { value, expires: ttl ? Date.now() + ttl : Number.POSITIVE_INFINITY });
    return true;
  }

  async delete(key: string): Promise<boolean> {
    return this.#entries.delete(key);
  }

  async compareAndSet(key: string, expected: string | undefined, next: string, ttl: number): Promise<CasResult> {
    const entry = this.#entries.get(key);
    const current = entry !== undefined && entry.expires > Date.now() ? entry.value : undefined;
    if (current !== expected) return missed(current);
    this.#entries.set(key, { value: next, expires: Date.now() + ttl });
    return { status: 'saved' };
  }

  /** Removes the expired entries under `prefix` (by TTL, or by the expiry in a record's header); returns how many. */
  async purgeExpired(prefix: string, now: number): Promise<number> {
    let removed = 0;
    for (const [key, entry] of this.#entries) {
      if (key.startsWith(prefix) && (entry.expires <= now || recordExpiry(entry.value) <= now)) {
        this.#entries.delete(key);
        removed++;
      }
    }
    return removed;
  }

  /** A page of the live entries under `prefix`, in key order. */
  async scanPage(prefix: string, cursor: string | undefined, count: number): Promise<ScannedPage> {
    const now = Date.now();
    const live = [...this.#entries].filter(([, entry]) => entry.expires > now).map(([key]) => key);
    const { page, cursor: next } = pageOfKeys(live, prefix, cursor, count);
    return { entries: page.map((key) => [key, String(this.#entries.get(key)?.value)] as const), cursor: next };
  }

  /** Removes expired entries; returns how many. */
  sweep(now = Date.now()): number {
    let removed = 0;
    for (const [key, entry] of this.#entries) {
      if (entry.expires <= now) {
        this.#entries.delete(key);
        removed++;
      }
    }
    return removed;
  }

  get size(): number {
    return this.#entries.size;
  }
}

/**
 * What a Map handed in needs to be (a Map, or Map-like such as @keyv/bigmap's BigMap): synchronous calls and iteration.
 */
export interface MapLike {
  get(key: unknown): unknown;
  set(key: unknown, value: unknown): unknown;
  delete(key: unknown): unknown;
  keys(): Iterable<unknown>;
  [Symbol.iterator](): Iterator<[unknown, unknown]>;
}

/**
 * True for a Map (a subclass too) that keeps what it is given, and for @keyv/bigmap's BigMap. An LRU
 * cache shaped like a Map (lru-cache, quick-lru, a subclass with a `max`) drops sessions: not one.
 */
export function isMapLike(value: object): value is MapLike {
  const candidate = value as Record<string | symbol, unknown>;
  if (evicts(candidate)) return false;
  if (value instanceof Map) return true;
  const calls = ['get', 'set', 'delete', 'keys', Symbol.iterator];
  return value.constructor?.name === 'BigMap' && calls.every((name) => typeof candidate[name] === 'function');
}

/** A store with a size limit of its own (`max`, `maxSize`): it drops entries when full. */
export function evicts(value: Record<string | symbol, unknown>): boolean {
  return ['max', 'maxSize'].some(
    (name) => typeof value[name] === 'number' && Number.isFinite(value[name]) && (value[name] as number) > 0,
  );
}

/**
 * A Map (or Map-like) handed in as `store`: it never forgets an entry, so expiry is read from the
 * record header (on load, and by purge). Its checks and writes are synchronous, hence atomic.
 */
export function mapBackend(map: MapLike): Backend {
  return {
    get: async (key) => map.get(key),
    set: async (key, value) => map.set(key, value),
    delete: async (key) => map.delete(key),
    async compareAndSet(key, expected, next) {
      const current = map.get(key);
      if (current !== expected) return missed(current);
      map.set(key, next);
      return { status: 'saved' };
    },
    async purgeExpired(prefix, now) {
      let removed = 0;
      for (const [key, value] of map) {
        if (typeof key === 'string' && key.startsWith(prefix) && recordExpiry(value) <= now) {
          map.delete(key);
          removed++;
        }
      }
      return removed;
    },
    scansInKeyOrder: true,
    async scanPage(prefix, cursor, count) {
      const { page, cursor: next } = pageOfKeys(map.keys(), prefix, cursor, count);
      return { entries: page.map((key) => [key, String(map.get(key))] as const), cursor: next };
    },
  };
}
