// Test harness: real HTTP against a real Koa app, real backends behind a counting pass-through adapter.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Koa, { type Context } from 'koa';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import type { Backend as StoreBackend, CasResult } from '../src/backends/contract.js';
import { openBackend } from '../src/backends/registry.js';
import { kvSession, type KvSessionMiddleware, type KvSessionOptions } from '../src/index.js';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
export const MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test?table=kvs_test';
/** Servers started by scripts/services.sh. */
export const MEMCACHE_URL = process.env.TEST_MEMCACHE_URL ?? 'memcache://127.0.0.1:11311';
export const ETCD_URL = process.env.TEST_ETCD_URL ?? 'etcd://127.0.0.1:2479';
export const CLUSTER_URL = process.env.TEST_REDIS_CLUSTER_URL ?? 'redis+cluster://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103';
export const DYNAMO_URL = process.env.TEST_DYNAMO_URL ?? 'dynamodb://127.0.0.1:4567?region=us-east-1&table=kvs_test';
export const VALKEY_URL = process.env.TEST_VALKEY_URL ?? 'valkey://127.0.0.1:6379';
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
  const first = url.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/^[^@/]*@/, '').split(/[,/?]/)[0] as string;
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

/** One store call as the counting adapter saw it. */
export interface StoreCall {
  op: 'get' | 'set' | 'delete' | 'cas';
  key: string;
  ttl?: number;
}

/**
 * Delegates every call to a real adapter and records it: lets a test say "one read, no write"
 * about a real backend. Not a mock: the data lives in the real store.
 */
export class CountingAdapter {
  readonly calls: StoreCall[] = [];
  /** Milliseconds every read / write waits before it reaches the real store: a slow store, for deadline specs. */
  delay = { read: 0, write: 0 };
  namespace: string | undefined;
  readonly #inner: StoreBackend;
  readonly #written = new Set<string>();

  constructor(inner: StoreBackend) {
    this.#inner = inner;
    // Pass purge, listing, counting and batched rewrites on (what the operator commands use), uncounted.
    for (const name of ['purgeExpired', 'scanPage', 'countUnder', 'compareAndSetMany'] as const) {
      const ability = inner[name];
      if (ability !== undefined) Object.assign(this, { [name]: ability.bind(inner) });
    }
    // Pass the backend's atomic compare-and-set on, counted as one call.
    const cas = inner.compareAndSet?.bind(inner);
    if (cas) {
      Object.assign(this, {
        compareAndSet: async (key: string, expected: string | undefined, next: string, ttl: number): Promise<CasResult> => {
          this.calls.push({ op: 'cas', key });
          await this.#slow('write');
          return cas(key, expected, next, ttl);
        },
      });
    }
  }

  /** True when writes of existing sessions are one atomic compare-and-set. */
  get atomic(): boolean {
    return 'compareAndSet' in this;
  }

  async #slow(kind: 'read' | 'write'): Promise<void> {
    if (this.delay[kind] > 0) await sleep(this.delay[kind]);
  }

  async get(key: string): Promise<unknown> {
    this.calls.push({ op: 'get', key });
    await this.#slow('read');
    return this.#inner.get(key);
  }

  async set(key: string, value: string, ttl?: number): Promise<unknown> {
    this.calls.push(ttl === undefined ? { op: 'set', key } : { op: 'set', key, ttl });
    await this.#slow('write');
    return this.#inner.set(key, value, ttl as number);
  }

  async delete(key: string): Promise<unknown> {
    this.calls.push({ op: 'delete', key });
    await this.#slow('write');
    return this.#inner.delete(key);
  }

  async clear(): Promise<void> {
    throw new Error('tests never clear a shared store');
  }

  on(): this {
    return this;
  }

  /** Reads a key straight from the real store, without counting. */
  raw(key: string): Promise<unknown> {
    return this.#inner.get(key);
  }

  /** Writes straight to the real store, without counting. */
  async put(key: string, value: string, ttl = 60_000): Promise<void> {
    this.#written.add(key);
    await this.#inner.set(key, value, ttl);
  }

  reset(): void {
    this.calls.length = 0;
  }

  /** Deletes every key this adapter ever saw written, so the shared server is left as it was. */
  async cleanup(): Promise<void> {
    const keys = new Set(this.calls.filter((call) => call.op === 'set' || call.op === 'cas').map((call) => call.key));
    for (const key of this.#written) keys.add(key);
    await Promise.all([...keys].map((key) => this.#inner.delete(key)));
  }

  count(op: StoreCall['op']): number {
    return this.calls.filter((call) => call.op === op).length;
  }
}

export interface Backend {
  readonly name: string;
  /** Expires keys itself (no purge needed). */
  readonly nativeTtl?: boolean;
  /** Not required even under KV_SESSION_REQUIRE_SERVERS (MongoDB: no server can be obtained here). */
  readonly optional?: boolean;
  /** Why it cannot run here, or undefined when it can. */
  unavailable(): Promise<string | undefined>;
  open(): Promise<{ readonly backend: StoreBackend; cleanup(): Promise<void> }>;
}

/** A backend reached by URL on a server somebody else started. */
function byUrl(name: string, url: string, extra: Partial<Backend> = {}): Backend {
  return {
    name,
    unavailable: async () => ((await reachable(url)) ? undefined : `no ${name} at ${url} (scripts/services.sh up starts one)`),
    open: async () => ({ backend: await openBackend(url, 2000), cleanup: async () => {} }),
    ...extra,
  };
}

export const BACKENDS: readonly Backend[] = [
  {
    name: 'memory',
    unavailable: async () => undefined,
    open: async () => ({ backend: await openBackend('memory://', 2000), cleanup: async () => {} }),
  },
  {
    name: 'sqlite',
    unavailable: async () => undefined,
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kvs-sqlite-'));
      const backend = await openBackend(`sqlite://${join(dir, 'sessions.sqlite')}`, 2000);
      return { backend, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'redis',
    nativeTtl: true,
    unavailable: async () => ((await reachable(REDIS_URL)) ? undefined : `no Redis at ${REDIS_URL}`),
    open: async () => ({ backend: await openBackend(REDIS_URL, 2000), cleanup: async () => {} }),
  },
  byUrl('redis-cluster', CLUSTER_URL, { nativeTtl: true }),
  byUrl('valkey', VALKEY_URL, { nativeTtl: true }),
  byUrl('memcached', MEMCACHE_URL, { nativeTtl: true }),
  byUrl('etcd', ETCD_URL),
  byUrl('dynamodb', DYNAMO_URL),
  {
    name: 'mariadb',
    unavailable: async () => ((await reachable(MYSQL_URL)) ? undefined : `no MySQL/MariaDB at ${MYSQL_URL}`),
    open: async () => ({ backend: await openBackend(MYSQL_URL, 2000), cleanup: async () => {} }),
  },
  {
    name: 'postgres',
    unavailable: async () => ((await reachable(POSTGRES_URL)) ? undefined : `no PostgreSQL at ${POSTGRES_URL}`),
    open: async () => ({ backend: await openBackend(POSTGRES_URL, 2000), cleanup: async () => {} }),
  },
  MONGO_URL
    ? byUrl('mongodb', MONGO_URL, { optional: true })
    : { name: 'mongodb', optional: true, unavailable: async () => 'MONGO_URL is not set (no MongoDB server can be obtained on these machines)', open: async () => { throw new Error('unreachable'); } },
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

export interface Reply {
  status: number;
  body: string;
  setCookies: string[];
  vary: string | null;
  headers: Headers;
}

export interface TestApp {
  readonly app: Koa;
  readonly middleware: KvSessionMiddleware;
  readonly url: string;
  /** Sends a request; `cookie` is the Cookie header. */
  request(path?: string, init?: { cookie?: string; headers?: Record<string, string> }): Promise<Reply>;
  close(): Promise<void>;
}

export type Handler = (ctx: Context) => unknown | Promise<unknown>;

/** A Koa app on a free loopback port with kvSession(options) and one handler. */
export async function startApp(options: KvSessionOptions, handler: Handler, configure?: (app: Koa) => void): Promise<TestApp> {
  const app = new Koa();
  app.keys = ['test-key-new', 'test-key-old'];
  app.silent = true;
  if (process.env.KV_SESSION_TEST_LOG_ERRORS) app.on("error", (error) => console.error("app error:", error.code, error.message));
  configure?.(app);
  const middleware = kvSession(options);
  app.use(middleware);
  app.use(async (ctx) => {
    const result = await handler(ctx);
    if (result !== undefined && ctx.body === undefined) ctx.body = result as string;
    if (ctx.body === undefined) ctx.body = 'ok';
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    app,
    middleware,
    url,
    async request(path = '/', init = {}) {
      const headers: Record<string, string> = { ...init.headers };
      if (init.cookie !== undefined) headers.cookie = init.cookie;
      const response = await fetch(url + path, { headers, redirect: 'manual' });
      return {
        status: response.status,
        body: await response.text(),
        setCookies: response.headers.getSetCookie(),
        vary: response.headers.get('vary'),
        headers: response.headers,
      };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await middleware.close();
    },
  };
}

/** `name=value` of a Set-Cookie header, ready to send back as a Cookie header. */
export function cookiePair(setCookie: string | undefined): string {
  if (setCookie === undefined) throw new Error('expected a Set-Cookie header');
  return setCookie.split(';')[0] as string;
}

/** The sid inside a signed cookie value (`<sid>.<signature>`). */
export function sidOf(setCookie: string | undefined): string {
  const value = cookiePair(setCookie).split('=')[1] as string;
  return value.split('.')[0] as string;
}

/** Attributes of a Set-Cookie header, lower-cased names. */
export function attributesOf(setCookie: string): Map<string, string | true> {
  const map = new Map<string, string | true>();
  for (const part of setCookie.split(';').slice(1)) {
    const [name, ...rest] = part.trim().split('=');
    map.set((name as string).toLowerCase(), rest.length ? rest.join('=') : true);
  }
  return map;
}

/** A promise and its resolver: lets a test hold a request open until it says so. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

/** What each test of a backend's describe block gets: a fresh counting store and key prefix, and a list of apps to close. */
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
    if (reason !== undefined && mustRun(backend)) throw new Error(`${backend.name} is required (KV_SESSION_REQUIRE_SERVERS=1): ${reason}`);
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
