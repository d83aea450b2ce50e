// Background purges of expired records: one at a time, never awaited by a request; on a timer where the store keeps
// expired records, and on one request in N.
import { debugLog } from './debug.js';
import type { SessionStore } from './store.js';
import { purgeExpired } from './store-scan.js';

const debug = debugLog('koa-kv-session');

export interface CleanupConfig {
  /** On average one request in N starts a purge (0: never). */
  readonly cleanupEveryNRequests: number;
  /** Milliseconds between purges on the timer (0: no timer). */
  readonly cleanupInterval: number;
}

export class CleanupScheduler {
  readonly #store: SessionStore;
  readonly #config: CleanupConfig;
  readonly #report: (error: Error) => void;
  #running: Promise<unknown> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(store: SessionStore, config: CleanupConfig, report: (error: Error) => void) {
    this.#store = store;
    this.#config = config;
    this.#report = report;
    // The timer never keeps the process alive, and stops for good on a store that expires keys
    // itself or cannot purge.
    if (config.cleanupInterval > 0) {
      this.#timer = setInterval(() => {
        store.abilities().then(
          ({ purge, ownExpiry }) => {
            if (purge && !ownExpiry) this.#purgeInBackground();
            else this.#stopTimer();
          },
          (error: Error) => report(error),
        );
      }, config.cleanupInterval);
      this.#timer.unref();
    }
  }

  /**
   * Called once per request: on average one in `cleanupEveryNRequests` starts a purge, which the request does not wait
   * for.
   */
  onRequest(): void {
    const n = this.#config.cleanupEveryNRequests;
    if (n !== 0 && Math.random() * n < 1) this.#purgeInBackground();
  }

  /** Stops the timer and waits for a purge under way. */
  async stop(): Promise<void> {
    this.#stopTimer();
    await this.#running;
  }

  #purgeInBackground(): void {
    if (this.#running !== undefined) return;
    this.#running = purgeExpired(this.#store)
      .then((removed) => debug('background purge removed %d expired sessions', removed))
      .catch((error: Error) => this.#report(error))
      .finally(() => {
        this.#running = undefined;
      });
  }

  #stopTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
