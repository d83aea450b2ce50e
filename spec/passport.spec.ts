// koa-passport and passport-local, as a login page uses them: express-style regenerate(cb) and save(cb),
// `userKey: 'passport.user'`, session fixation, logout, and listing and revoking a user's sessions.
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa from 'koa';
import passport from 'koa-passport';
import { Strategy as LocalStrategy } from 'passport-local';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { kvSession, type KvSessionMiddleware } from '../src/index.js';
import { cookiePair } from './support/app.js';
import { REDIS_URL, REQUIRE_SERVERS, reachable, uniquePrefix } from './support/servers.js';

interface User {
  readonly id: number;
  readonly name: string;
}
const USERS: readonly User[] = [
  { id: 7, name: 'ada' },
  { id: 8, name: 'bob' },
];

interface PassportApp {
  readonly sessions: KvSessionMiddleware;
  /** Sends a request with `cookie`; the reply's status, body, Location and the session cookie it set, if any. */
  send(method: string, path: string, cookie?: string, form?: Record<string, string>): Promise<Sent>;
  close(): Promise<void>;
}

interface Sent {
  readonly status: number;
  readonly body: string;
  readonly location: string | null;
  /** The `name=value` of the session cookie this reply set ('' when it cleared it), undefined when it set none. */
  readonly cookie: string | undefined;
}

/** A login page as koa-passport's README builds one, on kvSession(options). */
async function passportApp(store: string, keyPrefix: string): Promise<PassportApp> {
  const auth = new passport.KoaPassport();
  auth.use(
    new LocalStrategy((username, password, done) => {
      const user = USERS.find((candidate) => candidate.name === username);
      done(null, user !== undefined && password === `${username}-secret` ? user : false, {
        message: 'Bad credentials',
      });
    }),
  );
  auth.serializeUser((user, done) => done(null, (user as User).id));
  auth.deserializeUser((id, done) => done(null, USERS.find((user) => user.id === id) ?? false));

  const app = new Koa();
  app.keys = ['passport-spec-key-0123456789'];
  app.silent = true;
  const sessions = kvSession({ store, keyPrefix, userKey: 'passport.user' });
  const router = new Router();
  router.post(
    '/login',
    auth.authenticate('local', { successRedirect: '/me', failureRedirect: '/login', failureMessage: true }),
  );
  router.post('/login-keep', auth.authenticate('local', { successRedirect: '/me', keepSessionInfo: true }));
  router.get('/me', (ctx) => {
    if (!ctx.isAuthenticated()) ctx.throw(401, 'nobody');
    ctx.body = `me: ${(ctx.state.user as User).name}, visits ${ctx.session.visits ?? 0}`;
  });
  router.get('/visit', (ctx) => {
    ctx.session.visits = (ctx.session.visits ?? 0) + 1;
    ctx.body = `messages: ${JSON.stringify(ctx.session.messages ?? [])}`;
  });
  router.post('/logout', async (ctx) => {
    await ctx.logout();
    ctx.redirect('/');
  });
  router.post('/logout-keep', async (ctx) => {
    // koa-passport passes options on; its type declarations (@types/koa-passport) leave them out.
    await (ctx.logout as (options: { keepSessionInfo: boolean }) => Promise<void>)({ keepSessionInfo: true });
    ctx.redirect('/');
  });
  app.use(bodyParser());
  app.use(sessions);
  app.use(auth.initialize());
  app.use(auth.session());
  app.use(router.routes());

  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    sessions,
    async send(method, path, cookie, form) {
      const headers: Record<string, string> = cookie === undefined ? {} : { cookie };
      if (form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
      const body = form === undefined ? undefined : new URLSearchParams(form).toString();
      const response = await fetch(url + path, {
        method,
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(5000),
      });
      const set = response.headers.getSetCookie().find((line) => line.startsWith('session='));
      const pair = set === undefined ? undefined : cookiePair(set);
      return {
        status: response.status,
        body: await response.text(),
        location: response.headers.get('location'),
        cookie: pair === 'session=' ? '' : pair,
      };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await sessions.close();
    },
  };
}

const folder = mkdtempSync(join(tmpdir(), 'kvs-passport-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const STORES = [
  {
    name: 'the default store (node:sqlite)',
    url: () => `sqlite://${join(folder, 'sessions.sqlite')}`,
    unavailable: async () => undefined,
  },
  {
    name: 'Redis',
    url: () => REDIS_URL,
    unavailable: async () => ((await reachable(REDIS_URL)) ? undefined : `no Redis at ${REDIS_URL}`),
  },
];

describe.each(STORES)('koa-passport + passport-local on $name', (store) => {
  let app: PassportApp;
  let skip: string | undefined;
  beforeAll(async () => {
    skip = await store.unavailable();
    if (skip !== undefined && REQUIRE_SERVERS) throw new Error(skip);
    if (skip === undefined) app = await passportApp(store.url(), uniquePrefix('passport'));
  });
  afterEach(async () => {
    if (skip === undefined) await app.sessions.revokeUserSessions(7).catch(() => 0);
  });
  afterAll(async () => {
    if (skip === undefined) await app.close();
  });

  /** A browser that has visited once (a stored pre-login session), then logged in as ada: both cookies. */
  async function loggedIn(path = '/login'): Promise<{ before: string; after: string }> {
    const visit = await app.send('GET', '/visit');
    const before = visit.cookie as string;
    expect(before).toMatch(/^session=/);
    const login = await app.send('POST', path, before, { username: 'ada', password: 'ada-secret' });
    expect([login.status, login.location]).toEqual([302, '/me']);
    expect(login.cookie).toMatch(/^session=/);
    return { before, after: login.cookie as string };
  }

  it('logs in with a new sid: /me knows the user, the pre-login cookie signs nobody in (fixation)', async ({
    skip: skipTest,
  }) => {
    if (skip !== undefined) skipTest(skip);
    const { before, after } = await loggedIn();
    expect(after).not.toBe(before);
    expect((await app.send('GET', '/me', after)).body).toBe('me: ada, visits 0');
    expect((await app.send('GET', '/me', before)).status).toBe(401);
  });

  it('keepSessionInfo carries the pre-login data into the new session', async ({ skip: skipTest }) => {
    if (skip !== undefined) skipTest(skip);
    const { before, after } = await loggedIn('/login-keep');
    expect(after).not.toBe(before);
    expect((await app.send('GET', '/me', after)).body).toBe('me: ada, visits 1');
    expect((await app.send('GET', '/me', before)).status).toBe(401);
  });

  it('a failed login keeps the session and its failure message', async ({ skip: skipTest }) => {
    if (skip !== undefined) skipTest(skip);
    const failed = await app.send('POST', '/login', undefined, { username: 'ada', password: 'wrong' });
    expect([failed.status, failed.location]).toEqual([302, '/login']);
    expect((await app.send('GET', '/visit', failed.cookie)).body).toBe('messages: ["Bad credentials"]');
  });

  it('logout ends the signed-in session, and its cookie stays signed out', async ({ skip: skipTest }) => {
    if (skip !== undefined) skipTest(skip);
    const { after } = await loggedIn();
    const out = await app.send('POST', '/logout', after);
    expect(out.status).toBe(302);
    expect(out.cookie).toBe('');
    expect((await app.send('GET', '/me', after)).status).toBe(401);
    expect(await app.sessions.listUserSessions(7)).toEqual([]);
  });

  it('logout with keepSessionInfo keeps the other data under a new sid, signed out', async ({ skip: skipTest }) => {
    if (skip !== undefined) skipTest(skip);
    const { after } = await loggedIn('/login-keep');
    const out = await app.send('POST', '/logout-keep', after);
    expect(out.cookie).toMatch(/^session=./);
    expect(out.cookie).not.toBe(after);
    expect((await app.send('GET', '/me', after)).status).toBe(401);
    expect((await app.send('GET', '/me', out.cookie)).status).toBe(401);
    expect((await app.send('GET', '/visit', out.cookie)).body).toBe('messages: []');
    expect((await app.sessions.load(out.cookie))?.data).toEqual({ visits: 2, passport: {} });
    expect(await app.sessions.listUserSessions(7)).toEqual([]);
  });

  it('userKey "passport.user" lists and revokes the sessions of a user', async ({ skip: skipTest }) => {
    if (skip !== undefined) skipTest(skip);
    const first = await loggedIn();
    const second = await loggedIn();
    const bob = await app.send('POST', '/login', undefined, { username: 'bob', password: 'bob-secret' });
    const listed = await app.sessions.listUserSessions(7);
    expect(listed.map((entry) => `session=${entry.sid}`).sort()).toEqual(
      [first.after, second.after].map((pair) => pair.split('.')[0]).sort(),
    );
    expect(listed.every((entry) => (entry.data.passport as { user: number }).user === 7)).toBe(true);

    expect(await app.sessions.revokeUserSessions(7, { except: listed[0]?.sid })).toBe(1);
    expect((await app.sessions.listUserSessions(7)).length).toBe(1);
    expect(await app.sessions.revokeUserSessions(7)).toBe(1);
    for (const cookie of [first.after, second.after]) expect((await app.send('GET', '/me', cookie)).status).toBe(401);
    expect((await app.send('GET', '/me', bob.cookie)).body).toBe('me: bob, visits 0');
    await app.sessions.revokeUserSessions(8);
  });
});
