// What a user hands in as `store`, told apart by what it is (a Map, a Keyv 5 or 6 instance or adapter, a
// wrapper around one, a Redis client), its backend, and what the user must know of it at start-up.
// Nothing the user hands in is changed: no namespace set, no error mode switched, no listener added.
import { SessionOptionError } from '../errors.js';
import { type Backend, type HandedIn, notAtomic, type StoreNotice } from './contract.js';
import { adapterBackend, isKeyvAdapter, isKeyvInstance, type KeyvAdapterLike, unwrapped } from './keyv.js';
import { evicts, isMapLike, mapBackend } from './memory.js';
import type { NodeRedisClient } from './redis-client.js';
import { isIoredisClient, isKeyvRedis, isNodeRedisClient } from './redis-family.js';

type AnyObject = Record<string | symbol, unknown>;

/**
 * What sits underneath wrappers that must not stand between sessions and their store: @keyv/offline
 * (it answers `undefined` when the store fails: an outage would sign everyone out), a Keyv instance
 * (5 or 6: its hooks, namespace and error mode stay the app's), and the adapter a Keyv 6 instance
 * wraps a Map or a Keyv 5 adapter in.
 */
function underneath(given: object): { store: object; via: string[] } {
  const via: string[] = [];
  let store = given;
  for (let depth = 0; depth < 6; depth++) {
    const proxy = (store as AnyObject).proxy;
    if (
      typeof proxy === 'object' &&
      proxy !== null &&
      isKeyvInstance(proxy) &&
      typeof (store as AnyObject).get === 'function'
    ) {
      via.push('@keyv/offline');
      store = proxy;
    } else if (isKeyvInstance(store) && typeof store.store === 'object' && store.store !== null) {
      via.push('a Keyv instance');
      store = store.store;
    } else {
      const inner = unwrapped(store);
      if (inner === store) break;
      store = inner;
    }
  }
  return { store, via };
}

const named = (what: string, via: readonly string[]): string =>
  via.length === 0 ? what : `${what} (inside ${via.join(' inside ')})`;

/** A notice that the store neither expires keys nor can be purged by us: expired sessions pile up. */
function noExpiry(name: string, why: string): StoreNotice {
  return {
    code: 'KV_SESSION_NO_EXPIRY',
    message:
      `koa-kv-session: ${name} ${why}, and koa-kv-session cannot purge it: expired sessions stay in it for ` +
      `ever. Use a store URL (sqlite://, redis://, postgres://, ...: each expires or purges sessions), or an adapter ` +
      `that expires keys.`,
  };
}

/**
 * Classifies what the `store` option was given. Throws SessionOptionError for a store that cannot
 * keep the promises (keyv-anyredis: its key set never shrinks, and its client cannot be reached).
 */
export function handedIn(given: object): HandedIn {
  const { store, via } = underneath(given);
  const candidate = store as AnyObject;
  const notices: StoreNotice[] = [];

  if (isMapLike(store)) {
    const name = named(
      store instanceof Map
        ? 'the Map given as store'
        : `the ${store.constructor?.name ?? 'Map-like store'} given as store`,
      via,
    );
    return { name, kind: 'Map', notices, open: async () => mapBackend(store) };
  }
  if (candidate.dialect === 'anyredis') {
    throw new SessionOptionError(
      'store',
      'keyv-anyredis records every key in a Redis set that never expires (Redis grows for ever) and keeps its client ' +
        'out of reach: pass the Redis client itself as store (ioredis, iovalkey or node-redis), or a redis:// URL',
    );
  }
  const redis = redisStore(store, via);
  if (redis !== undefined) return redis;
  // The memjs and etcd3 clients inside @keyv/memcache and @keyv/etcd, as their URLs use them: the
  // adapters themselves break records (memcache) or give every key one shared lease (etcd).
  const client = candidate.client as AnyObject | undefined;
  if (
    typeof client === 'object' &&
    client !== null &&
    typeof candidate.formatKey === 'function' &&
    typeof client.get === 'function'
  ) {
    const name = named('the @keyv/memcache adapter given as store', via);
    return {
      name,
      kind: 'memcached',
      notices: [notAtomic(name)],
      open: async () => new (await import('./memcache.js')).MemcacheBackend(client),
    };
  }
  if (
    typeof client === 'object' &&
    client !== null &&
    typeof client.if === 'function' &&
    typeof client.lease === 'function'
  ) {
    const name = named('the @keyv/etcd adapter given as store', via);
    return { name, kind: 'etcd', notices, open: async () => new (await import('./etcd.js')).EtcdBackend(client) };
  }
  if (!isKeyvAdapter(store)) {
    throw new SessionOptionError(
      'store',
      'expected a connection URL, a Keyv instance, a Keyv adapter, a Map or a Redis client, got an object with none ' +
        'of their calls',
    );
  }
  return adapterStore(store, via, notices);
}

/** A Redis client handed in, or inside the adapter handed in (@keyv/redis, @keyv/valkey): used directly. */
function redisStore(store: object, via: readonly string[]): HandedIn | undefined {
  const candidate = store as AnyObject;
  if (isKeyvRedis(store)) {
    const name = named('the @keyv/redis adapter given as store', via);
    // Its client, under our exact keys: the adapter's namespace prefix and error swallowing stay out.
    return {
      name,
      kind: 'Redis',
      notices: [],
      open: async () => nodeRedis((await store.getClient()) as NodeRedisClient),
    };
  }
  if (isNodeRedisClient(store)) {
    // node-redis 4 in legacyMode answers with callbacks; its promise API is under `v4`.
    const legacy = (candidate.options as AnyObject | undefined)?.legacyMode === true;
    const client = (legacy ? candidate.v4 : store) as NodeRedisClient;
    return {
      name: named('the node-redis client given as store', via),
      kind: 'Redis',
      notices: [],
      open: async () => nodeRedis(client),
    };
  }
  const valkeyClient =
    typeof candidate.redis === 'object' && candidate.redis !== null && isIoredisClient(candidate.redis)
      ? candidate.redis
      : undefined;
  if (valkeyClient !== undefined || isIoredisClient(store)) {
    // @keyv/valkey records every key in a set that never expires: its client is used directly.
    const client = (valkeyClient ?? store) as AnyObject;
    const ownPrefix = (client.options as AnyObject | undefined)?.keyPrefix;
    if (typeof ownPrefix === 'string' && ownPrefix !== '') {
      throw new SessionOptionError(
        'store',
        `the Redis client given as store prefixes keys itself (keyPrefix ${JSON.stringify(ownPrefix)}), which its ` +
          `SCAN does not: give a client without one and koa-kv-session the prefix (the keyPrefix option)`,
      );
    }
    const name = named(
      valkeyClient !== undefined
        ? 'the @keyv/valkey adapter given as store'
        : 'the ioredis/iovalkey client given as store',
      via,
    );
    return { name, kind: 'Redis', notices: [], open: () => ioredis(client) };
  }
  return undefined;
}

/** A Keyv adapter used through its get/set/delete, with the notices its kind calls for. */
function adapterStore(adapter: KeyvAdapterLike, via: readonly string[], notices: StoreNotice[]): HandedIn {
  const candidate = adapter as unknown as AnyObject;
  const kind = adapter.constructor?.name;
  const name = named(
    kind === undefined || kind === 'Object' ? 'the Keyv adapter given as store' : `the ${kind} adapter given as store`,
    via,
  );
  const options = (candidate.opts ?? {}) as AnyObject;
  // cacheable gives every entry its TTL in each layer, and @keyv/mongo a TTL index (with ttlSupport
  // false): neither says so where an adapter would.
  let expires = expiresOrPurges(candidate, options) || kind === 'KeyvMongo';
  // @resolid/keyv-sqlite says it does (ttlSupport), but stores expiries a thousand times too far out.
  const resolid = typeof candidate.sqlite === 'object' && typeof candidate.fetchCaches === 'function';
  if ('primary' in candidate && 'secondary' in candidate && 'nonBlocking' in candidate) {
    expires = true;
    if (candidate.secondary !== undefined) {
      notices.push({
        code: 'KV_SESSION_PER_PROCESS',
        message:
          `koa-kv-session: ${name} is a layered cache (cacheable): every process reads its own in-memory copy ` +
          `first, so two processes see different sessions. Use it in one process only, or pass the shared store ` +
          `itself (its secondary).`,
      });
    }
  } else if (typeof options.filename === 'string' && candidate._data instanceof Map) {
    notices.push({
      code: 'KV_SESSION_PER_PROCESS',
      message:
        `koa-kv-session: ${name} (keyv-file) keeps the sessions in this process's memory and writes them to ` +
        `${options.filename} now and then: processes sharing that file overwrite each other's sessions. Use it in ` +
        `one process only, or use sqlite:// for a file several processes share.`,
    });
  } else if (typeof candidate.cache === 'object' && candidate.cache !== null && 'defaultTtl' in candidate) {
    const max = (candidate.cache as AnyObject).max;
    notices.push({
      code: 'KV_SESSION_EVICTS',
      message:
        `koa-kv-session: ${name} (keyv-lru) drops the least recently used sessions once it holds ` +
        `${typeof max === 'number' && max > 0 ? max : 'its maximum'}, signing those users out, and keeps each ` +
        `session as long as it fits, whatever its lifetime. Use a store that keeps every session for its lifetime ` +
        `(memory:// in one process).`,
    });
  } else if (evicts(candidate)) {
    notices.push({
      code: 'KV_SESSION_EVICTS',
      message:
        `koa-kv-session: ${name} has a size limit (max or maxSize) and drops sessions once it is full, ` +
        `signing those users out. Use a store that keeps every session for its lifetime.`,
    });
  } else if (resolid) {
    notices.push(
      noExpiry(
        name,
        '(@resolid/keyv-sqlite) reads TTLs as seconds, so it keeps each session a thousand times its lifetime',
      ),
    );
  }
  const told = notices.some((notice) => notice.code === 'KV_SESSION_NO_EXPIRY' || notice.code === 'KV_SESSION_EVICTS');
  if (!told && !expires)
    notices.push(noExpiry(name, 'does not say that it expires keys (no ttlSupport, no clearExpired)'));
  if (typeof candidate.compareAndSet !== 'function' && !speaksOurSql(candidate, options)) notices.push(notAtomic(name));
  return {
    name,
    kind: 'Keyv adapter',
    notices,
    open: async () => {
      const backend = adapterBackend(adapter, false);
      // What ready() says of expiry is what the notices said: a store that keeps sessions far too long does not expire
      // them.
      const keeps = notices.some((notice) => notice.code === 'KV_SESSION_NO_EXPIRY');
      return backend.purgeExpired === undefined ? { ...backend, expiresKeys: expires && !keeps } : backend;
    },
  };
}

/**
 * Whether the backend adapterBackend() makes of an adapter expires keys or can purge them, told
 * without making it: our own abilities, a Keyv 5 adapter's ttlSupport, a Keyv 6 adapter's
 * clearExpired(), or a table our SQL speaks.
 */
function expiresOrPurges(candidate: AnyObject, options: AnyObject): boolean {
  if (typeof candidate.purgeExpired === 'function' || candidate.expiresKeys === true || candidate.ttlSupport === true)
    return true;
  const capabilities = candidate.capabilities as AnyObject | undefined;
  if (capabilities?.expires === true) return typeof candidate.clearExpired === 'function';
  return speaksOurSql(candidate, options);
}

/** A Keyv 5 SQL adapter (KeyvSqlite, KeyvPostgres, KeyvMysql): its table gets our SQL (compare-and-set, purge). */
function speaksOurSql(candidate: AnyObject, options: AnyObject): boolean {
  const capabilities = candidate.capabilities as AnyObject | undefined;
  if (capabilities?.expires === true) return false;
  return (
    typeof candidate.query === 'function' &&
    typeof options.table === 'string' &&
    ['sqlite', 'postgres', 'mysql'].includes(String(options.dialect))
  );
}

// The Redis backends are loaded when a Redis client was handed in, as the registry loads them for a URL.
async function nodeRedis(client: NodeRedisClient): Promise<Backend> {
  return new (await import('./redis-client.js')).NodeRedisBackend(client);
}

async function ioredis(client: AnyObject): Promise<Backend> {
  if (client.isCluster === true) return new (await import('./valkey-cluster.js')).ValkeyClusterBackend(client);
  return new (await import('./valkey.js')).ValkeyBackend(client);
}
