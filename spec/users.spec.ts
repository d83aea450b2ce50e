// The sessions of a user (userKey): an index in the same store, listed and revoked without a scan, on every backend.
import type { Context } from 'koa';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/backends/memory.js';
import { parseRecord } from '../src/record.js';
import { kvSession, sessionExpires, type KvSessionOptions } from '../src/index.js';
import { userIndexName } from '../src/names.js';
import { cookiePair, sidOf, startApp, type Handler, type TestApp } from './support/app.js';
import { CountingAdapter } from './support/counting.js';
import { BACKENDS, onBackend } from './support/servers.js';

/** Routes: /login?user= (regenerates), /whoami, /logout, /switch?user=, /regenerate, /set?k=&v=. */
async function route(ctx: Context): Promise<unknown> {
  const user = ctx.query.user as string | undefined;
  switch (ctx.path) {
    case '/login':
      await ctx.session.regenerate();
      ctx.session.userId = user;
      ctx.session.agent = ctx.get('user-agent');
      return ctx.session.sid;
    case '/whoami':
      return ctx.session.userId ?? 'anonymous';
    case '/logout':
      ctx.session = null;
      return 'bye';
    case '/switch':
      ctx.session.userId = user;
      return ctx.session.sid;
    case '/regenerate':
      await ctx.session.regenerate();
      return ctx.session.sid;
    case '/set':
      ctx.session[ctx.query.k as string] = ctx.query.v;
      return ctx.session.sid;
    default:
      return 'not found';
  }
}

describe.each(BACKENDS)('sessions of a user on $name', (backend) => {
  const env = onBackend(backend, 'users');
  let store: CountingAdapter;
  let prefix: string;
  beforeEach(() => {
    store = env.store;
    prefix = env.prefix;
  });

  async function app(options: KvSessionOptions = {}): Promise<TestApp> {
    const started = await startApp({ store: store, keyPrefix: prefix, userKey: 'userId', ...options }, route);
    env.apps.push(started);
    return started;
  }

  /** Logs `user` in; resolves with the sid and the Cookie header of that browser. */
  async function login(target: TestApp, user: string, agent = 'test'): Promise<{ sid: string; cookie: string }> {
    const reply = await target.request(`/login?user=${encodeURIComponent(user)}`, { headers: { 'user-agent': agent } });
    expect(reply.status).toBe(200);
    return { sid: reply.body, cookie: cookiePair(reply.setCookies[0]) };
  }

  const indexKey = (user: string): string => prefix + userIndexName(user);
  const indexedSids = async (user: string): Promise<string[]> => {
    const raw = await store.raw(indexKey(user));
    if (raw === undefined || raw === null) return [];
    return Object.keys((JSON.parse(parseRecord(raw).payload) as { sessions: object }).sessions).sort();
  };

  it('lists the live sessions of each user, with their data, expiry and permanence', async () => {
    const site = await app();
    const a1 = await login(site, 'alice', 'laptop');
    const a2 = await login(site, 'alice', 'phone');
    const b1 = await login(site, 'bob');
    const alice = await site.middleware.listUserSessions('alice');
    expect(alice.map((s) => s.sid).sort()).toEqual([a1.sid, a2.sid].sort());
    expect(alice.map((s) => s.data.agent).sort()).toEqual(['laptop', 'phone']);
    for (const session of alice) {
      expect(session.permanent).toBe(true);
      expect(session.expires.getTime()).toBeGreaterThan(Date.now());
    }
    expect((await site.middleware.listUserSessions('bob')).map((s) => s.sid)).toEqual([b1.sid]);
    expect(await site.middleware.listUserSessions('nobody')).toEqual([]);
  });

  it('revokes every session of one user and no other ("log out everywhere")', async () => {
    const site = await app();
    const a1 = await login(site, 'alice');
    const a2 = await login(site, 'alice');
    const b1 = await login(site, 'bob');
    expect(await site.middleware.revokeUserSessions('alice')).toBe(2);
    expect((await site.request('/whoami', { cookie: a1.cookie })).body).toBe('anonymous');
    expect((await site.request('/whoami', { cookie: a2.cookie })).body).toBe('anonymous');
    expect((await site.request('/whoami', { cookie: b1.cookie })).body).toBe('bob');
    expect(await site.middleware.listUserSessions('alice')).toEqual([]);
    expect(await indexedSids('alice')).toEqual([]);
    expect(await site.middleware.revokeUserSessions('alice')).toBe(0);
  });

  it('keeps the index in the same store under the same prefix, expiring no earlier than the sessions', async () => {
    const site = await app();
    const a1 = await login(site, 'alice');
    const session = parseRecord(await store.raw(prefix + a1.sid));
    const index = parseRecord(await store.raw(indexKey('alice')));
    expect(index.expires).toBeGreaterThanOrEqual(session.expires);
    expect(await indexedSids('alice')).toEqual([a1.sid]);
  });

  it('lists and revokes with reads of the index and of each session only: no scan', async () => {
    const site = await app();
    const a1 = await login(site, 'alice');
    const a2 = await login(site, 'alice');
    store.reset();
    await site.middleware.listUserSessions('alice');
    expect(store.calls.map((c) => `${c.op} ${c.key}`).sort()).toEqual(
      [`get ${indexKey('alice')}`, `get ${prefix}${a1.sid}`, `get ${prefix}${a2.sid}`].sort(),
    );
  });

  it('drops the sid from the index at logout', async () => {
    const site = await app();
    const a1 = await login(site, 'alice');
    const a2 = await login(site, 'alice');
    await site.request('/logout', { cookie: a1.cookie });
    expect(await indexedSids('alice')).toEqual([a2.sid]);
    expect((await site.middleware.listUserSessions('alice')).map((s) => s.sid)).toEqual([a2.sid]);
  });

  it('moves the entry to the new sid when the session is regenerated', async () => {
    const site = await app();
    const a1 = await login(site, 'alice');
    const moved = await site.request('/regenerate', { cookie: a1.cookie });
    expect(moved.body).not.toBe(a1.sid);
    expect(await indexedSids('alice')).toEqual([moved.body]);
    expect((await site.middleware.listUserSessions('alice')).map((s) => s.sid)).toEqual([moved.body]);
  });

  it('moves the session between indexes when its user field changes', async () => {
    const site = await app();
    const a1 = await login(site, 'alice');
    await site.request('/switch?user=bob', { cookie: a1.cookie });
    expect(await indexedSids('alice')).toEqual([]);
    expect(await indexedSids('bob')).toEqual([a1.sid]);
    expect(await site.middleware.listUserSessions('alice')).toEqual([]);
  });

  it('indexes every one of many concurrent logins of one user, across processes', async (context) => {
    // Without an atomic compare-and-set, processes can overwrite each other's index update (one round trip window,
    // documented); within one process the updates of a user are queued and cannot be lost.
    const processes = store.atomic ? 3 : 1;
    const sites = await Promise.all(Array.from({ length: processes }, () => app()));
    const logins = await Promise.all(
      Array.from({ length: 30 }, (_, i) => login(sites[i % processes] as TestApp, 'carol', `device-${i}`)),
    );
    const listed = await (sites[0] as TestApp).middleware.listUserSessions('carol');
    expect(listed.map((s) => s.sid).sort()).toEqual(logins.map((l) => l.sid).sort());
    expect(await (sites[1 % processes] as TestApp).middleware.revokeUserSessions('carol')).toBe(30);
    const after = await Promise.all(logins.map((l) => (sites[0] as TestApp).request('/whoami', { cookie: l.cookie })));
    expect(after.map((r) => r.body)).toEqual(logins.map(() => 'anonymous'));
    if (!store.atomic)
      context.annotate(
        `${backend.name}: concurrent logins checked within one process only (no atomic compare-and-set)`,
      );
  });

  it('forgets a user whose sessions expired: the index expires with them', async () => {
    const site = await app({ lifetime: 1000, refreshEachRequest: false });
    await login(site, 'dave');
    expect(await indexedSids('dave')).toHaveLength(1);
    // The entry is covered for a lifetime past the session's expiry.
    await sleep(2300);
    expect(await site.middleware.listUserSessions('dave')).toEqual([]);
    // Where the server does not expire keys itself, a purge removes the index with the sessions.
    if (!backend.nativeTtl) await site.middleware.purge();
    expect(await store.raw(indexKey('dave'))).toBeFalsy();
  });

  it('keeps an active session in the index past twice its lifetime: refreshes move the entry forward', async () => {
    const site = await app({ lifetime: 2000, refreshInterval: 0 });
    const a1 = await login(site, 'erin');
    const until = Date.now() + 5000;
    while (Date.now() < until) {
      expect((await site.request('/whoami', { cookie: a1.cookie })).body).toBe('erin');
      await sleep(300);
    }
    expect((await site.middleware.listUserSessions('erin')).map((s) => s.sid)).toEqual([a1.sid]);
    expect(await site.middleware.revokeUserSessions('erin')).toBe(1);
  });
});

describe('sessions of a user: API and edge cases (memory store)', () => {
  const apps: TestApp[] = [];
  const site = async (options: KvSessionOptions = {}, handler: Handler = route): Promise<TestApp> => {
    const started = await startApp({ store: 'memory://', userKey: 'userId', ...options }, handler);
    apps.push(started);
    return started;
  };
  beforeEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  it('says which option is missing when listUserSessions/revokeUserSessions are called without userKey', async () => {
    const middleware = kvSession({ store: 'memory://' });
    await expect(middleware.listUserSessions('alice')).rejects.toThrow(
      /listUserSessions\(\) needs the userKey option \(or SESSION_USER_KEY\)/,
    );
    await expect(middleware.revokeUserSessions('alice')).rejects.toMatchObject({ code: 'SESSION_INVALID_OPTION' });
    await middleware.close();
  });

  it.each([[''], [null], [{}], [Number.NaN]])('rejects %j as a user id argument', async (user) => {
    const target = await site();
    await expect(target.middleware.listUserSessions(user as string)).rejects.toThrow(
      /takes a user id \(a non-empty string or a number\)/,
    );
  });

  it('treats a numeric user id and its decimal string as the same user', async () => {
    const target = await site({}, async (ctx) => {
      await ctx.session.regenerate();
      ctx.session.userId = 42;
      return ctx.session.sid;
    });
    const sid = (await target.request('/')).body;
    expect((await target.middleware.listUserSessions('42')).map((s) => s.sid)).toEqual([sid]);
    expect((await target.middleware.listUserSessions(42)).map((s) => s.sid)).toEqual([sid]);
  });

  it('fails the request with SESSION_INVALID_USER, saving nothing, when the user field holds an object', async () => {
    const errors: string[] = [];
    const target = await site({}, (ctx) => {
      ctx.session.userId = { id: 1 };
    });
    target.app.on('error', (error: { code?: string }) => errors.push(String(error.code)));
    const reply = await target.request('/');
    expect(reply.status).toBe(500);
    expect(reply.setCookies).toEqual([]);
    expect(errors).toEqual(['SESSION_INVALID_USER']);
  });

  it('serves a stored session whose user field cannot be a user id (written before userKey was set) instead of failing it', async () => {
    const memory = new MemoryBackend();
    const target = await site(
      { store: memory, keyPrefix: 'p:', cookie: { signed: false }, refreshInterval: 0 },
      (ctx) => String(ctx.session.note),
    );
    const sid = 'A'.repeat(43);
    await memory.set(
      `p:${sid}`,
      `j2:${Date.now() + 60_000}:1:AAAAAAAA:1::${JSON.stringify({ userId: { legacy: true }, note: 'kept' })}`,
      60_000,
    );
    const reply = await target.request('/', { cookie: `session=${sid}` });
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('kept');
  });

  it('makes no index calls at all for sessions without a user', async () => {
    const counting = new CountingAdapter(new MemoryBackend());
    const target = await site({ store: counting }, (ctx) => {
      ctx.session.views = Number(ctx.session.views ?? 0) + 1;
    });
    const first = await target.request('/');
    await target.request('/', { cookie: cookiePair(first.setCookies[0]) });
    expect(counting.calls.filter((c) => c.key.includes('~user~'))).toEqual([]);
  });

  it('rebuilds an index record it cannot read instead of failing logins', async () => {
    const memory = new MemoryBackend();
    const target = await site({ store: memory, keyPrefix: 'p:' });
    await memory.set(`p:${userIndexName('frank')}`, 'garbage', 60_000);
    const sid = (await target.request('/login?user=frank')).body;
    expect((await target.middleware.listUserSessions('frank')).map((s) => s.sid)).toEqual([sid]);
  });

  it('drops index entries whose session is gone once they are past the grace time, and keeps young ones', async () => {
    const memory = new MemoryBackend();
    const target = await site({ store: memory, keyPrefix: 'p:' });
    const sid = (await target.request('/login?user=gina')).body;
    const key = `p:${userIndexName('gina')}`;
    const record = parseRecord(await memory.get(key));
    const index = JSON.parse(record.payload) as { user: string; sessions: Record<string, [number, number]> };
    const far = Date.now() + 3_600_000;
    index.sessions.oldDeadSid = [far, Date.now() - 3_600_000];
    index.sessions.youngPendingSid = [far, Date.now()];
    await memory.set(key, `j2:${far}:0:AAAAAAAA:::${JSON.stringify(index)}`, 3_600_000);
    expect((await target.middleware.listUserSessions('gina')).map((s) => s.sid)).toEqual([sid]);
    const after = JSON.parse(parseRecord(await memory.get(key)).payload) as { sessions: object };
    expect(Object.keys(after.sessions).sort()).toEqual([sid, 'youngPendingSid'].sort());
  });

  it('sessionExpires(ctx): a lifetime from now for a new or refreshed session, the stored expiry for one unchanged or written before a refresh is due, undefined without one', async () => {
    const memory = new MemoryBackend();
    const target = await site({ store: memory, keyPrefix: 'p:', lifetime: 60_000, refreshInterval: 30_000 }, (ctx) => {
      if (ctx.path === '/write') ctx.session.n = Number(ctx.session.n ?? 0) + 1;
      return String(sessionExpires(ctx)?.getTime() ?? 'none');
    });
    expect((await target.request('/read')).body).toBe('none');
    const before = Date.now();
    const written = await target.request('/write');
    expect(Number(written.body)).toBeGreaterThanOrEqual(before + 60_000);
    expect(Number(written.body)).toBeLessThanOrEqual(Date.now() + 60_000);
    const stored = parseRecord(await memory.get(`p:${sidOf(written.setCookies[0])}`)).expires;
    await sleep(20);
    const cookie = cookiePair(written.setCookies[0]);
    // Not modified, no refresh due: exactly the stored expiry.
    expect(Number((await target.request('/read', { cookie })).body)).toBe(stored);
    // Written before a refresh is due: the expiry stays where it was.
    expect(Number((await target.request('/write', { cookie })).body)).toBe(stored);
    expect(parseRecord(await memory.get(`p:${sidOf(written.setCookies[0])}`)).expires).toBe(stored);
  });
});
