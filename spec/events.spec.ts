// Audit events on the Koa app (issue 14): created, regenerated, destroyed, revoked and expired, each with the session's
// safe id and the user where known, never a sid; on every backend.
import type { Context } from 'koa';
import { beforeEach, describe, expect, it } from 'vitest';
import type { KvSessionOptions, SessionEvent } from '../src/index.js';
import { sidFingerprint } from '../src/sid.js';
import { cookiePair, startApp, type TestApp, withBadSignature } from './support/app.js';
import type { CountingAdapter } from './support/counting.js';
import { BACKENDS, onBackend } from './support/servers.js';

const NAMES = [
  'session:created',
  'session:regenerated',
  'session:destroyed',
  'session:revoked',
  'session:expired',
] as const;

interface Seen {
  readonly name: string;
  readonly event: SessionEvent;
}

/** Routes: /visit (sets a key), /login?user= (regenerates), /logout, /whoami. */
async function route(ctx: Context): Promise<unknown> {
  switch (ctx.path) {
    case '/visit':
      ctx.session.visits = Number(ctx.session.visits ?? 0) + 1;
      return ctx.session.sid;
    case '/login':
      await ctx.session.regenerate();
      ctx.session.userId = ctx.query.user;
      return ctx.session.sid;
    case '/logout':
      await ctx.session.destroy();
      return 'bye';
    default:
      return ctx.session.userId ?? 'anonymous';
  }
}

describe.each(BACKENDS)('audit events on $name', (backend) => {
  const env = onBackend(backend, 'events');
  let store: CountingAdapter;
  let prefix: string;
  let seen: Seen[];
  beforeEach(() => {
    store = env.store;
    prefix = env.prefix;
    seen = [];
  });

  async function app(options: KvSessionOptions = {}): Promise<TestApp> {
    const started = await startApp({ store: store, keyPrefix: prefix, userKey: 'userId', ...options }, route, (koa) => {
      for (const name of NAMES) koa.on(name, (event: SessionEvent) => seen.push({ name, event }));
    });
    env.apps.push(started);
    return started;
  }

  /** The events so far without their ctx, for comparing (and for checking that no sid is in them). */
  const plain = () =>
    seen.map(({ name, event }) => ({
      name,
      id: event.id,
      user: event.user,
      previousId: event.previousId,
      hasCtx: event.ctx !== undefined,
    }));

  it('a visit creates, a login regenerates, a logout destroys: each once, with the ctx, the safe id and the user', async () => {
    const site = await app();
    const first = await site.request('/visit');
    const cookie = cookiePair(first.setCookies[0]);
    const login = await site.request('/login?user=uma', { cookie });
    const loggedIn = cookiePair(login.setCookies[0]);
    await site.request('/logout', { cookie: loggedIn });
    expect(plain()).toEqual([
      { name: 'session:created', id: sidFingerprint(first.body), user: undefined, previousId: undefined, hasCtx: true },
      {
        name: 'session:regenerated',
        id: sidFingerprint(login.body),
        user: 'uma',
        previousId: sidFingerprint(first.body),
        hasCtx: true,
      },
      { name: 'session:destroyed', id: sidFingerprint(login.body), user: 'uma', previousId: undefined, hasCtx: true },
    ]);
    expect(seen[1]?.event.ctx?.path).toBe('/login');
  });

  it('revokeSession, revokeUserSessions and maxSessionsPerUser emit session:revoked with the user, outside any request', async () => {
    const site = await app({ maxSessionsPerUser: 2 });
    const sids: string[] = [];
    for (let i = 0; i < 3; i++) sids.push((await site.request('/login?user=vic')).body);
    const evicted = seen.filter((s) => s.name === 'session:revoked').map((s) => s.event.id);
    expect(evicted).toEqual([sidFingerprint(sids[0] as string)]);
    seen = [];
    await site.middleware.revokeSession(sids[1] as string);
    await site.middleware.revokeUserSessions('vic');
    expect(plain().filter((s) => s.name === 'session:revoked')).toEqual([
      {
        name: 'session:revoked',
        id: sidFingerprint(sids[1] as string),
        user: 'vic',
        previousId: undefined,
        hasCtx: false,
      },
      {
        name: 'session:revoked',
        id: sidFingerprint(sids[2] as string),
        user: 'vic',
        previousId: undefined,
        hasCtx: false,
      },
    ]);
  });

  it('a cookie naming a session that is gone emits session:expired once; a forged cookie emits nothing', async () => {
    const site = await app();
    const visit = await site.request('/visit');
    const cookie = cookiePair(visit.setCookies[0]);
    await site.middleware.revokeSession(visit.body);
    seen = [];
    await site.request('/whoami', { cookie });
    expect(plain()).toEqual([
      { name: 'session:expired', id: sidFingerprint(visit.body), user: undefined, previousId: undefined, hasCtx: true },
    ]);
    seen = [];
    const [name, value] = cookie.split('=') as [string, string];
    await site.request('/whoami', { cookie: `${name}=${withBadSignature(value)}` });
    expect(seen).toEqual([]);
  });

  it('a listener that throws is reported to onError; the request still succeeds', async () => {
    const reported: Error[] = [];
    const site = await app({ onError: (error) => reported.push(error) });
    site.app.on('session:created', () => {
      throw new Error('audit log is down');
    });
    const visit = await site.request('/visit');
    expect(visit.status).toBe(200);
    expect(visit.setCookies).toHaveLength(1);
    expect(reported.map((error) => error.message)).toContain('audit log is down');
  });

  it('no event ever carries a sid', async () => {
    const site = await app();
    const visit = await site.request('/visit');
    const login = await site.request('/login?user=wes', { cookie: cookiePair(visit.setCookies[0]) });
    await site.middleware.revokeSession(login.body);
    await site.request('/whoami', { cookie: cookiePair(login.setCookies[0]) });
    expect(seen.length).toBeGreaterThanOrEqual(4);
    const text = JSON.stringify(seen.map(({ name, event }) => ({ name, ...event, ctx: undefined })));
    for (const sid of [visit.body, login.body]) expect(text).not.toContain(sid);
  });
});
