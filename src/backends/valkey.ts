// Valkey through the iovalkey client of @keyv/valkey (`valkey://host:port`).
import { QuietEmitter, type Backend, type CasResult, type ScannedPage } from './contract.js';
import {
  CAS_SCRIPT,
  casArguments,
  casScriptResult,
  globPrefix,
  reconnectDelay,
  scannedEntries,
} from './redis-family.js';
import { exportOf, type AnyModule } from './url.js';

/**
 * Quirk fixed: that adapter either records every key in a set that never expires (unbounded
 * growth) or rewrites the key as `namespace::<key>`, so its client is used directly: plain GET /
 * SET PX / DEL under the exact key, and the compare-and-set script of the Redis family.
 */
export class ValkeyBackend extends QuietEmitter implements Backend {
  readonly expiresKeys = true;
  /** The iovalkey client: one server here, a cluster in valkey-cluster.ts (same commands). */
  protected readonly client: AnyModule;

  /**
   * `client`: an iovalkey or ioredis client; `errors`: what emits its errors when we opened it (they
   * must be heard, or they crash the process). A client handed in is left as it was: no listener, no close.
   */
  constructor(client: AnyModule, errors?: { on(event: 'error', listener: (error: unknown) => void): unknown }) {
    super();
    this.client = client;
    this.#owned = errors !== undefined;
    errors?.on('error', this.report);
  }

  readonly #owned: boolean;

  /**
   * Resolves once the first connection is up, or after `timeout`: without the offline queue a
   * command sent while connecting fails. If the server is down, commands fail fast until it is back.
   */
  connected(timeout: number): Promise<void> {
    if (this.client.status === 'ready') return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeout);
      this.client.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.client.get(key)) ?? undefined;
  }

  async set(key: string, value: string, ttl: number): Promise<boolean> {
    await this.client.set(key, value, 'PX', ttl);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    return (await this.client.del(key)) > 0;
  }

  async compareAndSet(key: string, expected: string | undefined, next: string, ttl: number): Promise<CasResult> {
    return casScriptResult(await this.client.eval(CAS_SCRIPT, 1, key, ...casArguments(expected, next, ttl)));
  }

  /** A SCAN page under `prefix` (cursor: Valkey's own). */
  async scanPage(prefix: string, cursor: string | undefined, count: number): Promise<ScannedPage> {
    const [next, keys] = (await this.client.scan(cursor ?? '0', 'MATCH', globPrefix(prefix), 'COUNT', count)) as [
      string,
      string[],
    ];
    const values: Array<string | null> = keys.length === 0 ? [] : await this.client.mget(keys);
    const entries = scannedEntries(keys, values);
    return { entries, cursor: next === '0' ? undefined : next };
  }

  /** Valkey expires keys itself. */
  async purgeExpired(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    if (this.#owned) await this.client.quit().catch(() => this.client.disconnect());
  }
}

/** `valkey://host:port` (`valkeys://` with TLS). */
export async function openValkey(url: string, scheme: string, timeout: number): Promise<Backend> {
  const KeyvValkey = await exportOf('@keyv/valkey', scheme, 'KeyvValkey');
  const adapter = new KeyvValkey(url.replace(/^valkey(s?):\/\//i, 'redis$1://'), {
    useRedisSets: false,
    enableOfflineQueue: false,
    connectTimeout: timeout,
    maxRetriesPerRequest: 1,
    retryStrategy: reconnectDelay,
  });
  // The adapter re-emits every client error on itself: unheard, that would crash the process
  // whenever the server is unreachable (at start-up, say).
  const backend = new ValkeyBackend(adapter.redis, adapter);
  await backend.connected(timeout);
  return backend;
}
