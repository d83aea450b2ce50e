// A pass-through store that records every call (and can be made slow): lets a spec say "one read, no write" about a
// real backend.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Backend as StoreBackend, CasResult } from '../../src/backends/contract.js';
import { LAYOUT_NAME } from '../../src/names.js';

/** One store call as the counting adapter saw it. */
export interface StoreCall {
  op: 'get' | 'set' | 'delete' | 'cas';
  key: string;
  ttl?: number;
}

/**
 * Delegates every call to a real adapter and records it: lets a test say "one read, no write"
 * about a real backend. Not a mock: the data lives in the real store.
 */
export class CountingAdapter {
  /** The calls on session records and user indexes. */
  readonly calls: StoreCall[] = [];
  /**
   * The calls on the layout record (src/layout-switch.ts), kept apart: read at start-up and at most once a second
   * on a miss, they would make every count above depend on timing. spec/layout-switch.spec.ts is about them.
   */
  readonly layoutCalls: StoreCall[] = [];
  /** Milliseconds every read / write waits before it reaches the real store: a slow store, for deadline specs. */
  delay = { read: 0, write: 0 };
  namespace: string | undefined;
  readonly #inner: StoreBackend;
  readonly #written = new Set<string>();
  readonly #holds: Array<{ op: StoreCall['op']; key: string; reached: () => void; released: Promise<void> }> = [];

  constructor(inner: StoreBackend) {
    this.#inner = inner;
    // Pass purge, listing, counting and batched rewrites on (what the operator commands use), uncounted.
    for (const name of ['purgeExpired', 'scanPage', 'countUnder', 'compareAndSetMany'] as const) {
      const ability = inner[name];
      if (ability !== undefined) Object.assign(this, { [name]: ability.bind(inner) });
    }
    // Pass the backend's atomic compare-and-set on, counted as one call.
    const cas = inner.compareAndSet?.bind(inner);
    if (cas) {
      Object.assign(this, {
        compareAndSet: async (
          key: string,
          expected: string | undefined,
          next: string,
          ttl: number,
        ): Promise<CasResult> => {
          this.#record({ op: 'cas', key });
          await this.#slow('write');
          const result = await cas(key, expected, next, ttl);
          await this.#held('cas', key);
          return result;
        },
      });
    }
  }

  /** True when writes of existing sessions are one atomic compare-and-set. */
  get atomic(): boolean {
    return 'compareAndSet' in this;
  }

  /**
   * Holds the next `op` call on `key` once the real store has answered it, until `release()`: the
   * caller sees the answer only then. Makes a race deterministic (a read, then another client's
   * write, then this caller's next step).
   */
  hold(op: StoreCall['op'], key: string): { reached: Promise<void>; release(): void } {
    let reached = (): void => {};
    let release = (): void => {};
    const reachedPromise = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.#holds.push({ op, key, reached, released });
    return { reached: reachedPromise, release };
  }

  async #held(op: StoreCall['op'], key: string): Promise<void> {
    const at = this.#holds.findIndex((hold) => hold.op === op && hold.key === key);
    if (at === -1) return;
    const [hold] = this.#holds.splice(at, 1);
    hold?.reached();
    await hold?.released;
  }

  async #slow(kind: 'read' | 'write'): Promise<void> {
    if (this.delay[kind] > 0) await sleep(this.delay[kind]);
  }

  async get(key: string): Promise<unknown> {
    this.#record({ op: 'get', key });
    await this.#slow('read');
    const value = await this.#inner.get(key);
    await this.#held('get', key);
    return value;
  }

  async set(key: string, value: string, ttl?: number): Promise<unknown> {
    this.#record(ttl === undefined ? { op: 'set', key } : { op: 'set', key, ttl });
    await this.#slow('write');
    return this.#inner.set(key, value, ttl as number);
  }

  async delete(key: string): Promise<unknown> {
    this.#record({ op: 'delete', key });
    await this.#slow('write');
    return this.#inner.delete(key);
  }

  async clear(): Promise<void> {
    throw new Error('tests never clear a shared store');
  }

  on(): this {
    return this;
  }

  /** Reads a key straight from the real store, without counting. */
  raw(key: string): Promise<unknown> {
    return this.#inner.get(key);
  }

  /** Writes straight to the real store, without counting. */
  async put(key: string, value: string, ttl = 60_000): Promise<void> {
    this.#written.add(key);
    await this.#inner.set(key, value, ttl);
  }

  reset(): void {
    this.calls.length = 0;
    this.layoutCalls.length = 0;
  }

  /** Records a call: on the layout record apart from the rest. */
  #record(call: StoreCall): void {
    (call.key.endsWith(LAYOUT_NAME) ? this.layoutCalls : this.calls).push(call);
    // Cleaned up even when a reset() came between.
    if (call.op === 'set' || call.op === 'cas') this.#written.add(call.key);
  }

  /** Deletes every key this adapter ever saw written, so the shared server is left as it was. */
  async cleanup(): Promise<void> {
    await Promise.all([...this.#written].map((key) => this.#inner.delete(key)));
  }

  count(op: StoreCall['op']): number {
    return this.calls.filter((call) => call.op === op).length;
  }
}
