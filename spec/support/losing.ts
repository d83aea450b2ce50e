// A real backend whose next writes are applied and then reported as failed, as a reply lost on the way back
// would be: for in-process stores (SQLite, memory), and for any backend without a proxy in front of it.
import type { Backend, CasResult } from '../../src/backends/contract.js';

/** `inner` with get/set/delete and its abilities; `loseNext()` makes the next writes land and then fail. */
export class LosingBackend {
  #toLose = 0;
  #toSkip = 0;
  /** How many writes were applied and then reported as failed. */
  lost = 0;
  readonly #inner: Backend;

  constructor(inner: Backend) {
    this.#inner = inner;
    for (const name of ['purgeExpired', 'scanPage', 'countUnder', 'compareAndSetMany'] as const) {
      const ability = inner[name];
      if (ability !== undefined) Object.assign(this, { [name]: ability.bind(inner) });
    }
    const cas = inner.compareAndSet?.bind(inner);
    if (cas !== undefined) {
      Object.assign(this, {
        compareAndSet: async (
          key: string,
          expected: string | undefined,
          next: string,
          ttl: number,
        ): Promise<CasResult> => this.#after(await cas(key, expected, next, ttl)),
      });
    }
    if (inner.expiresKeys === true) Object.assign(this, { expiresKeys: true });
  }

  /** The next `count` writes (after `skip` that go through) land in the store, and their callers hear an error. */
  loseNext(count = 1, skip = 0): void {
    this.#toLose += count;
    this.#toSkip = skip;
  }

  /** Each write lands and is then lost with probability `rate` (0 stops it). */
  loseRandomly(rate: number): void {
    this.#rate = rate;
  }

  #rate = 0;

  #after<T>(result: T): T {
    if (this.#rate > 0 && Math.random() < this.#rate) this.#toLose++;
    if (this.#toLose === 0) return result;
    if (this.#toSkip > 0) {
      this.#toSkip--;
      return result;
    }
    this.#toLose--;
    this.lost++;
    throw new Error('connection lost before the reply (the write was applied)');
  }

  get(key: string): Promise<unknown> {
    return this.#inner.get(key);
  }

  async set(key: string, value: string, ttl: number): Promise<unknown> {
    return this.#after(await this.#inner.set(key, value, ttl));
  }

  delete(key: string): Promise<unknown> {
    return this.#inner.delete(key);
  }
}
