// memcached through @keyv/memcache (`memcache://host:port[,host:port]`).
import { QuietEmitter, type Backend } from './contract.js';
import { exportOf, hostsOf, type AnyModule } from './url.js';

const THIRTY_DAYS_S = 30 * 86_400;

/**
 * memcached through a memjs client (the one inside @keyv/memcache), called directly. Quirks fixed: a
 * TTL over 30 days is read by memcached as an absolute Unix time (so the default 31-day lifetime
 * expired at once); the adapter turns a miss into an `{ value: undefined }` envelope, a hit into a
 * Buffer run through Keyv's JSON deserializer, and prefixes its namespace; `clear()` flushes the
 * whole server (never called here). No compare-and-set (memjs has no `cas`), no way to list keys.
 */
export class MemcacheBackend extends QuietEmitter implements Backend {
  readonly expiresKeys = true;
  readonly #client: AnyModule;
  readonly #owned: boolean;

  /**
   * `client`: a memjs client; `errors`: the adapter we opened it through (closed by close()), none for a client handed
   * in.
   */
  constructor(client: AnyModule, errors?: { on(event: 'error', listener: (error: unknown) => void): unknown }) {
    super();
    this.#client = client;
    this.#owned = errors !== undefined;
    errors?.on('error', this.report);
  }

  async get(key: string): Promise<string | undefined> {
    const { value } = (await this.#client.get(key)) as { value: Buffer | null };
    return value === null ? undefined : value.toString('utf8');
  }

  async set(key: string, value: string, ttl: number): Promise<boolean> {
    const seconds = Math.ceil(ttl / 1000);
    // Past 30 days memcached wants an absolute Unix time.
    const expires = seconds > THIRTY_DAYS_S ? Math.ceil((Date.now() + ttl) / 1000) : seconds;
    if (!(await this.#client.set(key, value, { expires }))) throw new Error('memcached did not store the record');
    return true;
  }

  async delete(key: string): Promise<boolean> {
    return Boolean(await this.#client.delete(key));
  }

  /** memcached expires keys itself. */
  async purgeExpired(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    if (this.#owned) this.#client.close();
  }
}

export async function openMemcache(url: string, scheme: string, timeout: number): Promise<Backend> {
  const KeyvMemcache = await exportOf('@keyv/memcache', scheme, 'KeyvMemcache');
  const adapter = new KeyvMemcache(hostsOf(url), { timeout: timeout / 1000, retries: 1, keepAlive: true });
  return new MemcacheBackend(adapter.client, adapter);
}
