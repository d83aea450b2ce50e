// Stores whose write replies a spec can lose (a TCP proxy in front of Redis, PostgreSQL and MariaDB; a backend
// that applies a write and then fails the call for SQLite and memory), and the routes the fault specs send.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context } from 'koa';
import { openBackend } from '../../src/backends/registry.js';
import type { StoreOption } from '../../src/index.js';
import { FaultProxy, WRITES } from './fault-proxy.js';
import { LosingBackend } from './losing.js';
import { MYSQL_URL, POSTGRES_URL, REDIS_URL } from './servers.js';

/** A store whose writes' replies a test can lose. */
export interface Faulty {
  /** What kvSession() is given. */
  readonly store: StoreOption;
  /** The reply of the next write (after `skip` that go through) is lost, after the store applied it. */
  loseNextWrite(skip?: number): void;
  /** How many replies were lost so far: the fault really happened. */
  lost(): number;
  /** Each write's reply is lost with probability `rate` (0 stops it). */
  loseRandomly(rate: number): void;
  /** Every reply comes `ms` late (a proxy only; in-process stores answer at once). */
  delayReplies(ms: number): void;
  close(): Promise<void>;
}

/** host:port of a URL's server. */
const hostOf = (url: string) => new URL(url.replace(/^[a-z+]+:/, 'http:')).host;

async function proxied(url: string, write: () => (text: string) => boolean): Promise<Faulty> {
  const proxy = await FaultProxy.start(hostOf(url), { write });
  return {
    store: url.replace(hostOf(url), `127.0.0.1:${proxy.port}`),
    loseNextWrite: (skip = 0) => proxy.dropNextReplies(1, skip),
    lost: () => proxy.dropped,
    loseRandomly: (rate) => proxy.dropRandomly(rate),
    delayReplies: (ms) => proxy.delayReplies(ms),
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
    delayReplies: () => undefined,
    close: async () => inner.close?.(),
  };
}

export const FAULTY: ReadonlyArray<{ name: string; server?: string; open(): Promise<Faulty> }> = [
  { name: 'redis (proxy)', server: REDIS_URL, open: () => proxied(REDIS_URL, WRITES.redis) },
  { name: 'postgres (proxy)', server: POSTGRES_URL, open: () => proxied(POSTGRES_URL, WRITES.sql) },
  { name: 'mariadb (proxy)', server: MYSQL_URL, open: () => proxied(MYSQL_URL, WRITES.sql) },
  {
    name: 'sqlite',
    open: () => losing(`sqlite://${join(mkdtempSync(join(tmpdir(), 'kvs-faulty-')), 'sessions.sqlite')}`),
  },
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
