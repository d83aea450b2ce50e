// hashSids: the store holds the SHA-256 of each sid, never the sid (keys, records, retired markers, user indexes), and
// everything still works; on every backend.
import { describe, expect, it } from 'vitest';
import { sidHash } from '../src/sid.js';
import { cookiePair, sidOf, startApp, type TestApp } from './support/app.js';
import { BACKENDS, onBackend } from './support/servers.js';

describe.each(BACKENDS)('hashSids on $name', (backend) => {
  const env = onBackend(backend, 'hash');

  /** Routes: /login?user= (regenerate), /set?k=&v=, /take?k=, /inc, /logout, /me. */
  async function app(): Promise<TestApp> {
    const started = await startApp(
      { store: env.store, keyPrefix: env.prefix, hashSids: true, userKey: 'user', describe: () => 'a browser' },
      async (ctx) => {
        const q = ctx.query as Record<string, string>;
        if (ctx.path === '/login') {
          await ctx.session.regenerate();
          ctx.session.user = q.user;
        } else if (ctx.path === '/set') ctx.session[q.k as string] = q.v;
        else if (ctx.path === '/take') return String((await ctx.session.take(q.k as string)) ?? 'none');
        else if (ctx.path === '/inc') ctx.session.update('n', (n = 0) => n + 1);
        else if (ctx.path === '/logout') await ctx.session.destroy();
        return String(ctx.session.user ?? 'anonymous');
      },
    );
    env.apps.push(started);
    return started;
  }

  it('a whole life of sessions (login, regenerate, take, update, list, revoke one, revoke all, load, update(), logout) works, and no sid is ever in a key or a value', async () => {
    const server = await app();
    const sids = new Set<string>();
    const cookieOf = (setCookie: string | undefined) => {
      sids.add(sidOf(setCookie));
      return cookiePair(setCookie);
    };
    // Before login: a pre-login session with a one-time value, then the login moves it.
    const pre = cookieOf((await server.request('/set?k=state&v=xyz')).setCookies[0]);
    const phone = cookieOf((await server.request('/login?user=ann', { cookie: pre })).setCookies[0]);
    expect((await server.request('/take?k=state', { cookie: phone })).body).toBe('xyz');
    await server.request('/inc', { cookie: phone });
    const laptop = cookieOf((await server.request('/login?user=ann')).setCookies[0]);
    const tablet = cookieOf((await server.request('/login?user=ann')).setCookies[0]);

    // Every session record is stored under the hash of its sid.
    for (const sid of sids) {
      expect(await env.store.raw(env.prefix + sid)).toBeUndefined();
    }
    expect(await env.store.raw(env.prefix + sidHash(sidOf(laptop)))).toBeDefined();

    const listed = await server.middleware.listUserSessions('ann');
    expect(listed).toHaveLength(3);
    for (const entry of listed) expect(sids.has(entry.sid)).toBe(false);
    const loaded = await server.middleware.load(laptop);
    expect(loaded?.data.user).toBe('ann');
    expect(listed.map((entry) => entry.id)).toContain(loaded?.id);
    expect(await server.middleware.update(sidOf(laptop), (session) => void (session.role = 'viewer'))).toBe(true);

    // The old pre-login cookie follows nothing: its record was retired, and the marker names a hash.
    expect((await server.request('/me', { cookie: pre })).body).toBe('anonymous');
    // Revoke one device by its safe id, then every other session.
    expect(await server.middleware.revokeSession({ user: 'ann', id: loaded?.id as string })).toBe(true);
    expect((await server.request('/me', { cookie: laptop })).body).toBe('anonymous');
    expect(await server.middleware.revokeUserSessions('ann', { except: sidOf(tablet) })).toBe(1);
    expect((await server.request('/me', { cookie: phone })).body).toBe('anonymous');
    expect((await server.request('/me', { cookie: tablet })).body).toBe('ann');
    expect((await server.request('/logout', { cookie: tablet })).setCookies[0]).toMatch(/^session=;/);
    expect((await server.request('/me', { cookie: tablet })).body).toBe('anonymous');

    // What the store holds, or held, anywhere: no sid in a key written or a value. (A cookie naming no
    // session is also looked up under its sid, where a session stored before hashSids would be: the
    // sid of a live session is never sent.)
    const keys = new Set(env.store.calls.filter((call) => call.op !== 'get').map((call) => call.key));
    expect(keys.size).toBeGreaterThanOrEqual(5); // 4 sessions and a user index
    for (const key of keys) {
      const raw = await env.store.raw(key);
      for (const sid of sids) {
        expect(key).not.toContain(sid);
        if (typeof raw === 'string') expect(raw).not.toContain(sid);
      }
    }
  });

  it('a revocation by sid follows a regenerate() to the new sid, through the hashed marker', async () => {
    const server = await app();
    const before = cookiePair((await server.request('/login?user=bob')).setCookies[0]);
    const after = cookiePair((await server.request('/login?user=bob', { cookie: before })).setCookies[0]);
    expect((await server.request('/me', { cookie: after })).body).toBe('bob');
    expect(await server.middleware.revokeSession(sidOf(before))).toBe(true);
    expect((await server.request('/me', { cookie: after })).body).toBe('anonymous');
  });
});
