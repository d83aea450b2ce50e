// etcd through the etcd3 client of @keyv/etcd (`etcd://host:port[,host:port]`).
import { missed, purgePages, QuietEmitter, type Backend, type CasResult, type ScannedPage } from './contract.js';
import { recordExpiry } from '../record.js';
import { exportOf, hostsOf, type AnyModule } from './url.js';

/**
 * Quirks fixed: that adapter puts every key on one shared lease (so all sessions expire together),
 * and has no conditional write. Here records carry their own expiry (checked on read, removed by
 * purge), and compare-and-set is an etcd transaction.
 */
export class EtcdBackend extends QuietEmitter implements Backend {
  readonly scansInKeyOrder = true;
  readonly #client: AnyModule;
  readonly #owned: boolean;

  /**
   * `client`: an etcd3 client; `errors`: the adapter we opened it through (closed by close()), none for a client handed
   * in.
   */
  constructor(client: AnyModule, errors?: { on(event: 'error', listener: (error: unknown) => void): unknown }) {
    super();
    this.#client = client;
    this.#owned = errors !== undefined;
    errors?.on('error', this.report);
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.#client.get(key).string()) ?? undefined;
  }

  async set(key: string, value: string): Promise<boolean> {
    await this.#client.put(key).value(value);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    const result = await this.#client.delete().key(key);
    return result.deleted !== '0';
  }

  async compareAndSet(key: string, expected: string | undefined, next: string): Promise<CasResult> {
    const condition =
      expected === undefined ? this.#client.if(key, 'Create', '==', 0) : this.#client.if(key, 'Value', '==', expected);
    const result = await condition.then(this.#client.put(key).value(next)).else(this.#client.get(key)).commit();
    if (result.succeeded) return { status: 'saved' };
    const kvs = result.responses?.[0]?.response_range?.kvs ?? [];
    return missed(kvs.length === 0 ? undefined : Buffer.from(kvs[0].value).toString('utf8'));
  }

  /** A page of records under `prefix`, in key order: the key range after `cursor` up to the end of the prefix. */
  async scanPage(prefix: string, cursor: string | undefined, count: number): Promise<ScannedPage> {
    const start = cursor === undefined ? Buffer.from(prefix) : Buffer.concat([Buffer.from(cursor), Buffer.from([0])]);
    const found: Record<string, string> = await this.#client
      .getAll()
      .inRange({ start, end: prefixEnd(prefix) })
      .limit(count)
      .strings();
    const entries = Object.entries(found).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return { entries, cursor: entries.length === count ? entries[entries.length - 1]?.[0] : undefined };
  }

  /** Deletes expired records under `prefix`, page by page (bounded memory). */
  purgeExpired(prefix: string, now: number): Promise<number> {
    return purgePages(
      this,
      prefix,
      (value) => recordExpiry(value) <= now,
      async (keys) => {
        for (const key of keys) await this.#client.delete().key(key);
      },
    );
  }

  async close(): Promise<void> {
    if (this.#owned) this.#client.close();
  }
}

/** The first key after every key that starts with `prefix` (etcd's range end for a prefix). */
function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

export async function openEtcd(url: string, scheme: string, timeout: number): Promise<Backend> {
  const KeyvEtcd = await exportOf('@keyv/etcd', scheme, 'KeyvEtcd');
  const adapter = new KeyvEtcd(hostsOf(url), { dialTimeout: timeout });
  return new EtcdBackend(adapter.client, adapter);
}
