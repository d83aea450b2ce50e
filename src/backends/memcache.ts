// memcached through @keyv/memcache (`memcache://host:port[,host:port]`).
import { QuietEmitter, type Backend } from './contract.js';
import { exportOf, hostsOf, type AnyModule } from './url.js';

const THIRTY_DAYS_S = 30 * 86_400;

/**
 * Quirks fixed: a TTL over 30 days is read by memcached as an absolute Unix time (so the default
 * 31-day lifetime expired at once); a miss comes back as an `{ value: undefined }` envelope and a
 * hit as a Buffer run through Keyv's JSON deserializer; `clear()` flushes the whole server (never
 * called here). No compare-and-set (memjs has no `cas`), and no way to list keys.
 */
export class MemcacheBackend extends QuietEmitter implements Backend {
  readonly expiresKeys = true;
  readonly #inner: AnyModule;

  constructor(KeyvMemcache: AnyModule, servers: string, timeout: number) {
    super();
    this.#inner = new KeyvMemcache(servers, { deserialize: (raw: Buffer) => raw, timeout: timeout / 1000, retries: 1, keepAlive: true });
    this.#inner.on('error', this.report);
  }

  async get(key: string): Promise<string | undefined> {
    const value: unknown = await this.#inner.get(key);
    if (Buffer.isBuffer(value)) return value.toString('utf8');
    return typeof value === 'string' ? value : undefined;
  }

  async set(key: string, value: string, ttl: number): Promise<boolean> {
    const seconds = Math.ceil(ttl / 1000);
    // Past 30 days memcached wants an absolute Unix time; @keyv/memcache divides what it gets by 1000.
    const expires = seconds > THIRTY_DAYS_S ? Date.now() + ttl : ttl;
    await this.#inner.set(key, value, expires);
    return true;
  }

  delete(key: string): Promise<boolean> {
    return this.#inner.delete(key);
  }

  /** memcached expires keys itself. */
  async purgeExpired(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    this.#inner.client.close();
  }
}

export async function openMemcache(url: string, scheme: string, timeout: number): Promise<Backend> {
  return new MemcacheBackend(await exportOf('@keyv/memcache', scheme, 'KeyvMemcache'), hostsOf(url), timeout);
}
