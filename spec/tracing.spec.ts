// The koa-kv-session:store tracing channel: every store call of a session's life, its outcome, conflicts, retries and
// failures, never a sid; and the metrics example of docs/operations.md.
import diagnosticsChannel from 'node:diagnostics_channel';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import client from 'prom-client';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STORE_CHANNEL, type StoreTraceContext } from '../src/index.js';
import { MemoryBackend } from '../src/backends/memory.js';
import { signerFor } from '../src/cookie.js';
import { generateSid, sidFingerprint } from '../src/sid.js';
import type { Context } from 'koa';
import { cookiePair, sidOf, startApp, type TestApp } from './support/app.js';
import { FlakyAdapter } from './support/flaky.js';
import { Holds } from './support/holds.js';
import { BACKENDS, onBackend, uniquePrefix } from './support/servers.js';

type Traced = StoreTraceContext & { result?: unknown };

/** Every context the channel published, by event, while subscribed. */
function listen() {
  const events = { start: [] as Traced[], asyncEnd: [] as Traced[], error: [] as Traced[] };
  const handlers = {
    start: (context: Traced) => events.start.push(context),
    asyncEnd: (context: Traced) => events.asyncEnd.push(context),
    error: (context: Traced) => events.error.push(context),
    end: () => {},
    asyncStart: () => {},
  };
  const channel = diagnosticsChannel.tracingChannel<object, Traced>(STORE_CHANNEL);
  channel.subscribe(handlers);
  return { events, stop: () => channel.unsubscribe(handlers) };
}

let listening: ReturnType<typeof listen>;
/** Forgets what was published so far (the start-up probe, a test's set-up requests). */
const forget = () => {
  for (const list of Object.values(listening.events)) list.length = 0;
};
beforeEach(() => {
  listening = listen();
});
afterEach(() => listening.stop());

describe.each(BACKENDS)('tracing on $name', (backend) => {
  const env = onBackend(backend, 'trace');
  let holds: Holds;
  beforeEach(() => {
    holds = new Holds();
  });

  async function app(): Promise<TestApp> {
    const started = await startApp({ store: env.store, keyPrefix: env.prefix, refreshInterval: 0 }, async (ctx) => {
      JSON.stringify(ctx.session);
      await holds.hold(ctx);
      if (ctx.path === '/login') {
        await ctx.session.regenerate();
        ctx.session.user = 'ada';
      } else if (ctx.path === '/set') ctx.session.n = ctx.query.n;
      else if (ctx.path === '/logout') await ctx.session.destroy();
      return String(ctx.session.user ?? 'anonymous');
    });
    env.apps.push(started);
    return started;
  }

  it("a session's life (create, read, change, regenerate, logout): each store call traced once, with its outcome, named by safe id, never a sid", async () => {
    const server = await app();
    await server.middleware.ready();
    forget();
    const first = await server.request('/set?n=1');
    const sid = sidOf(first.setCookies[0]);
    const login = await server.request('/login', { cookie: cookiePair(first.setCookies[0]) });
    const moved = sidOf(login.setCookies[0]);
    const cookie = cookiePair(login.setCookies[0]);
    await server.request('/set?n=2', { cookie });
    await server.request('/logout', { cookie });
    const { start, asyncEnd, error } = listening.events;
    expect(error).toEqual([]);
    expect(asyncEnd).toEqual(start);
    const operations = new Set(start.map((context) => context.operation));
    expect([...operations].sort()).toEqual(['load', 'remove', 'write']);
    for (const context of start) {
      expect(context.backend).toBe('Keyv adapter');
      expect(context.attempts).toBe(1);
      expect(context.result).toBe(context.outcome);
      expect(['session', 'user-index']).toContain(context.target);
    }
    const ids = new Set(start.map((context) => context.id));
    expect(ids).toEqual(new Set([sidFingerprint(sid), sidFingerprint(moved)]));
    expect(start.filter((c) => c.operation === 'load').map((c) => c.outcome)).toEqual(['found', 'found', 'found']);
    expect(start.filter((c) => c.operation === 'write').every((c) => c.outcome === 'saved')).toBe(true);
    const text = JSON.stringify(start);
    expect(text).not.toContain(sid);
    expect(text).not.toContain(moved);
  });

  it('a write that another write came before is traced with outcome "conflict", and its retry as a call of its own', async () => {
    const server = await app();
    const cookie = cookiePair((await server.request('/set?n=1')).setCookies[0]);
    const late = server.request('/set?n=late', { cookie, headers: { 'x-hold': 'late' } });
    await holds.held('late');
    await server.request('/set?n=first', { cookie });
    forget();
    holds.release('late');
    expect((await late).status).toBe(200);
    const writes = listening.events.start.filter((context) => context.operation === 'write');
    expect(writes.map((context) => context.outcome)).toEqual(['conflict', 'saved']);
  });
});

describe('tracing of failures and retries (a fake store)', () => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((server) => server.close()));
  });

  /** An app on `store` whose session cookie is made, and whose events so far are forgotten. */
  async function withSession(store: FlakyAdapter, storeRetries: number) {
    const server = await startApp({ store: store, keyPrefix: uniquePrefix('trace-fail'), storeRetries }, (ctx) => {
      ctx.session.n = 1;
    });
    apps.push(server);
    const cookie = cookiePair((await server.request('/')).setCookies[0]);
    forget();
    return { server, cookie };
  }

  it('a read that failed once and then answered: one call, attempts 2', async () => {
    const store = new FlakyAdapter();
    const { server, cookie } = await withSession(store, 2);
    store.failNextGets = 1;
    const reply = await server.request('/', { cookie });
    expect(reply.status).toBe(200);
    const loads = listening.events.start.filter((context) => context.operation === 'load');
    expect(loads.map((context) => [context.attempts, context.outcome])).toEqual([[2, 'found']]);
  });

  it('a store that keeps failing: the error event carries the SessionStoreError the request answered 503 with', async () => {
    const store = new FlakyAdapter();
    const { server, cookie } = await withSession(store, 1);
    store.failGet = true;
    expect((await server.request('/', { cookie })).status).toBe(503);
    const [failed] = listening.events.error;
    expect(failed?.operation).toBe('load');
    expect(failed?.attempts).toBe(2);
    expect((failed?.error as Error | undefined)?.name).toBe('SessionStoreError');
    expect(listening.events.asyncEnd).toContain(failed);
  });
});

describe('tracing while hashSids is switched on and off', () => {
  it('no published context carries any part of a sid: unknown cookies, moves both ways, revocations of sessions in either layout', async () => {
    const store = new MemoryBackend();
    const keyPrefix = uniquePrefix('trace-switch');
    const route = async (ctx: Context) => {
      if (ctx.path === '/login') ctx.session.user = String(ctx.query.user);
      return String(ctx.session.user ?? 'anonymous');
    };
    const plain = await startApp({ store: store, keyPrefix, userKey: 'user' }, route);
    const hashed = await startApp({ store: store, keyPrefix, userKey: 'user', hashSids: true }, route);
    try {
      const signer = signerFor(plain.app.keys) as NonNullable<ReturnType<typeof signerFor>>;
      const cookieOf = (sid: string) => `session=${sid}.${signer.sign(`session=${sid}`)}`;
      const sids: string[] = [];
      const login = async (app: TestApp, user: string) => {
        const reply = await app.request(`/login?user=${user}`);
        sids.push(sidOf(reply.setCookies[0]));
        return cookiePair(reply.setCookies[0]);
      };
      const [one, two, three] = [await login(plain, 'ada'), await login(plain, 'ada'), await login(plain, 'bob')];
      forget();
      // Unknown sids in both layouts, a move to hashed keys, revocations that meet a moved and a not yet moved session.
      const unknown = generateSid(32);
      sids.push(unknown);
      await hashed.request('/', { cookie: cookieOf(unknown) });
      await plain.request('/', { cookie: cookieOf(unknown) });
      expect((await hashed.request('/', { cookie: one })).body).toBe('ada');
      expect(await hashed.middleware.revokeUserSessions('ada')).toBe(2);
      expect((await hashed.request('/', { cookie: two })).body).toBe('anonymous');
      // And back: a session moved to hashed keys is moved back by a process without hashSids.
      expect((await hashed.request('/', { cookie: three })).body).toBe('bob');
      expect((await plain.request('/', { cookie: three })).body).toBe('bob');
      expect(await plain.middleware.revokeSession(sids[2] as string)).toBe(true);
      const published = listening.events.start.filter((context) => context.target === 'session');
      expect(published.length).toBeGreaterThan(10);
      for (const context of published) {
        expect(context.id).toMatch(/^[\w-]{16}$/);
        for (const sid of sids) expect(sid.includes(context.id as string)).toBe(false);
      }
    } finally {
      await plain.close();
      await hashed.close();
    }
  });
});

describe('tracing: backend names', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-trace-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['memory://', 'memory'],
    [`sqlite://${join(dir, 'names.sqlite')}`, 'SQLite'],
    [new Map(), 'Map'],
  ])('%s is traced as %s', async (store, name) => {
    const server = await startApp({ store: store, keyPrefix: uniquePrefix('trace-name') }, (ctx) => {
      ctx.session.n = 1;
    });
    try {
      await server.request('/');
      expect(new Set(listening.events.start.map((context) => context.backend))).toEqual(new Set([name]));
    } finally {
      await server.close();
    }
  });
});

describe('docs/operations.md: the metrics example', () => {
  const ROOT = resolve(import.meta.dirname, '..');
  const file = join(ROOT, 'examples', 'store-metrics.mjs');

  it('is the file the page shows, and turns the channel into a latency histogram and a conflict counter', async () => {
    expect(readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8')).toContain(readFileSync(file, 'utf8').trim());
    const { storeMetrics } = (await import(file)) as { storeMetrics(register: client.Registry): () => void };
    const register = new client.Registry();
    const stop = storeMetrics(register);
    const holds = new Holds();
    const server = await startApp({ store: 'memory://', keyPrefix: uniquePrefix('metrics') }, async (ctx) => {
      JSON.stringify(ctx.session);
      await holds.hold(ctx);
      ctx.session.n = ctx.query.n;
    });
    try {
      const cookie = cookiePair((await server.request('/?n=1')).setCookies[0]);
      const late = server.request('/?n=late', { cookie, headers: { 'x-hold': 'late' } });
      await holds.held('late');
      await server.request('/?n=first', { cookie });
      holds.release('late');
      await late;
      const text = await register.metrics();
      expect(text).toMatch(
        /koa_kv_session_store_duration_seconds_count\{operation="load",backend="memory",outcome="found"\} 2/,
      );
      expect(text).toMatch(
        /koa_kv_session_store_duration_seconds_count\{operation="write",backend="memory",outcome="saved"\} 3/,
      );
      expect(text).toMatch(/koa_kv_session_store_conflicts_total\{backend="memory"\} 1/);
    } finally {
      stop();
      await server.close();
    }
  });
});
