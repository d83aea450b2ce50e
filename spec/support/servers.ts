// The real servers a test run reaches: their URLs, the backend table every behavioural spec runs over, and per-test
// prefixes.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import type { Backend as StoreBackend } from '../../src/backends/contract.js';
import { handedIn } from '../../src/backends/handed-in.js';
import { openBackend, schemeOf, type SchemeRow } from '../../src/backends/registry.js';
import { keyv6Unavailable, loadKeyv6 } from '../keyv6/load.js';
import type { TestApp } from './app.js';
import { CountingAdapter } from './counting.js';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
export const MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test?table=kvs_test';
/** Servers started by scripts/services.sh. */
export const MEMCACHE_URL = process.env.TEST_MEMCACHE_URL ?? 'memcache://127.0.0.1:11311';
export const ETCD_URL = process.env.TEST_ETCD_URL ?? 'etcd://127.0.0.1:2479';
export const CLUSTER_URL =
  process.env.TEST_REDIS_CLUSTER_URL ?? 'redis+cluster://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103';
export const DYNAMO_URL = process.env.TEST_DYNAMO_URL ?? 'dynamodb://127.0.0.1:4567?region=us-east-1&table=kvs_test';
export const VALKEY_URL = process.env.TEST_VALKEY_URL ?? 'valkey://127.0.0.1:6379';
export const VALKEY_CLUSTER_URL =
  process.env.TEST_VALKEY_CLUSTER_URL ?? 'valkey+cluster://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103';
/** No MongoDB server can be had on our machines: its tests run only when MONGO_URL is set. */
export const MONGO_URL = process.env.MONGO_URL;
/** Set by .ci/run: a test that would be skipped for want of a server fails instead. */
export const REQUIRE_SERVERS = process.env.KV_SESSION_REQUIRE_SERVERS === '1';

/** A fresh key prefix per test: tests share servers with whatever ran before. */
export function uniquePrefix(label = 't'): string {
  return `kvs-test:${label}:${randomBytes(6).toString('hex')}:`;
}

export async function reachable(url: string): Promise<boolean> {
  // The first host of the URL (a cluster URL lists several: host:port,host:port).
  const first = url
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .replace(/^[^@/]*@/, '')
    .split(/[,/?]/)[0] as string;
  const { hostname, port } = new URL(`tcp://${first}`);
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(Number(port), hostname, () => done(true));
  });
}

export interface Backend {
  readonly name: string;
  /** Its URL scheme: the row of src/backends/registry.ts it is opened by. */
  readonly scheme: string;
  /** Expires keys itself (no purge needed). */
  readonly nativeTtl?: boolean;
  /** Not required even under KV_SESSION_REQUIRE_SERVERS (MongoDB: no server can be obtained here). */
  readonly optional?: boolean;
  /** What it can do, where that is not its scheme's registry row (a Keyv 6 adapter handed in). */
  readonly abilities?: SchemeRow['abilities'];
  /** Why it cannot run here, or undefined when it can. */
  unavailable(): Promise<string | undefined>;
  open(): Promise<{ readonly backend: StoreBackend; cleanup(): Promise<void> }>;
}

/** A backend reached by URL on a server somebody else started. */
function byUrl(name: string, url: string, extra: Partial<Backend> = {}): Backend {
  return {
    name,
    scheme: schemeOf(url) as string,
    unavailable: async () =>
      (await reachable(url)) ? undefined : `no ${name} at ${url} (scripts/services.sh up starts one)`,
    open: async () => ({ backend: await openBackend(url, 2000), cleanup: async () => {} }),
    ...extra,
  };
}

/** This Node has the built-in node:sqlite (the sqlite:// default there; sqlite3 otherwise). */
export const HAS_NODE_SQLITE =
  (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule?.('node:sqlite') !== undefined;

/** Set by .ci/run on Node >= 22.19: the Keyv 6 rows must run there, not skip. */
const REQUIRE_KEYV6 = process.env.KV_SESSION_REQUIRE_KEYV6 === '1';

/**
 * A Keyv 6 adapter (or instance) handed in, as `kvSession({ store })` wraps it. `make` builds it
 * from the Keyv 6 packages in spec/keyv6; `server` is the URL it needs reachable, if any.
 */
function keyv6Row(
  name: string,
  scheme: string,
  abilities: SchemeRow['abilities'],
  nativeTtl: boolean,
  server: string | undefined,
  make: (keyv6: ReturnType<typeof loadKeyv6>, dir: string) => { store: object; close(): Promise<void> },
): Backend {
  return {
    name,
    scheme,
    abilities,
    nativeTtl,
    optional: !REQUIRE_KEYV6,
    unavailable: async () =>
      keyv6Unavailable() ?? (server !== undefined && !(await reachable(server)) ? `no server at ${server}` : undefined),
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kvs-keyv6-'));
      const made = make(loadKeyv6(), dir);
      const backend = await handedIn(made.store).open();
      return {
        backend,
        cleanup: async () => {
          await made.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

const atomicListed = { atomic: true, list: true, ownExpiry: false };
/**
 * A Keyv 6 SQL adapter: no compare-and-set or listing of ours (its table is not the one sql.ts
 * speaks); it never returns an expired row (its own expires column), but keeps the rows until its
 * clearExpired() (our purge) deletes them.
 */
const keyv6Sql = { atomic: false, list: false, ownExpiry: false };

/**
 * The behavioural suite on Keyv 6: bare adapters, adapters inside a Keyv 6 instance, and a Keyv 6 instance over a Keyv
 * 5 adapter.
 */
export const KEYV6_BACKENDS: readonly Backend[] = [
  keyv6Row('keyv6-redis', 'redis', { atomic: true, list: true, ownExpiry: true }, true, REDIS_URL, (k) => {
    const adapter = new k.KeyvRedis(REDIS_URL);
    return { store: adapter, close: () => adapter.disconnect() };
  }),
  keyv6Row('keyv6-instance-redis', 'redis', { atomic: true, list: true, ownExpiry: true }, true, REDIS_URL, (k) => {
    const adapter = new k.KeyvRedis(REDIS_URL);
    return { store: new k.Keyv(adapter), close: () => adapter.disconnect() };
  }),
  keyv6Row('keyv6-sqlite', 'sqlite', keyv6Sql, true, undefined, (k, dir) => {
    const adapter = new k.KeyvSqlite({ uri: `sqlite://${join(dir, 'keyv6.sqlite')}`, driver: 'node:sqlite' });
    return { store: adapter, close: () => adapter.disconnect() };
  }),
  keyv6Row('keyv6-postgres', 'postgres', keyv6Sql, true, POSTGRES_URL, (k) => {
    // A table of its own: Keyv 6 migrates a Keyv 5 table in place (new columns, no primary key).
    const adapter = new k.KeyvPostgres({ uri: POSTGRES_URL, table: 'kvs_keyv6' });
    return { store: adapter, close: () => adapter.disconnect() };
  }),
  keyv6Row('keyv6-instance-map', 'memory', atomicListed, false, undefined, (k) => ({
    store: new k.Keyv(new Map()),
    close: async () => {},
  })),
];

export const BACKENDS: readonly Backend[] = [
  {
    name: 'memory',
    scheme: 'memory',
    unavailable: async () => undefined,
    open: async () => ({ backend: await openBackend('memory://', 2000), cleanup: async () => {} }),
  },
  {
    name: 'sqlite',
    scheme: 'sqlite',
    unavailable: async () => undefined,
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kvs-sqlite-'));
      const backend = await openBackend(`sqlite://${join(dir, 'sessions.sqlite')}`, 2000);
      return { backend, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    // The sqlite3 package where node:sqlite is the default (Node 22.13+); on older Node the row above is this one.
    name: 'sqlite-sqlite3',
    scheme: 'sqlite',
    optional: !HAS_NODE_SQLITE,
    unavailable: async () =>
      HAS_NODE_SQLITE
        ? undefined
        : `the sqlite row runs on sqlite3 already (Node ${process.version} has no node:sqlite)`,
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kvs-sqlite3-'));
      const backend = await openBackend(`sqlite://${join(dir, 'sessions.sqlite')}?driver=sqlite3`, 2000);
      return { backend, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'redis',
    scheme: 'redis',
    nativeTtl: true,
    unavailable: async () => ((await reachable(REDIS_URL)) ? undefined : `no Redis at ${REDIS_URL}`),
    open: async () => ({ backend: await openBackend(REDIS_URL, 2000), cleanup: async () => {} }),
  },
  byUrl('redis-cluster', CLUSTER_URL, { nativeTtl: true }),
  byUrl('valkey', VALKEY_URL, { nativeTtl: true }),
  byUrl('valkey-cluster', VALKEY_CLUSTER_URL, { nativeTtl: true }),
  byUrl('memcached', MEMCACHE_URL, { nativeTtl: true }),
  byUrl('etcd', ETCD_URL),
  byUrl('dynamodb', DYNAMO_URL),
  {
    name: 'mariadb',
    scheme: 'mysql',
    unavailable: async () => ((await reachable(MYSQL_URL)) ? undefined : `no MySQL/MariaDB at ${MYSQL_URL}`),
    open: async () => ({ backend: await openBackend(MYSQL_URL, 2000), cleanup: async () => {} }),
  },
  {
    name: 'postgres',
    scheme: 'postgres',
    unavailable: async () => ((await reachable(POSTGRES_URL)) ? undefined : `no PostgreSQL at ${POSTGRES_URL}`),
    open: async () => ({ backend: await openBackend(POSTGRES_URL, 2000), cleanup: async () => {} }),
  },
  MONGO_URL
    ? byUrl('mongodb', MONGO_URL, { optional: true, nativeTtl: true })
    : {
        name: 'mongodb',
        scheme: 'mongodb',
        nativeTtl: true,
        optional: true,
        unavailable: async () => 'MONGO_URL is not set (no MongoDB server can be obtained on these machines)',
        open: async () => {
          throw new Error('unreachable');
        },
      },
  ...KEYV6_BACKENDS,
];

/** True when a missing server must fail the run instead of skipping (under .ci/run, MongoDB excepted). */
export function mustRun(backend: Backend): boolean {
  return REQUIRE_SERVERS && backend.optional !== true;
}

/** Skips (or, under .ci/run, fails) when a backend cannot run here; the reason shows in the report. */
export async function skipUnlessAvailable(backend: Backend, skip: (note: string) => void): Promise<void> {
  const reason = await backend.unavailable();
  if (reason === undefined) return;
  if (mustRun(backend)) throw new Error(`${backend.name} is required here (KV_SESSION_REQUIRE_SERVERS=1): ${reason}`);
  skip(`${backend.name} skipped: ${reason}`);
}

/**
 * What each test of a backend's describe block gets: a fresh counting store and key prefix, and a list of apps to
 * close.
 */
export interface BackendTestState {
  store: CountingAdapter;
  prefix: string;
  readonly apps: TestApp[];
}

/**
 * Runs the tests of a describe block against a real backend: opens it once, skips each test (or,
 * under .ci/run, fails) when the server is unreachable, gives every test its own counting store and
 * key prefix, and afterwards closes the test's apps and deletes every key it wrote.
 */
export function onBackend(backend: Backend, label: string): BackendTestState {
  const state: BackendTestState = { store: undefined as unknown as CountingAdapter, prefix: '', apps: [] };
  let opened: Awaited<ReturnType<Backend['open']>> | undefined;
  let reason: string | undefined;
  beforeAll(async () => {
    reason = await backend.unavailable();
    if (reason !== undefined && mustRun(backend))
      throw new Error(`${backend.name} is required (KV_SESSION_REQUIRE_SERVERS=1): ${reason}`);
    if (reason === undefined) opened = await backend.open();
  });
  afterAll(async () => {
    await opened?.backend.close?.();
    await opened?.cleanup();
  });
  beforeEach((context) => {
    if (reason !== undefined) context.skip(`${backend.name} skipped: ${reason}`);
    state.store = new CountingAdapter(opened?.backend as StoreBackend);
    state.prefix = uniquePrefix(`${label}-${backend.name}`);
  });
  afterEach(async () => {
    await Promise.all(state.apps.splice(0).map((app) => app.close()));
    await state.store?.cleanup();
  });
  return state;
}
