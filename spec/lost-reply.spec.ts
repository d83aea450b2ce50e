// A reply lost after the store applied the write: every compare-and-set recognises its own write on retry, so
// take() hands a value out once, update() applies once, regenerate() keeps the session, a logout stays one.
// Through a TCP proxy that cuts the connection instead of passing the reply on (Redis, PostgreSQL, MariaDB),
// and a backend that applies a write and then fails the call (SQLite, memory).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context } from 'koa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openBackend } from '../src/backends/registry.js';
import type { KvSessionOptions } from '../src/index.js';
import { cookiePair, sidOf, startApp, type TestApp } from './support/app.js';
import { FaultProxy, WRITES } from './support/fault-proxy.js';
import { LosingBackend } from './support/losing.js';
import { MYSQL_URL, POSTGRES_URL, REDIS_URL, REQUIRE_SERVERS, reachable, uniquePrefix } from './support/servers.js';

/** A store whose writes' replies a test can lose. */
export interface Faulty {
  /** What kvSession() is given. */
  readonly store: string | object;
  /** The reply of the next write (after `skip` that go through) is lost, after the store applied it. */
  loseNextWrite(skip?: number): void;
  /** How many replies were lost so far: the fault really happened. */
  lost(): number;
  /** Each write's reply is lost with probability `rate` (0 stops it). */
  loseRandomly(rate: number): void;
  close(): Promise<void>;
}

const folder = mkdtempSync(join(tmpdir(), 'kvs-lost-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** host:port of a URL's server. */
const hostOf = (url: string) => new URL(url.replace(/^[a-z+]+:/, 'http:')).host;

async function proxied(url: string, write: () => (text: string) => boolean): Promise<Faulty> {
  const proxy = await FaultProxy.start(hostOf(url), { write });
  return {
    store: url.replace(hostOf(url), `127.0.0.1:${proxy.port}`),
    loseNextWrite: (skip = 0) => proxy.dropNextReplies(1, skip),
    lost: () => proxy.dropped,
    loseRandomly: (rate) => proxy.dropRandomly(rate),
    close: () => proxy.close(),
  };
}

async function losing(url: string): Promise<Faulty> {
  const inner = await openBackend(url, 2000);
  const backend = new LosingBackend(inner);
  return {
    store: backend,
    loseNextWrite: (skip = 0) => backend.loseNext(1, skip),
    lost: () => backend.lost,
    loseRandomly: (rate) => backend.loseRandomly(rate),
    close: async () => inner.close?.(),
  };
}

export const FAULTY: ReadonlyArray<{ name: string; server?: string; open(): Promise<Faulty> }> = [
  { name: 'redis (proxy)', server: REDIS_URL, open: () => proxied(REDIS_URL, WRITES.redis) },
  { name: 'postgres (proxy)', server: POSTGRES_URL, open: () => proxied(POSTGRES_URL, WRITES.sql) },
  { name: 'mariadb (proxy)', server: MYSQL_URL, open: () => proxied(MYSQL_URL, WRITES.sql) },
  { name: 'sqlite', open: () => losing(`sqlite://${join(folder, `lost-${process.pid}.sqlite`)}`) },
  { name: 'memory', open: () => losing('memory://') },
];

/** Routes: /seed (n, list, token), /take, /inc, /append?item=, /regenerate, /read. */
export async function route(ctx: Context): Promise<unknown> {
  switch (ctx.path) {
    case '/seed':
      ctx.session.n = 0;
      ctx.session.list = [];
      ctx.session.token = 'one-time';
      return 'seeded';
    case '/take':
      return JSON.stringify((await ctx.session.take('token')) ?? null);
    case '/inc':
      return String(ctx.session.update('n', (n: number | undefined) => (n ?? 0) + 1));
    case '/append':
      ctx.session.update('list', (list: string[] | undefined) => [...(list ?? []), String(ctx.query.item)]);
      return 'appended';
    case '/regenerate':
      await ctx.session.regenerate();
      return 'moved';
    default:
      return JSON.stringify({ ...ctx.session });
  }
}

describe.each(FAULTY)('one lost reply on $name', (kind) => {
  let faulty: Faulty;
  let skip: string | undefined;
  const apps: TestApp[] = [];

  beforeAll(async () => {
    skip = kind.server !== undefined && !(await reachable(kind.server)) ? `no server at ${kind.server}` : undefined;
    if (skip !== undefined && REQUIRE_SERVERS) throw new Error(skip);
    if (skip === undefined) faulty = await kind.open();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(async () => {
    if (skip === undefined) await faulty.close();
  });

  async function seeded(options: KvSessionOptions = {}): Promise<{ app: TestApp; cookie: string }> {
    const app = await startApp({ store: faulty.store as never, keyPrefix: uniquePrefix('lost'), onError: () => {}, ...options }, route);
    apps.push(app);
    const seed = await app.request('/seed');
    expect(seed.status).toBe(200);
    return { app, cookie: cookiePair(seed.setCookies[0]) };
  }

  async function read(app: TestApp, cookie: string): Promise<Record<string, unknown>> {
    return JSON.parse((await app.request('/read', { cookie })).body) as Record<string, unknown>;
  }

  it('take() hands the value out once: the request gets it, the store no longer has it', async (context) => {
    if (skip !== undefined) return context.skip(skip);
    const { app, cookie } = await seeded();
    const lost = faulty.lost();
    faulty.loseNextWrite();
    const taken = await app.request('/take', { cookie });
    expect(faulty.lost()).toBe(lost + 1);
    expect([taken.status, taken.body]).toEqual([200, '"one-time"']);
    expect(await read(app, cookie)).toEqual({ n: 0, list: [] });
  });

  it('update() applies once', async (context) => {
    if (skip !== undefined) return context.skip(skip);
    const { app, cookie } = await seeded();
    const lost = faulty.lost();
    faulty.loseNextWrite();
    expect((await app.request('/inc', { cookie })).status).toBe(200);
    expect(faulty.lost()).toBe(lost + 1);
    expect((await read(app, cookie)).n).toBe(1);
  });

  it('regenerate() keeps the session under the new sid when the reply of its retiring write is lost', async (context) => {
    if (skip !== undefined) return context.skip(skip);
    const { app, cookie } = await seeded();
    const lost = faulty.lost();
    // The new record's write goes through; the old one's retirement is lost on the way back.
    faulty.loseNextWrite(1);
    const moved = await app.request('/regenerate', { cookie });
    expect(faulty.lost()).toBe(lost + 1);
    expect(moved.status).toBe(200);
    const next = cookiePair(moved.setCookies[0]);
    expect(sidOf(moved.setCookies[0])).not.toBe(cookie.split('=')[1]?.split('.')[0]);
    expect(await read(app, next)).toEqual({ n: 0, list: [], token: 'one-time' });
    // The old sid signs nobody in.
    expect(await app.middleware.load(cookie)).toBeUndefined();
  });

  it('a revocation whose reply is lost answers true, and the session stays signed out', async (context) => {
    if (skip !== undefined) return context.skip(skip);
    const { app, cookie } = await seeded();
    const sid = (await app.middleware.load(cookie))?.sid as string;
    const lost = faulty.lost();
    faulty.loseNextWrite();
    expect(await app.middleware.revokeSession(sid)).toBe(true);
    expect(faulty.lost()).toBe(lost + 1);
    expect(await read(app, cookie)).toEqual({});
    expect(await app.middleware.load(cookie)).toBeUndefined();
  });

  it('moving a session to the hashed layout: a lost create still retires the plain copy, so a logout stays one', async (context) => {
    if (skip !== undefined) return context.skip(skip);
    const { app, cookie } = await seeded();
    const hashed = await startApp({ store: faulty.store as never, keyPrefix: app.options.keyPrefix, hashSids: true, onError: () => {} }, route);
    apps.push(hashed);
    const lost = faulty.lost();
    faulty.loseNextWrite();
    expect(await read(hashed, cookie)).toEqual({ n: 0, list: [], token: 'one-time' });
    expect(faulty.lost()).toBe(lost + 1);
    // Signed out in the new layout: neither layout brings it back.
    await hashed.middleware.revokeSession((await hashed.middleware.load(cookie))?.sid as string);
    expect(await read(hashed, cookie)).toEqual({});
    expect(await read(app, cookie)).toEqual({});
  });
});
