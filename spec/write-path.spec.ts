// One write path beyond the request: revocations that a racing regenerate() cannot outrun, logins whose cost does not
// grow with the user's sessions, one audit event per session ended; on every backend.
import type { Context } from 'koa';
import { beforeEach, describe, expect, it } from 'vitest';
import { frameRecord } from '../src/record.js';
import type { KvSessionOptions, SessionEvent } from '../src/index.js';
import { sidFingerprint } from '../src/sid.js';
import { userIndexName } from '../src/names.js';
import { MAX_USER_SESSIONS } from '../src/user-entries.js';
import { cookiePair, startApp, type TestApp } from './support/app.js';
import type { CountingAdapter } from './support/counting.js';
import { BACKENDS, onBackend } from './support/servers.js';

/**
 * Routes: /login?user= (regenerates, sets the user), /rotate (regenerates, same user), /whoami, /become?user= (changes
 * the user field).
 */
async function route(ctx: Context): Promise<unknown> {
  switch (ctx.path) {
    case '/login':
      await ctx.session.regenerate();
      ctx.session.userId = ctx.query.user;
      return ctx.session.sid;
    case '/rotate':
      await ctx.session.regenerate();
      return ctx.session.sid;
    case '/whoami':
      return ctx.session.userId ?? 'anonymous';
    default:
      return 'not found';
  }
}

describe.each(BACKENDS)('the write path beyond a request on $name', (backend) => {
  const env = onBackend(backend, 'write-path');
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

  async function login(site: TestApp, user: string, cookie?: string): Promise<{ sid: string; cookie: string }> {
    const reply = await site.request(`/login?user=${user}`, cookie === undefined ? {} : { cookie });
    expect(reply.status).toBe(200);
    return { sid: reply.body, cookie: cookiePair(reply.setCookies[0]) };
  }

  async function whoami(site: TestApp, cookie: string): Promise<string> {
    return (await site.request('/whoami', { cookie })).body;
  }

  /** The session is rotated by another request between the revocation's read of `key` and its write. */
  async function rotatedDuring(
    site: TestApp,
    key: string,
    cookie: string,
    revoke: () => Promise<unknown>,
  ): Promise<{ result: unknown; cookie: string }> {
    const held = store.hold('get', key);
    const revoking = revoke();
    await held.reached;
    const rotated = await site.request('/rotate', { cookie });
    expect(rotated.status).toBe(200);
    held.release();
    return { result: await revoking, cookie: cookiePair(rotated.setCookies[0]) };
  }

  it('revokeSession(sid) while a regenerate() moves that session: true, and signed out under the new sid too', async () => {
    const site = await app();
    const device = await login(site, 'rae');
    const { result, cookie } = await rotatedDuring(site, prefix + device.sid, device.cookie, () =>
      site.middleware.revokeSession(device.sid),
    );
    expect(result).toBe(true);
    expect(await whoami(site, cookie)).toBe('anonymous');
    expect(await whoami(site, device.cookie)).toBe('anonymous');
    expect(await site.middleware.listUserSessions('rae')).toEqual([]);
  });

  it('revokeSession({ user, id }) while a regenerate() moves that session: true, and signed out under the new sid too', async () => {
    const site = await app();
    const device = await login(site, 'ray');
    const id = sidFingerprint(device.sid);
    const { result, cookie } = await rotatedDuring(site, prefix + device.sid, device.cookie, () =>
      site.middleware.revokeSession({ user: 'ray', id }),
    );
    expect(result).toBe(true);
    expect(await whoami(site, cookie)).toBe('anonymous');
    expect(await site.middleware.listUserSessions('ray')).toEqual([]);
  });

  it('revokeUserSessions() while a regenerate() moves a session of the user: it is counted and signed out, in one call', async () => {
    const site = await app();
    const device = await login(site, 'rex');
    const other = await login(site, 'rex');
    const { result, cookie } = await rotatedDuring(site, prefix + userIndexName('rex'), device.cookie, () =>
      site.middleware.revokeUserSessions('rex'),
    );
    expect(result).toBe(2);
    expect(await whoami(site, cookie)).toBe('anonymous');
    expect(await whoami(site, other.cookie)).toBe('anonymous');
    expect(await site.middleware.listUserSessions('rex')).toEqual([]);
  });

  it('a session moved by regenerate() before the revocation: revoking its old sid follows it', async () => {
    const site = await app();
    const device = await login(site, 'rio');
    const rotated = await site.request('/rotate', { cookie: device.cookie });
    await expect(site.middleware.revokeSession(device.sid)).resolves.toBe(true);
    expect(await whoami(site, cookiePair(rotated.setCookies[0]))).toBe('anonymous');
    await expect(site.middleware.revokeSession(device.sid)).resolves.toBe(false);
  });

  it('concurrent revocations of one session: one of them ends it and one session:revoked is emitted', async () => {
    const site = await app();
    const events: SessionEvent[] = [];
    site.app.on('session:revoked', (event: SessionEvent) => events.push(event));
    const device = await login(site, 'roy');
    const results = await Promise.all([
      site.middleware.revokeSession(device.sid),
      site.middleware.revokeSession(device.sid),
      site.middleware.revokeSession({ user: 'roy', id: sidFingerprint(device.sid) }),
      site.middleware.revokeUserSessions('roy'),
    ]);
    const ended = results.filter((result) => result === true || result === 1);
    expect(ended).toHaveLength(1);
    expect(events.map((event) => event.id)).toEqual([sidFingerprint(device.sid)]);
  });

  it('maxSessionsPerUser under 20 concurrent logins through 3 instances: exactly the maximum stay, one session:revoked per session ended', async (context) => {
    // Without an atomic compare-and-set, processes can overwrite each other's index update (documented): one process
    // then.
    const processes = store.atomic ? 3 : 1;
    const sites = await Promise.all(Array.from({ length: processes }, () => app({ maxSessionsPerUser: 3 })));
    const events: SessionEvent[] = [];
    for (const site of sites) site.app.on('session:revoked', (event: SessionEvent) => events.push(event));
    const logins = await Promise.all(
      Array.from({ length: 20 }, (_, i) => login(sites[i % processes] as TestApp, 'lin')),
    );
    const first = sites[0] as TestApp;
    const signedIn: string[] = [];
    for (const device of logins) if ((await whoami(first, device.cookie)) === 'lin') signedIn.push(device.sid);
    expect(signedIn).toHaveLength(3);
    const ids = events.map((event) => event.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual(
      logins
        .filter((device) => !signedIn.includes(device.sid))
        .map((device) => sidFingerprint(device.sid))
        .sort(),
    );
    if (!store.atomic) context.annotate(`${backend.name}: checked within one process only (no atomic compare-and-set)`);
  });

  it('a login costs the same number of store calls whatever the size of the user index, and the index stays bounded', async () => {
    const site = await app();
    const indexKey = prefix + userIndexName('max');
    /** An index as a long-lived account (or an older version) leaves it: `n` entries of sessions that are gone. */
    const seed = async (n: number): Promise<void> => {
      const now = Date.now();
      const sessions: Record<string, [number, number]> = {};
      for (let i = 0; i < n; i++)
        sessions[`gone${String(i).padStart(6, '0')}`] = [now + 3_600_000, now - 3_600_000 - i];
      await store.put(
        indexKey,
        frameRecord(JSON.stringify({ user: 'max', sessions }), 'json', now + 3_600_000, false),
        3_600_000,
      );
    };
    const callsOfOneLogin = async (): Promise<number> => {
      store.reset();
      await login(site, 'max');
      return store.calls.length;
    };
    const entries = async (): Promise<number> =>
      Object.keys(
        JSON.parse(
          String(await store.raw(indexKey))
            .split(':')
            .slice(6)
            .join(':'),
        ).sessions,
      ).length;
    await seed(50);
    const small = await callsOfOneLogin();
    await seed(400);
    expect(await callsOfOneLogin()).toBe(small);
    // Past the cap: the login signs out a bounded batch of the oldest, whatever the index holds.
    await seed(MAX_USER_SESSIONS + 100);
    const over = await callsOfOneLogin();
    await seed(MAX_USER_SESSIONS * 4);
    expect(await callsOfOneLogin()).toBe(over);
    expect(over).toBeLessThan(200);
    // Logins bring an oversized index down to the cap, and keep it there.
    await seed(MAX_USER_SESSIONS + 100);
    for (let i = 0; i < 3; i++) await login(site, 'max');
    expect(await entries()).toBe(MAX_USER_SESSIONS);
    await login(site, 'max');
    expect(await entries()).toBe(MAX_USER_SESSIONS);
  });

  it('update() that moves a session to another user while it is revoked leaves the dead sid in no index', async () => {
    const site = await app();
    const device = await login(site, 'uma');
    // The revocation lands between update()'s read and its write.
    const held = store.hold('get', prefix + device.sid);
    const updating = site.middleware.update(device.sid, (session) => {
      session.userId = 'vera';
    });
    await held.reached;
    await expect(site.middleware.revokeSession(device.sid)).resolves.toBe(true);
    held.release();
    await expect(updating).resolves.toBe(false);
    const index = await store.raw(prefix + userIndexName('vera'));
    expect(String(index ?? '')).not.toContain(device.sid);
    expect(await site.middleware.listUserSessions('vera')).toEqual([]);
  });
});
