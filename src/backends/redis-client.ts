// A node-redis client (a server or a cluster) as a backend: plain GET / SET PX / DEL under the exact key,
// the compare-and-set script and SCAN pages of the Redis family. Used for redis:// URLs and for a
// @keyv/redis adapter or a node-redis client handed in, whose own key prefixing is never involved.
import type { Backend, CasResult, ScannedPage } from './contract.js';
import { type RedisScripting, redisCompareAndSet, redisScanPage } from './redis-family.js';

/** The node-redis calls this backend makes (a RedisClientType or a RedisClusterType). */
export interface NodeRedisClient extends RedisScripting {
  get(key: string): Promise<string | null | unknown>;
  set(key: string, value: string, options: { PX: number; expiration: { type: 'PX'; value: number } }): Promise<unknown>;
  del(key: string): Promise<number>;
}

/** A connection this library opened: how to let go of it, and what emits its background errors. */
export interface Owned {
  close(): Promise<void>;
  /** Drops the connection without a goodbye. */
  destroy(): void;
  on(event: 'error', listener: (error: unknown) => void): unknown;
}

export class NodeRedisBackend implements Backend {
  readonly expiresKeys = true;
  readonly #client: NodeRedisClient;
  readonly #owned: Owned | undefined;

  /** `owned`: the connection we opened (closed by close()); undefined for a client handed in, which is left alone. */
  constructor(client: NodeRedisClient, owned?: Owned) {
    this.#client = client;
    this.#owned = owned;
    if (owned !== undefined) {
      this.on = (event, listener) => owned.on(event, listener);
      this.destroy = () => owned.destroy();
    }
  }

  on?(event: 'error', listener: (error: unknown) => void): unknown;
  destroy?(): void;

  async get(key: string): Promise<unknown> {
    return (await this.#client.get(key)) ?? undefined;
  }

  async set(key: string, value: string, ttl: number): Promise<boolean> {
    // node-redis 4 reads PX; 5 and 6 read `expiration` first, and have PX deprecated.
    await this.#client.set(key, value, { PX: ttl, expiration: { type: 'PX', value: ttl } });
    return true;
  }

  async delete(key: string): Promise<boolean> {
    return (await this.#client.del(key)) > 0;
  }

  compareAndSet(key: string, expected: string | undefined, next: string, ttl: number): Promise<CasResult> {
    return redisCompareAndSet(this.#client, key, expected, next, ttl);
  }

  scanPage(prefix: string, cursor: string | undefined, count: number): Promise<ScannedPage> {
    return redisScanPage(this.#client, prefix, cursor, count);
  }

  /** Redis expires keys itself. */
  async purgeExpired(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    await this.#owned?.close();
  }
}
