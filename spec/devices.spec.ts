// Sessions beyond the request (issue 14): signing out one device, everything but this one, a devices page without sids,
// load() and update() outside a request; on every backend.
import type { Context } from 'koa';
import { beforeEach, describe, expect, it } from 'vitest';
import { recordStatus } from '../src/tombstone.js';
import { type KvSessionOptions, kvSession, sessionId } from '../src/index.js';
import { cookiePair, startApp, type TestApp } from './support/app.js';
import type { CountingAdapter } from './support/counting.js';
import { BACKENDS, onBackend } from './support/servers.js';

/** A promise and the function that settles it: a request held open until the test says so. */
function gate(): { opened: Promise<void>; open(): void } {
  let open = (): void => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

describe.each(BACKENDS)('devices of a user on $name', (backend) => {
  const env = onBackend(backend, 'devices');
  let store: CountingAdapter;
  let prefix: string;
  let held = gate();
  let arrived = gate();
  beforeEach(() => {
    store = env.store;
    prefix = env.prefix;
    held = gate();
    arrived = gate();
  });

  /**
   * Routes: /login?user= (regenerates), /whoami, /set?k=&v=, /slow?k=&v= (waits for the test, then sets), /me (this
   * session's safe id).
   */
  async function route(ctx: Context): Promise<unknown> {
    switch (ctx.path) {
      case '/login':
        await ctx.session.regenerate();
        ctx.session.userId = ctx.query.user;
        return ctx.session.sid;
      case '/whoami':
        return ctx.session.userId ?? 'anonymous';
      case '/set':
        ctx.session[ctx.query.k as string] = ctx.query.v;
        return 'ok';
      case '/slow':
        void ctx.session.userId; // loaded before the wait, as a real handler would
        arrived.open();
        await held.opened;
        ctx.session[ctx.query.k as string] = ctx.query.v;
        return 'ok';
      case '/slow-regenerate':
        void ctx.session.userId;
        arrived.open();
        await held.opened;
        await ctx.session.regenerate();
        ctx.session.elevated = true;
        return ctx.session.sid;
      case '/me':
        return sessionId(ctx) ?? 'none';
      default:
        return 'not found';
    }
  }

  async function app(options: KvSessionOptions = {}): Promise<TestApp> {
    const started = await startApp({ store: store, keyPrefix: prefix, userKey: 'userId', ...options }, route);
    env.apps.push(started);
    return started;
  }

  async function login(site: TestApp, user: string, agent = 'test-agent'): Promise<{ sid: string; cookie: string }> {
    const reply = await site.request(`/login?user=${user}`, { headers: { 'user-agent': agent } });
    expect(reply.status).toBe(200);
    return { sid: reply.body, cookie: cookiePair(reply.setCookies[0]) };
  }

  it('revokeSession(sid) signs that device out and no other; a second call resolves false', async () => {
    const site = await app();
    const laptop = await login(site, 'ana');
    const phone = await login(site, 'ana');
    await expect(site.middleware.revokeSession(laptop.sid)).resolves.toBe(true);
    expect((await site.request('/whoami', { cookie: laptop.cookie })).body).toBe('anonymous');
    expect((await site.request('/whoami', { cookie: phone.cookie })).body).toBe('ana');
    expect((await site.middleware.listUserSessions('ana')).map((s) => s.sid)).toEqual([phone.sid]);
    await expect(site.middleware.revokeSession(laptop.sid)).resolves.toBe(false);
  });

  it('a devices page needs no sid: entries carry a safe id, sessionId(ctx) names the current one, revokeSession({ user, id }) signs it out', async () => {
    const site = await app();
    const laptop = await login(site, 'bo');
    const phone = await login(site, 'bo');
    const entries = await site.middleware.listUserSessions('bo');
    expect(entries).toHaveLength(2);
    for (const entry of entries) {
      expect(entry.id).toMatch(/^[\w-]{16}$/);
      expect(entry.sid).not.toContain(entry.id);
    }
    const current = (await site.request('/me', { cookie: phone.cookie })).body;
    expect(entries.find((entry) => entry.id === current)?.sid).toBe(phone.sid);
    const other = entries.find((entry) => entry.id !== current)?.id as string;
    await expect(site.middleware.revokeSession({ user: 'bo', id: 'A'.repeat(16) })).resolves.toBe(false);
    await expect(site.middleware.revokeSession({ user: 'someone-else', id: other })).resolves.toBe(false);
    expect((await site.request('/whoami', { cookie: laptop.cookie })).body).toBe('bo');
    await expect(site.middleware.revokeSession({ user: 'bo', id: other })).resolves.toBe(true);
    expect((await site.request('/whoami', { cookie: laptop.cookie })).body).toBe('anonymous');
    expect((await site.request('/whoami', { cookie: phone.cookie })).body).toBe('bo');
  });

  it('revokeSession({ user, id }) follows a session that regenerate() moved since the page listed it (twice over)', async () => {
    const site = await app();
    const laptop = await login(site, 'di');
    const listed = (await site.middleware.listUserSessions('di'))[0]?.id as string;
    // The same browser regenerates twice (a login again, a privilege change): its sid and safe id change.
    let cookie = laptop.cookie;
    for (let i = 0; i < 2; i++) cookie = cookiePair((await site.request('/login?user=di', { cookie })).setCookies[0]);
    expect((await site.middleware.listUserSessions('di')).map((entry) => entry.id)).not.toContain(listed);
    await expect(site.middleware.revokeSession({ user: 'di', id: listed })).resolves.toBe(true);
    expect((await site.request('/whoami', { cookie })).body).toBe('anonymous');
  });

  it('entries say when each session was created and last seen (to within refreshInterval)', async () => {
    const site = await app({ refreshInterval: 1000 });
    const before = Date.now();
    const device = await login(site, 'cy');
    const after = Date.now();
    const [entry] = await site.middleware.listUserSessions('cy');
    expect(entry?.createdAt?.getTime()).toBeGreaterThanOrEqual(before - 1);
    expect(entry?.createdAt?.getTime()).toBeLessThanOrEqual(after + 1);
    expect(entry?.lastSeenAt.getTime()).toBeGreaterThanOrEqual(before - 1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const seen = Date.now();
    expect((await site.request('/whoami', { cookie: device.cookie })).body).toBe('cy');
    const [later] = await site.middleware.listUserSessions('cy');
    expect(later?.createdAt?.getTime()).toBe(entry?.createdAt?.getTime());
    expect(later?.lastSeenAt.getTime()).toBeGreaterThanOrEqual(seen - 1);
    expect(later?.lastSeenAt.getTime()).toBeLessThanOrEqual(Date.now() + 1);
  });

  it('revoking a device while it has a request in flight leaves it signed out: the request does not bring the session back', async () => {
    const site = await app();
    const device = await login(site, 'di');
    const inFlight = site.request('/slow?k=cart&v=1', { cookie: device.cookie });
    await arrived.opened;
    await expect(site.middleware.revokeSession(device.sid)).resolves.toBe(true);
    held.open();
    await inFlight;
    expect((await site.request('/whoami', { cookie: device.cookie })).body).toBe('anonymous');
    expect(recordStatus(await store.raw(prefix + device.sid), Date.now())).not.toBe('live');
    expect(await site.middleware.listUserSessions('di')).toEqual([]);
  });

  it('a regenerate() in flight on the revoked session does not bring it back under a new sid either', async () => {
    const site = await app();
    const device = await login(site, 'dot');
    const inFlight = site.request('/slow-regenerate', { cookie: device.cookie });
    await arrived.opened;
    await expect(site.middleware.revokeSession(device.sid)).resolves.toBe(true);
    held.open();
    const reply = await inFlight;
    // The rotation found its record gone: no session under the new sid, and the cookie is cleared.
    expect((await store.raw(prefix + reply.body)) ?? undefined).toBeUndefined();
    expect((await site.request('/whoami', { cookie: device.cookie })).body).toBe('anonymous');
    expect(await site.middleware.listUserSessions('dot')).toEqual([]);
  });

  it('revokeUserSessions(user, { except }) signs out every other device and keeps this one', async () => {
    const site = await app();
    const devices = [await login(site, 'ed'), await login(site, 'ed'), await login(site, 'ed')];
    const keep = devices[1] as { sid: string; cookie: string };
    await expect(site.middleware.revokeUserSessions('ed', { except: keep.sid })).resolves.toBe(2);
    for (const device of devices)
      expect((await site.request('/whoami', { cookie: device.cookie })).body).toBe(
        device === keep ? 'ed' : 'anonymous',
      );
    expect((await site.middleware.listUserSessions('ed')).map((s) => s.sid)).toEqual([keep.sid]);
  });

  it('load(cookieHeader) reads the session a Cookie header names, without changing it', async () => {
    const site = await app();
    const device = await login(site, 'flo');
    await site.request('/set?k=theme&v=dark', { cookie: device.cookie });
    const loaded = await site.middleware.load(`other=1; ${device.cookie}`);
    expect(loaded).toMatchObject({ sid: device.sid, permanent: true, data: { userId: 'flo', theme: 'dark' } });
    expect(loaded?.id).toBe((await site.middleware.listUserSessions('flo'))[0]?.id);
    expect(loaded?.expires.getTime()).toBeGreaterThan(Date.now());
    (loaded?.data as Record<string, unknown>).theme = 'light';
    expect((await site.middleware.load(device.cookie))?.data.theme).toBe('dark');
  });

  it('load(cookieHeader, app) before the first request after a start: the keys come from the app passed', async () => {
    const site = await app();
    const device = await login(site, 'ida');
    // A process just started: its middleware has served nothing, and its keys live on app.keys only.
    const fresh = kvSession({ store: store, keyPrefix: prefix, userKey: 'userId' });
    try {
      await expect(fresh.load(device.cookie)).rejects.toMatchObject({
        code: 'SESSION_NO_KEYS',
        message: expect.stringContaining('load(header, app)'),
      });
      expect(await fresh.load(device.cookie, site.app)).toMatchObject({ sid: device.sid, data: { userId: 'ida' } });
      expect(await fresh.load(device.cookie, { keys: ['another-secret-0123456789'] })).toBeUndefined();
      await expect(fresh.load(device.cookie, 'app' as never)).rejects.toThrow(/load\(header, app\) takes the Koa app/);
    } finally {
      await fresh.close();
    }
  });

  it('load() never reads the store for a missing, forged or malformed value', async () => {
    const site = await app();
    const device = await login(site, 'gus');
    const [name, value] = device.cookie.split('=') as [string, string];
    const [sid, signature] = value.split('.') as [string, string];
    const reads = store.count('get');
    for (const header of [
      undefined,
      '',
      'session=',
      `${name}=${sid}`,
      `${name}=${sid}.${'A'.repeat(signature.length)}`,
      `${name}=x.${signature}`,
      `${name}=${'%'.repeat(500)}`,
    ]) {
      await expect(site.middleware.load(header)).resolves.toBeUndefined();
    }
    expect(store.count('get')).toBe(reads);
    await site.middleware.revokeSession(sid);
    await expect(site.middleware.load(device.cookie)).resolves.toBeUndefined();
  });

  it('update(sid, fn) changes a session outside a request; requests racing it lose nothing', async () => {
    const site = await app();
    const device = await login(site, 'hal');
    const racing = Array.from({ length: 10 }, (_, i) => site.request(`/set?k=k${i}&v=${i}`, { cookie: device.cookie }));
    const updated = site.middleware.update(device.sid, (session) => {
      session.role = 'admin';
      delete session.k0;
    });
    await Promise.all([...racing, updated]);
    await expect(updated).resolves.toBe(true);
    const data = (await site.middleware.load(device.cookie))?.data ?? {};
    expect(data.role).toBe('admin');
    for (let i = 1; i < 10; i++) expect(data[`k${i}`]).toBe(String(i));
    expect(data.userId).toBe('hal');
  });

  it('describe(ctx) labels a session once, at login: bounded, never holding the sid', async () => {
    const site = await app({
      describe: (ctx) => (ctx.get('user-agent') === 'leak' ? `sid ${ctx.session.sid}` : ctx.get('user-agent')),
    });
    const laptop = await login(site, 'jo', 'Firefox on Linux');
    await login(site, 'jo', 'x'.repeat(500));
    await login(site, 'jo', 'leak');
    // Later requests from another agent do not relabel the session.
    await site.request('/set?k=a&v=1', { cookie: laptop.cookie, headers: { 'user-agent': 'curl' } });
    const labels = (await site.middleware.listUserSessions('jo')).map((entry) => entry.label);
    expect(labels).toHaveLength(3);
    expect(labels).toContain('Firefox on Linux');
    expect(labels).toContain('x'.repeat(200));
    expect(labels).toContain(undefined);
  });

  it('maxSessionsPerUser: a login past it signs out the session that signed in longest ago, however active', async () => {
    const site = await app({ maxSessionsPerUser: 2, refreshInterval: 0 });
    const first = await login(site, 'kit');
    const second = await login(site, 'kit');
    await new Promise((resolve) => setTimeout(resolve, 20));
    // The first is used again: it still signed in first, so it is the one that goes.
    expect((await site.request('/whoami', { cookie: first.cookie })).body).toBe('kit');
    const third = await login(site, 'kit');
    expect((await site.request('/whoami', { cookie: first.cookie })).body).toBe('anonymous');
    expect((await site.request('/whoami', { cookie: second.cookie })).body).toBe('kit');
    expect((await site.request('/whoami', { cookie: third.cookie })).body).toBe('kit');
    expect((await site.middleware.listUserSessions('kit')).map((s) => s.sid).sort()).toEqual(
      [second.sid, third.sid].sort(),
    );
  });

  it('maxSessionsPerUser under 20 concurrent logins of one user through 3 app instances: at most the maximum live', async (context) => {
    // Without an atomic compare-and-set, processes can overwrite each other's index update (documented): one process
    // then.
    const processes = store.atomic ? 3 : 1;
    const sites = await Promise.all(Array.from({ length: processes }, () => app({ maxSessionsPerUser: 3 })));
    const logins = await Promise.all(
      Array.from({ length: 20 }, (_, i) => login(sites[i % processes] as TestApp, 'lee', `device-${i}`)),
    );
    // Each login enforces the limit after its own record is written; the last one sees them all.
    const live = (
      await Promise.all(logins.map((l) => (sites[0] as TestApp).request('/whoami', { cookie: l.cookie })))
    ).filter((reply) => reply.body === 'lee');
    expect(live.length).toBeGreaterThanOrEqual(1);
    expect(live.length).toBeLessThanOrEqual(3);
    expect((await (sites[0] as TestApp).middleware.listUserSessions('lee')).length).toBe(live.length);
    if (!store.atomic) context.annotate(`${backend.name}: checked within one process only (no atomic compare-and-set)`);
  });

  it('update() of a session that is gone resolves false and creates nothing', async () => {
    const site = await app();
    const device = await login(site, 'ivy');
    await site.middleware.revokeSession(device.sid);
    await expect(
      site.middleware.update(device.sid, (session) => {
        session.x = 1;
      }),
    ).resolves.toBe(false);
    // Only the revocation's marker is there: no session, and update() wrote nothing over it.
    expect(recordStatus(await store.raw(prefix + device.sid), Date.now())).toBe('gone');
    await expect(site.middleware.update('not-a-sid', () => {})).resolves.toBe(false);
  });
});
