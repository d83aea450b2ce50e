// Wrappers around Keyv adapters whose own behaviour would break session semantics; each says which quirk it fixes.
import { EventEmitter } from 'node:events';
import { CAS_SCRIPT, casDigest, casScriptResult, globPrefix, missed, reconnectDelay, type CasResult, type ScannedPage } from './adapters.js';
import { recordExpiry } from './codec.js';

// Untyped third-party clients (memjs, iovalkey, etcd3, the AWS SDK) behind the adapters.
// biome-ignore lint/suspicious/noExplicitAny: untyped third-party boundary
type Any = any;

const THIRTY_DAYS_S = 30 * 86_400;

/**
 * An EventEmitter that only emits 'error' when someone listens: an adapter's background errors (a
 * dropped connection, a table option the server does not support) must never crash the process.
 */
export class QuietEmitter extends EventEmitter {
  report = (error: unknown): void => {
    if (this.listenerCount('error') > 0) this.emit('error', error);
  };
}

/**
 * memcached through @keyv/memcache. Quirks fixed: a TTL over 30 days is read by memcached as an
 * absolute Unix time (so the default 31-day lifetime expired at once); a miss comes back as an
 * `{ value: undefined }` envelope and a hit as a Buffer run through Keyv's JSON deserializer;
 * `clear()` flushes the whole server.
 */
export class MemcacheAdapter extends QuietEmitter {
  readonly opts: { readonly dialect: 'memcache'; readonly url: string };
  namespace: string | undefined;
  readonly #inner: Any;

  constructor(KeyvMemcache: Any, servers: string, timeout: number) {
    super();
    this.opts = { dialect: 'memcache', url: servers };
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

  async clear(): Promise<void> {
    throw new Error('koa-kv-session: refusing to clear memcached: it would flush the whole server');
  }

  /** memcached expires keys itself (and cannot list them). */
  async purgeExpired(): Promise<number> {
    return 0;
  }

  async disconnect(): Promise<void> {
    this.#inner.client.close();
  }
}

/**
 * Valkey through the iovalkey client of @keyv/valkey. Quirk fixed: that adapter either records every
 * key in a set that never expires (unbounded growth) or rewrites the key as `namespace::<key>`, so we
 * use its client directly: plain GET / SET PX / DEL under the exact key, and a compare-and-set script.
 */
export class ValkeyAdapter extends QuietEmitter {
  readonly opts: { readonly dialect: 'valkey'; readonly url: string };
  namespace: string | undefined;
  readonly #client: Any;

  constructor(KeyvValkey: Any, url: string, timeout: number) {
    super();
    this.opts = { dialect: 'valkey', url };
    const adapter = new KeyvValkey(url.replace(/^valkey(s?):\/\//i, 'redis$1://'), {
      useRedisSets: false,
      enableOfflineQueue: false,
      connectTimeout: timeout,
      maxRetriesPerRequest: 1,
      retryStrategy: reconnectDelay,
    });
    this.#client = adapter.redis;
    // The adapter re-emits every client error on itself: unheard, that would crash the process
    // whenever the server is unreachable (at start-up, say).
    adapter.on('error', this.report);
  }

  /**
   * Resolves once the first connection is up, or after `timeout`: without the offline queue a
   * command sent while connecting fails. If the server is down, commands fail fast until it is back.
   */
  connected(timeout: number): Promise<void> {
    if (this.#client.status === 'ready') return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeout);
      this.#client.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.#client.get(key)) ?? undefined;
  }

  async set(key: string, value: string, ttl: number): Promise<boolean> {
    await this.#client.set(key, value, 'PX', ttl);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    return (await this.#client.del(key)) > 0;
  }

  async clear(): Promise<void> {
    throw new Error('koa-kv-session: refusing to clear a Valkey server');
  }

  async compareAndSet(key: string, expected: string | undefined, next: string, ttl: number): Promise<CasResult> {
    return casScriptResult(await this.#client.eval(CAS_SCRIPT, 1, key, casDigest(expected), next, String(ttl)));
  }

  /** A SCAN page under `prefix` (cursor: Valkey's own). */
  async scanPage(prefix: string, cursor: string | undefined, count: number): Promise<ScannedPage> {
    const [next, keys] = (await this.#client.scan(cursor ?? '0', 'MATCH', globPrefix(prefix), 'COUNT', count)) as [string, string[]];
    const values: Array<string | null> = keys.length === 0 ? [] : await this.#client.mget(keys);
    const entries = keys.flatMap((key, i) => (typeof values[i] === 'string' ? [[key, values[i] as string] as const] : []));
    return { entries, cursor: next === '0' ? undefined : next };
  }

  /** Valkey expires keys itself. */
  async purgeExpired(): Promise<number> {
    return 0;
  }

  async disconnect(): Promise<void> {
    await this.#client.quit().catch(() => this.#client.disconnect());
  }
}

/**
 * etcd through the etcd3 client of @keyv/etcd. Quirks fixed: that adapter puts every key on one
 * shared lease (so all sessions expire together), and has no conditional write. Here records carry
 * their own expiry (checked on read, removed by purge), and compare-and-set is an etcd transaction.
 */
export class EtcdAdapter extends QuietEmitter {
  readonly opts: { readonly dialect: 'etcd'; readonly url: string };
  namespace: string | undefined;
  readonly #client: Any;

  constructor(KeyvEtcd: Any, hosts: string, timeout: number) {
    super();
    this.opts = { dialect: 'etcd', url: hosts };
    const adapter = new KeyvEtcd(hosts, { dialTimeout: timeout });
    adapter.on('error', this.report);
    this.#client = adapter.client;
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

  async clear(): Promise<void> {
    throw new Error('koa-kv-session: refusing to clear an etcd cluster');
  }

  async compareAndSet(key: string, expected: string | undefined, next: string): Promise<CasResult> {
    const condition = expected === undefined ? this.#client.if(key, 'Create', '==', 0) : this.#client.if(key, 'Value', '==', expected);
    const result = await condition.then(this.#client.put(key).value(next)).else(this.#client.get(key)).commit();
    if (result.succeeded) return { status: 'saved' };
    const kvs = result.responses?.[0]?.response_range?.kvs ?? [];
    return missed(kvs.length === 0 ? undefined : Buffer.from(kvs[0].value).toString('utf8'));
  }

  /** A page of records under `prefix`, in key order: the key range after `cursor` up to the end of the prefix. */
  async scanPage(prefix: string, cursor: string | undefined, count: number): Promise<ScannedPage> {
    const start = cursor === undefined ? Buffer.from(prefix) : Buffer.concat([Buffer.from(cursor), Buffer.from([0])]);
    const found: Record<string, string> = await this.#client.getAll().inRange({ start, end: prefixEnd(prefix) }).limit(count).strings();
    const entries = Object.entries(found).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return { entries, cursor: entries.length === count ? entries[entries.length - 1]?.[0] : undefined };
  }

  /** Deletes expired records under `prefix`, page by page (bounded memory). */
  purgeExpired(prefix: string, now: number): Promise<number> {
    return purgePages(this, prefix, now, async (keys) => {
      for (const key of keys) await this.#client.delete().key(key);
    });
  }

  async disconnect(): Promise<void> {
    this.#client.close();
  }
}

/** Walks the pages of records under `prefix`, deleting the expired ones of each page; resolves with how many. */
async function purgePages(
  store: { scanPage(prefix: string, cursor: string | undefined, count: number): Promise<ScannedPage> },
  prefix: string,
  now: number,
  deleteKeys: (keys: string[]) => Promise<void>,
): Promise<number> {
  let removed = 0;
  let cursor: string | undefined;
  do {
    const page = await store.scanPage(prefix, cursor, 1000);
    const expired = page.entries.filter(([, value]) => recordExpiry(value) <= now).map(([key]) => key);
    await deleteKeys(expired);
    removed += expired.length;
    cursor = page.cursor;
  } while (cursor !== undefined);
  return removed;
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

/**
 * DynamoDB through @keyv/dynamo's document client. Quirks fixed: no conditional write (here a
 * conditional put), `clear()` fails past 25 items, and DynamoDB's own TTL deletes items up to days
 * late (dynalite not at all), so expiry is checked on read and purge scans by prefix.
 */
export class DynamoAdapter extends QuietEmitter {
  readonly opts: { readonly dialect: 'dynamo'; readonly tableName: string; readonly url: string };
  namespace: string | undefined;
  readonly #inner: Any;
  #ready: Promise<void> | undefined;

  constructor(KeyvDynamo: Any, options: { endpoint: string; region: string; tableName: string; credentials?: { accessKeyId: string; secretAccessKey: string } }) {
    super();
    this.opts = { dialect: 'dynamo', tableName: options.tableName, url: options.endpoint };
    this.#inner = new KeyvDynamo({ ...options, maxAttempts: 2 });
    this.#inner.on('error', this.report);
  }

  /**
   * The table exists. @keyv/dynamo checks (and creates) it once, in its constructor, and when that
   * fails (the endpoint is down at start-up) never again: every call would then fail for ever. Here
   * a failure is checked again on the next call.
   */
  #table(): Promise<void> {
    this.#ready ??= (async () => {
      await this.#inner.tableReady; // the constructor's attempt; its errors went to 'error'
      try {
        await this.#inner.ensureTable(this.opts.tableName);
      } catch {
        // dynalite rejects UpdateTimeToLive right after creating a table: a second look finds it there.
        await this.#inner.ensureTable(this.opts.tableName);
      }
    })().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  async get(key: string): Promise<string | undefined> {
    await this.#table();
    return this.#inner.get(key);
  }

  async set(key: string, value: string, ttl: number): Promise<boolean> {
    await this.#table();
    await this.#inner.set(key, value, ttl);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    await this.#table();
    return this.#inner.delete(key);
  }

  async clear(): Promise<void> {
    throw new Error('koa-kv-session: refusing to clear a DynamoDB table');
  }

  async compareAndSet(key: string, expected: string | undefined, next: string, ttl: number): Promise<CasResult> {
    await this.#table();
    const condition = expected === undefined
      ? { ConditionExpression: 'attribute_not_exists(id)' }
      : { ConditionExpression: '#v = :expected', ExpressionAttributeNames: { '#v': 'value' }, ExpressionAttributeValues: { ':expected': expected } };
    try {
      await this.#inner.client.put({
        TableName: this.opts.tableName,
        Item: { id: key, value: next, expiresAt: Math.floor((Date.now() + ttl + 1000) / 1000) },
        ...condition,
      });
      return { status: 'saved' };
    } catch (error) {
      if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') throw error;
      return missed(await this.get(key));
    }
  }

  /** A page of the table's records under `prefix` (a DynamoDB Scan page, filtered: it may come back short, even empty). */
  async scanPage(prefix: string, cursor: string | undefined, count: number): Promise<ScannedPage> {
    await this.#table();
    const page = await this.#inner.client.scan({
      TableName: this.opts.tableName,
      FilterExpression: 'begins_with(id, :prefix)',
      ExpressionAttributeValues: { ':prefix': prefix },
      Limit: count,
      ...(cursor ? { ExclusiveStartKey: { id: cursor } } : {}),
    });
    const entries = (page.Items ?? []).map((item: Any) => [String(item.id), String(item.value)] as const);
    return { entries, cursor: page.LastEvaluatedKey?.id };
  }

  /** Scans the table page by page for expired records under `prefix`, deleting each page's in batches of 25. */
  purgeExpired(prefix: string, now: number): Promise<number> {
    return purgePages(this, prefix, now, async (keys) => {
      for (let i = 0; i < keys.length; i += 25) {
        const batch = keys.slice(i, i + 25);
        await this.#inner.client.batchWrite({ RequestItems: { [this.opts.tableName]: batch.map((id) => ({ DeleteRequest: { Key: { id } } })) } });
      }
    });
  }

  async disconnect(): Promise<void> {
    this.#inner.client.destroy?.();
  }
}

