// ctx.session.take() and ctx.session.update() under overlapping requests, held open by the test so the overlap is
// certain, on real backends, in one and in two processes.
import { beforeEach, describe, expect, it } from 'vitest';
import { recordStatus } from '../src/tombstone.js';
import { cookiePair, sidOf, startApp, type TestApp } from './support/app.js';
import type { CountingAdapter } from './support/counting.js';
import { Holds, MODES } from './support/holds.js';
import { decodeStored } from './support/records.js';
import { BACKENDS, onBackend } from './support/servers.js';

describe.each(BACKENDS)('take() and update() on $name', (backend) => {
  const env = onBackend(backend, 'tu');
  let store: CountingAdapter;
  let prefix: string;
  let holds: Holds;
  beforeEach(() => {
    store = env.store;
    prefix = env.prefix;
    holds = new Holds();
  });

  /**
   * `count` apps on one store and prefix (two: two processes' lanes). Requests with `x-hold` wait,
   * with their session loaded, until released. Routes: /set?k=&v=, /take?k=, /append?k=&v=,
   * /inc?k=, /logout, /read.
   */
  async function servers(count: number): Promise<TestApp[]> {
    const started: TestApp[] = [];
    for (let i = 0; i < count; i++) {
      const app = await startApp({ store: store, keyPrefix: prefix }, async (ctx) => {
        const q = ctx.query as Record<string, string>;
        const key = q.k as string;
        JSON.stringify(ctx.session);
        await holds.hold(ctx);
        if (ctx.path === '/set') ctx.session[key] = q.num === undefined ? q.v : Number(q.v);
        else if (ctx.path === '/take') {
          const value: unknown = await ctx.session.take(key);
          return JSON.stringify({ value: value ?? null, after: ctx.session[key] ?? null });
        } else if (ctx.path === '/append') ctx.session.update(key, (list: string[] = []) => [...list, q.v as string]);
        else if (ctx.path === '/inc') return String(ctx.session.update(key, (n = 0) => n + 1));
        else if (ctx.path === '/logout') await ctx.session.destroy();
        return JSON.stringify(ctx.session);
      });
      env.apps.push(app);
      started.push(app);
    }
    return started;
  }

  const stored = async (sid: string) => {
    const raw = await store.raw(prefix + sid);
    return recordStatus(raw, Date.now()) === 'live' ? decodeStored(raw) : undefined;
  };

  async function login(app: TestApp, key: string, value: string): Promise<{ cookie: string; sid: string }> {
    const reply = await app.request(`/set?k=${key}&v=${value}`);
    return { cookie: cookiePair(reply.setCookies[0]), sid: sidOf(reply.setCookies[0]) };
  }

  /** `count` requests to `path`, spread over `apps`, all held with their session loaded, then let go together. */
  async function overlapping(apps: TestApp[], count: number, path: (i: number) => string, cookie: string) {
    const replies = Array.from({ length: count }, (_, i) =>
      (apps[i % apps.length] as TestApp).request(path(i), { cookie, headers: { 'x-hold': `r${i}` } }),
    );
    await Promise.all(Array.from({ length: count }, (_, i) => holds.held(`r${i}`)));
    for (let i = 0; i < count; i++) holds.release(`r${i}`);
    return Promise.all(replies);
  }

  /** Across processes only an atomic compare-and-set makes these exact; one process is exact everywhere. */
  const acrossProcesses = (count: number, skip: (note: string) => void) => {
    if (count > 1 && !store.atomic)
      skip(`${backend.name} has no atomic compare-and-set: across processes a one-round-trip window is documented`);
  };

  it.for(MODES)(
    '20 overlapping take() calls of one value: exactly one gets it, and the key is gone for all (%s)',
    async ([, count], context) => {
      acrossProcesses(count, (note) => context.skip(note));
      const apps = await servers(count);
      const { cookie, sid } = await login(apps[0] as TestApp, 'oauthState', 's3cr3t');
      await (apps[0] as TestApp).request('/set?k=other&v=kept', { cookie });
      const replies = await overlapping(apps, 20, () => '/take?k=oauthState', cookie);
      const results = replies.map((reply) => {
        expect(reply.status).toBe(200);
        return JSON.parse(reply.body) as { value: string | null; after: unknown };
      });
      expect(results.filter((r) => r.value === 's3cr3t')).toHaveLength(1);
      expect(results.filter((r) => r.value !== null && r.value !== 's3cr3t')).toEqual([]);
      expect(results.every((r) => r.after === null)).toBe(true);
      expect(await stored(sid)).toEqual({ other: 'kept' });
    },
  );

  it.for(MODES)('50 overlapping update() appends keep 50 items (%s)', async ([, count], context) => {
    acrossProcesses(count, (note) => context.skip(note));
    const apps = await servers(count);
    const { cookie, sid } = await login(apps[0] as TestApp, 'user', 'ada');
    const replies = await overlapping(apps, 50, (i) => `/append?k=cart&v=item${i}`, cookie);
    expect(replies.map((reply) => reply.status)).toEqual(Array(50).fill(200));
    const cart = (await stored(sid))?.cart as string[];
    expect([...cart].sort()).toEqual(Array.from({ length: 50 }, (_, i) => `item${i}`).sort());
  });

  it.for(MODES)('100 overlapping increments count to 100 (%s)', async ([, count], context) => {
    acrossProcesses(count, (note) => context.skip(note));
    const apps = await servers(count);
    const { cookie, sid } = await login(apps[0] as TestApp, 'user', 'ada');
    const replies = await overlapping(apps, 100, () => '/inc?k=n', cookie);
    // Each request saw its own increment of the value it loaded (0): the count is made at commit.
    expect(new Set(replies.map((reply) => reply.body))).toEqual(new Set(['1']));
    expect((await stored(sid))?.n).toBe(100);
  });

  it.for(MODES)(
    'update() racing a plain assignment of the same key: the later commit wins, and an update() runs on what is stored when it commits (%s)',
    async ([, count]) => {
      const [a, b = a] = (await servers(count)) as [TestApp, TestApp?];
      const { cookie, sid } = await login(a, 'user', 'ada');
      // The update commits after the assignment: it runs on the assigned value.
      const inc = a.request('/inc?k=n', { cookie, headers: { 'x-hold': 'inc' } });
      await holds.held('inc');
      expect((await (b as TestApp).request('/set?k=n&v=10&num=1', { cookie })).status).toBe(200);
      holds.release('inc');
      expect((await inc).body).toBe('1');
      expect((await stored(sid))?.n).toBe(11);
      // The assignment (of a request that loaded before) commits after the update: it wins.
      const set = (b as TestApp).request('/set?k=n&v=50&num=1', { cookie, headers: { 'x-hold': 'set' } });
      await holds.held('set');
      expect((await a.request('/inc?k=n', { cookie })).body).toBe('12');
      expect((await stored(sid))?.n).toBe(12);
      holds.release('set');
      expect((await set).status).toBe(200);
      expect((await stored(sid))?.n).toBe(50);
    },
  );

  it.for(MODES)(
    'take() racing a logout: once the logout has answered, no take() gets the value, and the session stays gone (%s)',
    async ([, count]) => {
      const [a, b = a] = (await servers(count)) as [TestApp, TestApp?];
      const { cookie, sid } = await login(a, 'token', 'once');
      const takes = await (async () => {
        const pending = [0, 1, 2].map((i) =>
          (i % 2 ? (b as TestApp) : a).request('/take?k=token', { cookie, headers: { 'x-hold': `t${i}` } }),
        );
        await Promise.all([0, 1, 2].map((i) => holds.held(`t${i}`)));
        const logout = await (b as TestApp).request('/logout', { cookie });
        expect(logout.setCookies[0]).toMatch(/^session=;/);
        for (const i of [0, 1, 2]) holds.release(`t${i}`);
        return Promise.all(pending);
      })();
      for (const reply of takes) {
        expect(reply.status).toBe(200);
        expect(JSON.parse(reply.body)).toEqual({ value: null, after: null });
      }
      expect(await stored(sid)).toBeUndefined();
      // The token is gone for good: a request with the old cookie finds no session.
      expect(JSON.parse((await a.request('/take?k=token', { cookie })).body)).toEqual({ value: null, after: null });
    },
  );

  it('take() costs one store round trip, update() nothing until the commit, which is one compare-and-set as for a plain write', async () => {
    const [app] = (await servers(1)) as [TestApp];
    const { cookie } = await login(app, 'token', 'once');
    let before = store.calls.length;
    expect(JSON.parse((await app.request('/take?k=token', { cookie })).body)).toEqual({ value: 'once', after: null });
    const takeCalls = store.calls.slice(before).map((call) => call.op);
    before = store.calls.length;
    await app.request('/inc?k=n', { cookie });
    const updateCalls = store.calls.slice(before).map((call) => call.op);
    before = store.calls.length;
    await app.request('/set?k=m&v=1', { cookie });
    const setCalls = store.calls.slice(before).map((call) => call.op);
    // The load, then one compare-and-set (a read and a write where the store has no atomic one): nothing at commit.
    expect(takeCalls).toEqual(setCalls);
    expect(updateCalls).toEqual(setCalls);
  });
});

describe('take() and update() of one request', () => {
  const env = onBackend(
    BACKENDS.find((b) => b.name.startsWith('memory')) ?? (BACKENDS[0] as (typeof BACKENDS)[number]),
    'tu1',
  );

  async function app(handler: Parameters<typeof startApp>[1]): Promise<TestApp> {
    const started = await startApp({ store: env.store, keyPrefix: env.prefix }, handler);
    env.apps.push(started);
    return started;
  }

  it('a new session takes its own value, with no store call; a key nobody set is undefined', async () => {
    const server = await app(async (ctx) => {
      ctx.session.flash = 'saved';
      const flash: unknown = await ctx.session.take('flash');
      const none: unknown = await ctx.session.take('nothing');
      return JSON.stringify({
        flash,
        none: none ?? null,
        after: ctx.session.flash ?? null,
        keys: Object.keys(ctx.session),
      });
    });
    const reply = await server.request('/');
    expect(JSON.parse(reply.body)).toEqual({ flash: 'saved', none: null, after: null, keys: [] });
    expect(env.store.calls.filter((call) => call.op !== 'get')).toEqual([]);
  });

  it('update() with a function that returns a Promise is a clear error, and nothing is written', async () => {
    const server = await app(async (ctx) => {
      if (ctx.path === '/login') ctx.session.n = 1;
      // biome-ignore lint/suspicious/noExplicitAny: a wrong call, as untyped JavaScript would make it
      else ctx.session.update('n', (async (n: number) => n + 1) as any);
    });
    const cookie = cookiePair((await server.request('/login')).setCookies[0]);
    const errors: Error[] = [];
    server.app.on('error', (error: Error) => errors.push(error));
    expect((await server.request('/async', { cookie })).status).toBe(500);
    expect(errors[0]?.message).toMatch(/update\('n', fn\): fn returned a Promise; it must be synchronous/);
  });

  it.each([
    ['take', (session: Record<string, unknown>) => (session.take = 1)],
    ['update', (session: Record<string, unknown>) => (session.update = 1)],
  ])('%s is a reserved name: it cannot be a data key', async (name, assign) => {
    const server = await app((ctx) => {
      try {
        assign(ctx.session as Record<string, unknown>);
        return 'assigned';
      } catch (error) {
        return (error as Error).message;
      }
    });
    expect((await server.request('/')).body).toBe(
      `ctx.session.${name} is a control member of koa-kv-session and cannot be used as a session data key; choose another name`,
    );
  });

  it('take() and update() refuse a key that is not a string, or a control member, and update() a fn that is not a function', async () => {
    const server = await app(async (ctx) => {
      const messages: string[] = [];
      const session = ctx.session as unknown as {
        take(key: unknown): Promise<unknown>;
        update(key: unknown, fn: unknown): unknown;
      };
      for (const call of [
        () => session.take(1),
        () => session.take('sid'),
        () => session.update('n', 1),
        () => session.update(null, () => 1),
      ]) {
        try {
          await call();
          messages.push('no error');
        } catch (error) {
          messages.push((error as Error).message);
        }
      }
      return JSON.stringify(messages);
    });
    expect(JSON.parse((await server.request('/')).body)).toEqual([
      'ctx.session.take(key): key must be a string, got number',
      'ctx.session.sid is a control member of koa-kv-session and cannot be used as a session data key; choose another name',
      "ctx.session.update('n', fn): fn must be a function of the current value that returns the new one, got number",
      'ctx.session.update(key): key must be a string, got object',
    ]);
  });
});
