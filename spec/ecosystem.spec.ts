// The Koa middleware and Keyv stores apps really use, each measured here with the real package: what works,
// what is refused and why, what is told at start-up. The table of docs/ecosystem.md is these rows.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bodyParser } from '@koa/bodyparser';
import cors from '@koa/cors';
import Router from '@koa/router';
import KeyvEtcd from '@keyv/etcd';
import KeyvMemcache from '@keyv/memcache';
import KeyvMysql from '@keyv/mysql';
import KeyvOffline from '@keyv/offline';
import KeyvPostgres from '@keyv/postgres';
import KeyvRedis from '@keyv/redis';
import KeyvSqlite from '@keyv/sqlite';
import KeyvValkey from '@keyv/valkey';
import { BigMap } from '@keyv/bigmap';
import { Cacheable } from 'cacheable';
import { Cluster as IORedisCluster, Redis as IORedis } from 'ioredis';
import Keyv from 'keyv';
import { KeyvAnyRedis } from 'keyv-anyredis';
import { KeyvFile } from 'keyv-file';
import { KeyvLru } from 'keyv-lru';
import { LRUCache } from 'lru-cache';
import type Koa from 'koa';
import CSRF from 'koa-csrf';
import helmet from 'koa-helmet';
import passport from 'koa-passport';
import { Strategy as LocalStrategy } from 'passport-local';
import { createClient, createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handedIn } from '../src/backends/handed-in.js';
import { frameRecord } from '../src/record.js';
import type { KvSessionOptions } from '../src/index.js';
import { cookiePair, asStore, sidOf, startApp, type Handler, type TestApp } from './support/app.js';
import { documentedRows, type EcosystemRow, rowLine, versionOf, writeRows } from './support/ecosystem.js';
import { keyv6Unavailable, loadKeyv6 } from './keyv6/load.js';
import {
  CLUSTER_URL,
  ETCD_URL,
  MEMCACHE_URL,
  MYSQL_URL,
  POSTGRES_URL,
  REDIS_URL,
  REQUIRE_SERVERS,
  reachable,
  uniquePrefix,
} from './support/servers.js';
import { hostsOf } from '../src/backends/url.js';

const measured: EcosystemRow[] = [];
const apps: TestApp[] = [];
const closers: Array<() => Promise<unknown> | unknown> = [];
const folder = mkdtempSync(join(tmpdir(), 'kvs-ecosystem-'));
const KEYV6 = join(import.meta.dirname, 'keyv6');
let redis: ReturnType<typeof createClient>;
let redisDown: string | undefined;

beforeAll(async () => {
  redisDown = (await reachable(REDIS_URL)) ? undefined : `no Redis at ${REDIS_URL}`;
  if (redisDown !== undefined && REQUIRE_SERVERS) throw new Error(redisDown);
  if (redisDown === undefined) {
    redis = createClient({ url: REDIS_URL });
    await redis.connect();
  }
});

afterAll(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
  for (const close of closers.splice(0).reverse()) await close();
  if (redis?.isOpen) {
    for await (const keys of redis.scanIterator({ MATCH: 'kvs-test:eco*', COUNT: 1000 }))
      if (keys.length > 0) await redis.del(keys);
    await redis.quit();
  }
  rmSync(folder, { recursive: true, force: true });
});

/** Records a measured row, in the order of the page. */
function record(part: string, version: string, result: string): void {
  measured.push({ part, version, result });
}

async function app(
  options: KvSessionOptions,
  handler: Handler,
  configure?: (app: Koa) => void,
  after?: (app: Koa) => void,
): Promise<TestApp> {
  const started = await startApp(options, handler, configure, after);
  apps.push(started);
  return started;
}

/** A counter: each request adds one to the session's `n` and answers it. */
const counter: Handler = (ctx) => {
  ctx.session.n = Number(ctx.session.n ?? 0) + 1;
  return String(ctx.session.n);
};

interface StoreOutcome {
  /** What the table says. */
  readonly result: string;
  /** The sid of the session the two requests shared, when they did. */
  readonly sid?: string;
  readonly prefix: string;
}

/**
 * Hands `store` to kvSession() as an app would and measures it: refused at kvSession() (with what it
 * said), or two requests of one browser counting 1, 2; what ready() says it can do; what is told at start-up.
 */
async function measureStore(store: object, options: KvSessionOptions = {}): Promise<StoreOutcome> {
  const prefix = uniquePrefix('eco');
  let notices: readonly { code: string }[];
  try {
    notices = handedIn(store).notices;
  } catch (error) {
    return {
      result: `refused at kvSession(): ${(error as Error).message.replace(/^koa-kv-session: store: /, '')}`,
      prefix,
    };
  }
  const server = await app({ store: asStore(store), keyPrefix: prefix, ...options }, counter);
  const abilities = await server.middleware.ready();
  const first = await server.request('/');
  const second = await server.request('/', { cookie: cookiePair(first.setCookies[0]) });
  expect([first.body, second.body]).toEqual(['1', '2']);
  const expiry = abilities.ownExpiry ? 'deleted by the store' : abilities.purge ? 'purged by koa-kv-session' : 'kept';
  const warned = notices.length === 0 ? '' : `; warned at start-up: ${notices.map((notice) => notice.code).join(', ')}`;
  return {
    result: `works (atomic: ${abilities.atomic ? 'yes' : 'no'}; expired sessions: ${expiry})${warned}`,
    sid: sidOf(first.setCookies[0]),
    prefix,
  };
}

function onRedis(name: string, test: () => Promise<void>): void {
  it(name, async (context) => {
    if (redisDown !== undefined) context.skip(redisDown);
    await test();
  });
}

describe('Koa middleware', () => {
  it('koa-passport + passport-local: login rotates the sid, logout signs out', async () => {
    const auth = new passport.KoaPassport();
    auth.use(
      new LocalStrategy((username, password, done) =>
        done(null, username === 'ada' && password === 'pw' ? { id: 7 } : false),
      ),
    );
    auth.serializeUser((user, done) => done(null, (user as { id: number }).id));
    auth.deserializeUser((id, done) => done(null, { id }));
    const router = new Router();
    router.post('/login', auth.authenticate('local', { successRedirect: '/me' }));
    router.get('/me', (ctx) => {
      ctx.body = ctx.isAuthenticated() ? 'signed in' : 'nobody';
    });
    router.post('/logout', async (ctx) => {
      await ctx.logout();
      ctx.body = 'bye';
    });
    const server = await app(
      { store: 'memory://', userKey: 'passport.user' },
      () => undefined,
      (koa) => koa.use(bodyParser()),
      (koa) => koa.use(auth.initialize()).use(auth.session()).use(router.routes()),
    );
    const anonymous = cookiePair((await server.request('/me')).setCookies[0] ?? 'session=x');
    const login = await fetch(`${server.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: anonymous },
      body: 'username=ada&password=pw',
      redirect: 'manual',
    });
    const signedIn = cookiePair(login.headers.getSetCookie()[0]);
    expect([login.status, (await server.request('/me', { cookie: signedIn })).body]).toEqual([302, 'signed in']);
    expect(await server.middleware.listUserSessions(7)).toHaveLength(1);
    await fetch(`${server.url}/logout`, { method: 'POST', headers: { cookie: signedIn } });
    expect((await server.request('/me', { cookie: signedIn })).body).toBe('nobody');
    record(
      'koa-passport + passport-local (spec/passport.spec.ts)',
      `${versionOf('koa-passport')} + ${versionOf('passport-local')}`,
      'works (userKey: "passport.user")',
    );
  });

  it('koa-csrf: the token checks against the secret it keeps in the session', async () => {
    const server = await app(
      { store: 'memory://' },
      (ctx) => (ctx.method === 'GET' ? String(ctx.state._csrf) : 'posted'),
      (koa) => koa.use(bodyParser()),
      (koa) => koa.use(new CSRF()),
    );
    const page = await server.request('/form');
    const cookie = cookiePair(page.setCookies[0]);
    const post = (body: string) =>
      fetch(`${server.url}/form`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        body,
      });
    expect((await post(`_csrf=${encodeURIComponent(page.body)}`)).status).toBe(200);
    expect((await post('_csrf=forged')).status).toBe(403);
    expect(Object.keys((await server.middleware.load(cookie))?.data ?? {})).toEqual(['secret']);
    record('koa-csrf', versionOf('koa-csrf'), 'works (keeps its secret in the session)');
  });

  it('@koa/cors with credentials: Vary names both Origin and Cookie, the session cookie goes through', async () => {
    const server = await app({ store: 'memory://' }, counter, (koa) => {
      koa.use(cors({ credentials: true }));
    });
    const reply = await server.request('/', { headers: { origin: 'https://app.example' } });
    expect(reply.headers.get('access-control-allow-credentials')).toBe('true');
    expect(reply.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(reply.vary?.split(/,\s*/).sort()).toEqual(['Cookie', 'Origin']);
    expect(reply.setCookies).toHaveLength(1);
    record('@koa/cors (credentials: true)', versionOf('@koa/cors'), 'works (Vary: Origin, Cookie)');
  });

  it('@koa/router and koa-helmet: routes read and write ctx.session, helmet headers and the cookie both go out', async () => {
    const router = new Router();
    router.get('/visit', (ctx) => {
      ctx.session.visits = Number(ctx.session.visits ?? 0) + 1;
      ctx.body = String(ctx.session.visits);
    });
    const server = await app(
      { store: 'memory://' },
      () => undefined,
      (koa) => koa.use(helmet()),
      (koa) => koa.use(router.routes()),
    );
    const first = await server.request('/visit');
    const second = await server.request('/visit', { cookie: cookiePair(first.setCookies[0]) });
    expect([first.body, second.body]).toEqual(['1', '2']);
    expect(first.headers.get('x-content-type-options')).toBe('nosniff');
    expect(first.vary).toBe('Cookie');
    record('@koa/router', versionOf('@koa/router'), 'works');
    record('koa-helmet', versionOf('koa-helmet'), 'works');
  });
});

describe('Keyv stores and wrappers', () => {
  onRedis(
    '@keyv/redis 5, bare and inside a Keyv 5 instance: its client directly, under the exact key; the instance is left as it was',
    async () => {
      const adapter = new KeyvRedis(REDIS_URL);
      closers.push(() => adapter.disconnect());
      const bare = await measureStore(adapter);
      expect(await redis.exists(`${bare.prefix}${bare.sid}`)).toBe(1);
      record('@keyv/redis (adapter)', versionOf('@keyv/redis'), bare.result);

      const keyv = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: 'kvs-test:eco-app' });
      closers.push(() => keyv.disconnect());
      await keyv.set('own', 'entry');
      const inside = await measureStore(keyv);
      expect(await redis.exists(`${inside.prefix}${inside.sid}`)).toBe(1);
      // Never changed: its namespace, its error mode, its own entries.
      expect([keyv.namespace, keyv.throwOnErrors, await keyv.get('own')]).toEqual(['kvs-test:eco-app', false, 'entry']);
      record(
        '@keyv/redis (inside a Keyv 5 instance)',
        `${versionOf('@keyv/redis')} + keyv ${versionOf('keyv')}`,
        inside.result,
      );
    },
  );

  onRedis('@keyv/offline is unwrapped: a store failure is a 503, never "signed out"', async () => {
    const keyv = new Keyv(new KeyvRedis(REDIS_URL));
    closers.push(() => keyv.disconnect());
    const outcome = await measureStore(new KeyvOffline(keyv));
    const down = new KeyvRedis('redis://127.0.0.1:1', { throwOnErrors: false, connectionTimeout: 200 });
    // A client that never connected does not answer disconnect(): destroy it, if it is still there.
    closers.push(() => {
      if ((down.client as unknown as { isOpen: boolean }).isOpen)
        (down.client as unknown as { destroy(): void }).destroy();
    });
    const failing = await app(
      { store: new KeyvOffline(new Keyv(down)) as never, storeTimeout: 500, onError: () => {} },
      counter,
    );
    const reply = await failing.request('/', { cookie: `session=${'A'.repeat(43)}.${'B'.repeat(43)}` });
    expect(reply.status).toBe(503);
    record(
      '@keyv/offline (around a Keyv 5 instance)',
      versionOf('@keyv/offline'),
      `${outcome.result}; unwrapped: a store failure answers 503`,
    );
  });

  onRedis('cacheable with a shared secondary store: works in one process, warned as a per-process copy', async () => {
    const secondary = new Keyv(new KeyvRedis(REDIS_URL));
    closers.push(() => secondary.disconnect());
    const outcome = await measureStore(new Cacheable({ secondary }));
    expect(outcome.result).toContain('KV_SESSION_PER_PROCESS');
    record('cacheable (memory + secondary store)', versionOf('cacheable'), outcome.result);
  });

  onRedis(
    '@keyv/valkey, an ioredis client and a node-redis client: the client directly, no namespace set left in Redis',
    async () => {
      const valkey = new KeyvValkey(REDIS_URL);
      closers.push(() => valkey.disconnect());
      const viaAdapter = await measureStore(valkey);
      expect(await redis.exists(`${viaAdapter.prefix}${viaAdapter.sid}`)).toBe(1);
      expect(await redis.keys('namespace:*kvs-test*')).toEqual([]);
      record('@keyv/valkey (adapter)', versionOf('@keyv/valkey'), viaAdapter.result);

      const ioredis = new IORedis(REDIS_URL);
      closers.push(() => ioredis.quit());
      const listeners = ioredis.listenerCount('error');
      const viaIoredis = await measureStore(ioredis);
      // Nothing added to a client handed in: its own error handling stays as it was.
      expect(ioredis.listenerCount('error')).toBe(listeners);
      expect(await redis.pTTL(`${viaIoredis.prefix}${viaIoredis.sid}`)).toBeGreaterThan(0);
      record('ioredis client', versionOf('ioredis'), viaIoredis.result);

      const nodeRedis = createClient({ url: REDIS_URL });
      await nodeRedis.connect();
      closers.push(() => nodeRedis.quit());
      const nodeListeners = nodeRedis.listenerCount('error');
      const viaNodeRedis = await measureStore(nodeRedis);
      expect(nodeRedis.listenerCount('error')).toBe(nodeListeners);
      expect(await redis.pTTL(`${viaNodeRedis.prefix}${viaNodeRedis.sid}`)).toBeGreaterThan(0);
      record('node-redis client (redis)', versionOf('redis'), viaNodeRedis.result);
    },
  );

  onRedis('keyv-anyredis is refused at kvSession(), naming what to pass instead', async () => {
    const client = new IORedis(REDIS_URL);
    closers.push(() => client.quit());
    const outcome = await measureStore(new KeyvAnyRedis(client));
    expect(outcome.result).toMatch(/^refused at kvSession\(\): keyv-anyredis records every key/);
    record('keyv-anyredis', versionOf('keyv-anyredis'), outcome.result);
  });

  it('@keyv/sqlite 4 and @keyv/mysql 2: the SQL of their tables (compare-and-set, purge)', async (context) => {
    const sqlite = new KeyvSqlite({ uri: `sqlite://${join(folder, 'keyv4.sqlite')}` });
    closers.push(() => sqlite.disconnect());
    record('@keyv/sqlite', versionOf('@keyv/sqlite'), (await measureStore(sqlite)).result);

    if (!(await reachable(MYSQL_URL))) {
      if (REQUIRE_SERVERS) throw new Error(`no MariaDB at ${MYSQL_URL}`);
      return context.skip(`no MariaDB at ${MYSQL_URL}`);
    }
    const table = `kvs_eco_${process.pid}`;
    const mysql = new KeyvMysql({ uri: MYSQL_URL.replace(/\?.*$/, ''), table });
    closers.push(async () => {
      await mysql.query(`DROP TABLE IF EXISTS ${table}`);
      await mysql.disconnect();
    });
    const outcome = await measureStore(mysql);
    // An expired record is purged by our SQL on its table.
    await mysql.set(`${outcome.prefix}expired`, frameRecord('{}', 'json', Date.now() - 1000, true));
    const server = apps[apps.length - 1] as TestApp;
    expect(await server.middleware.purge()).toBe(1);
    record('@keyv/mysql', versionOf('@keyv/mysql'), outcome.result);
  });

  it('@keyv/memcache and @keyv/etcd (inside Keyv 5 instances): their clients directly, as the URLs use them', async (context) => {
    for (const url of [MEMCACHE_URL, ETCD_URL]) {
      if (await reachable(url)) continue;
      if (REQUIRE_SERVERS) throw new Error(`no server at ${url}`);
      return context.skip(`no server at ${url} (scripts/services.sh up starts one)`);
    }
    const memcache = new Keyv({ store: new KeyvMemcache(hostsOf(MEMCACHE_URL)), namespace: 'kvs-test-app' });
    closers.push(() => memcache.disconnect());
    const onMemcache = await measureStore(memcache, { lifetime: '40d' });
    // Under the exact key (not the adapter's namespace), for the whole 40 days (not read as a Unix time).
    const { value } = await (memcache.store as KeyvMemcache).client.get(`${onMemcache.prefix}${onMemcache.sid}`);
    expect(String(value)).toMatch(/^c2:/);
    record('@keyv/memcache (inside a Keyv 5 instance)', versionOf('@keyv/memcache'), onMemcache.result);

    const etcd = new Keyv({ store: new KeyvEtcd(`${hostsOf(ETCD_URL)}`), namespace: 'kvs-test-app' });
    closers.push(() => etcd.disconnect());
    record('@keyv/etcd (inside a Keyv 5 instance)', versionOf('@keyv/etcd'), (await measureStore(etcd)).result);
  });

  it('@keyv/postgres 2 (inside a Keyv 5 instance): the SQL of its table', async (context) => {
    if (!(await reachable(POSTGRES_URL))) {
      if (REQUIRE_SERVERS) throw new Error(`no PostgreSQL at ${POSTGRES_URL}`);
      return context.skip(`no PostgreSQL at ${POSTGRES_URL}`);
    }
    const adapter = new KeyvPostgres({ uri: POSTGRES_URL, table: `kvs_eco_${process.pid}` });
    const postgres = new Keyv({ store: adapter, namespace: 'kvs-test-app' });
    closers.push(async () => {
      await adapter.query(`DROP TABLE IF EXISTS kvs_eco_${process.pid}`);
      await postgres.disconnect();
    });
    record(
      '@keyv/postgres (inside a Keyv 5 instance)',
      versionOf('@keyv/postgres'),
      (await measureStore(postgres)).result,
    );
  });

  it('node-redis and ioredis cluster clients', async (context) => {
    const first = hostsOf(CLUSTER_URL).split(',')[0] as string;
    if (!(await reachable(`redis://${first}`))) {
      if (REQUIRE_SERVERS) throw new Error(`no Redis Cluster at ${CLUSTER_URL}`);
      return context.skip(`no Redis Cluster at ${CLUSTER_URL} (scripts/services.sh up starts one)`);
    }
    const nodes = hostsOf(CLUSTER_URL).split(',');
    const cluster = createCluster({ rootNodes: nodes.map((host) => ({ url: `redis://${host}` })) });
    await cluster.connect();
    closers.push(() => cluster.close());
    const onNodeRedis = await measureStore(cluster);
    expect(await cluster.exists(`${onNodeRedis.prefix}${onNodeRedis.sid}`)).toBe(1);
    record('node-redis cluster client (redis)', versionOf('redis'), onNodeRedis.result);
    const ioCluster = new IORedisCluster(
      nodes.map((host) => ({ host: host.split(':')[0], port: Number(host.split(':')[1]) })),
    );
    closers.push(() => ioCluster.quit());
    const onIoredis = await measureStore(ioCluster);
    expect(await ioCluster.exists(`${onIoredis.prefix}${onIoredis.sid}`)).toBe(1);
    await cluster.del([`${onNodeRedis.prefix}${onNodeRedis.sid}`]);
    await ioCluster.del(`${onIoredis.prefix}${onIoredis.sid}`);
    record('ioredis cluster client', versionOf('ioredis'), onIoredis.result);
  });

  it('lru-cache (inside a Keyv 5 instance): told at start-up that it drops sessions when full', async () => {
    const outcome = await measureStore(new Keyv({ store: new LRUCache<string, object>({ max: 500 }) }));
    expect(outcome.result).toContain('KV_SESSION_EVICTS');
    record('lru-cache (inside a Keyv 5 instance)', versionOf('lru-cache'), outcome.result);
  });

  it('@keyv/bigmap, keyv-file and keyv-lru: in one process; per-process copies and eviction are told at start-up', async () => {
    record('@keyv/bigmap', versionOf('@keyv/bigmap'), (await measureStore(new BigMap())).result);
    const file = new KeyvFile({ filename: join(folder, 'keyv-file.json') });
    const onFile = await measureStore(file);
    expect(onFile.result).toContain('KV_SESSION_PER_PROCESS');
    record('keyv-file', versionOf('keyv-file'), onFile.result);
    const lru = await measureStore(new KeyvLru({ max: 100 }));
    expect(lru.result).toContain('KV_SESSION_EVICTS');
    record('keyv-lru', versionOf('keyv-lru'), lru.result);
  });

  it('@resolid/keyv-sqlite (on better-sqlite3, built for this Node by scripts/native.sh): warned, it keeps sessions far too long', async (context) => {
    const native = join(import.meta.dirname, '..', '.cache', `native-node${process.versions.node.split('.')[0]}`);
    if (!existsSync(join(native, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'))) {
      const reason = `better-sqlite3 is not built for Node ${process.version} (bash scripts/native.sh builds it)`;
      if (process.env.KV_SESSION_REQUIRE_NATIVE === '1') throw new Error(reason);
      return context.skip(reason);
    }
    const { KeyvSqlite: ResolidSqlite } = createRequire(join(native, 'package.json'))('@resolid/keyv-sqlite') as {
      KeyvSqlite: new (options: {
        uri: string;
      }) => { sqlite: { close(): void; prepare(sql: string): { get(...values: unknown[]): unknown } } };
    };
    const store = new ResolidSqlite({ uri: join(folder, 'resolid.sqlite') });
    closers.push(() => store.sqlite.close());
    const outcome = await measureStore(store, { lifetime: '1h' });
    expect(outcome.result).toContain('KV_SESSION_NO_EXPIRY');
    // What the warning says: a session of an hour is kept a thousand hours.
    const row = store.sqlite
      .prepare('SELECT expiredAt FROM caches WHERE cacheKey = ?')
      .get(`${outcome.prefix}${outcome.sid}`) as { expiredAt: number };
    expect(row.expiredAt - Date.now()).toBeGreaterThan(900 * 3_600_000);
    record('@resolid/keyv-sqlite', versionOf('@resolid/keyv-sqlite', native), outcome.result);
  });

  it('Keyv 6: @keyv/sqlite 6, KeyvMemoryAdapter, @keyv/redis 6, @keyv/bigmap 6', async (context) => {
    const reason = keyv6Unavailable();
    if (reason !== undefined) {
      if (process.env.KV_SESSION_REQUIRE_KEYV6 === '1') throw new Error(reason);
      return context.skip(reason);
    }
    const keyv6 = loadKeyv6();
    const sqlite = new keyv6.KeyvSqlite({ uri: `sqlite://${join(folder, 'keyv6.sqlite')}`, driver: 'node:sqlite' });
    closers.push(() => sqlite.disconnect());
    record('@keyv/sqlite (Keyv 6)', versionOf('@keyv/sqlite', KEYV6), (await measureStore(sqlite)).result);
    const memory = new keyv6.KeyvMemoryAdapter(new Map());
    record('KeyvMemoryAdapter (Keyv 6)', versionOf('keyv', KEYV6), (await measureStore(memory)).result);
    record('@keyv/bigmap (Keyv 6)', versionOf('@keyv/bigmap', KEYV6), (await measureStore(new keyv6.BigMap())).result);
    if (redisDown !== undefined) return;
    const redis6 = new keyv6.KeyvRedis(REDIS_URL);
    closers.push(() => redis6.disconnect());
    record('@keyv/redis (Keyv 6)', versionOf('@keyv/redis', KEYV6), (await measureStore(redis6)).result);
  });
});

describe('docs/ecosystem.md', () => {
  it('holds exactly the rows measured above (KV_SESSION_WRITE_DOCS=1 writes them)', () => {
    if (process.env.KV_SESSION_WRITE_DOCS === '1') writeRows(measured);
    const documented = documentedRows();
    for (const row of measured) expect(documented).toContain(rowLine(row));
    // Every row of the page was measured in this run, unless its server or Keyv 6 could not be had here.
    const everything =
      REQUIRE_SERVERS && process.env.KV_SESSION_REQUIRE_KEYV6 === '1' && process.env.KV_SESSION_REQUIRE_NATIVE === '1';
    if (everything) expect(documented).toHaveLength(measured.length);
  });
});
