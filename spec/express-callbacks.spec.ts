// express-session's callback forms of ctx.session, which passport and other express-style code call:
// regenerate(cb) starts a new, empty session; save(cb) and destroy(cb) call back; userKey as a dotted path.
import type { Context } from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/backends/memory.js';
import { kvSession, type KvSessionOptions } from '../src/index.js';
import { cookiePair, gate, sidOf, startApp, type Handler, type TestApp } from './support/app.js';
import { CountingAdapter } from './support/counting.js';
import { uniquePrefix } from './support/servers.js';

const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function setup(handler: Handler, options: KvSessionOptions = {}) {
  const store = new CountingAdapter(new MemoryBackend());
  const app = await startApp({ store: store, keyPrefix: uniquePrefix('callbacks'), ...options }, handler);
  apps.push(app);
  return { app, store };
}

/** `method(...)` with a callback: resolves with what the callback was called with, once it was. */
function callback(call: (done: (error: unknown) => void) => unknown): Promise<unknown> {
  return new Promise((resolve) => {
    call((error) => resolve(error));
  });
}

describe('regenerate(callback): a new, empty session, as express-session makes', () => {
  it('calls back with null; ctx.session is a new empty object, the old one keeps the old data', async () => {
    const seen: unknown[] = [];
    const { app } = await setup(async (ctx: Context) => {
      if (ctx.path === '/start') {
        ctx.session.cart = ['a'];
        ctx.session.permanent = false;
        return 'started';
      }
      const before = ctx.session;
      seen.push(await callback((done) => ctx.session.regenerate(done)));
      seen.push(ctx.session === before, { ...before }, { ...ctx.session }, ctx.session.isNew, ctx.session.permanent);
      // Writes to the old object are not this session's.
      before.stray = 1;
      ctx.session.fresh = true;
      return 'renewed';
    });
    const start = await app.request('/start');
    const old = cookiePair(start.setCookies[0]);
    const renewed = await app.request('/renew', { cookie: old });
    expect(seen).toEqual([null, false, { cart: ['a'] }, {}, true, true]);
    expect(sidOf(renewed.setCookies[0])).not.toBe(sidOf(start.setCookies[0]));
    const loaded = await app.middleware.load(cookiePair(renewed.setCookies[0]));
    expect(loaded?.data).toEqual({ fresh: true });
    expect(loaded?.permanent).toBe(true);
    // The old sid's record is gone: its cookie signs nobody in.
    expect(await app.middleware.load(old)).toBeUndefined();
  });

  it('followed by no data is a logout: the old record is deleted and the cookie cleared', async () => {
    const { app } = await setup(async (ctx: Context) => {
      if (ctx.path === '/start') ctx.session.user = 'ada';
      else await callback((done) => ctx.session.regenerate(done));
    });
    const old = cookiePair((await app.request('/start')).setCookies[0]);
    const out = await app.request('/out', { cookie: old });
    expect(out.setCookies).toHaveLength(1);
    expect(cookiePair(out.setCookies[0])).toBe('session=');
    expect(await app.middleware.load(old)).toBeUndefined();
  });

  it('emits session:regenerated, and a request still holding the old cookie is told nothing (no deletion cookie)', async () => {
    const events: string[] = [];
    const { app } = await setup(async (ctx: Context) => {
      if (ctx.path === '/start') ctx.session.a = 1;
      else if (ctx.path === '/renew') {
        await ctx.session.regenerate(() => undefined);
        ctx.session.b = 2;
      } else return JSON.stringify({ ...ctx.session });
    });
    for (const name of ['destroyed', 'created', 'regenerated']) app.app.on(`session:${name}`, () => events.push(name));
    const old = cookiePair((await app.request('/start')).setCookies[0]);
    events.length = 0;
    await app.request('/renew', { cookie: old });
    expect(events).toEqual(['regenerated']);
    // A slow request of the same browser with the pre-login cookie must not clear the new one.
    const late = await app.request('/read', { cookie: old });
    expect([late.body, late.setCookies]).toEqual(['{}', []]);
  });

  it('a revocation that comes first wins: the new session is not stored, even with the old data copied back', async () => {
    const held = gate();
    const reached = gate();
    const { app } = await setup(
      async (ctx: Context) => {
        if (ctx.path === '/login') {
          ctx.session.user = 'ada';
          return 'in';
        }
        const before = ctx.session;
        reached.open();
        await held.wait;
        await callback((done) => ctx.session.regenerate(done));
        // passport's keepSessionInfo: the old data copied over.
        Object.assign(ctx.session, { ...before });
        return 'renewed';
      },
      { userKey: 'user' },
    );
    const cookie = cookiePair((await app.request('/login')).setCookies[0]);
    const renewing = app.request('/renew', { cookie });
    await reached.wait;
    expect(await app.middleware.revokeUserSessions('ada')).toBe(1);
    held.open();
    const renewed = await renewing;
    expect(renewed.setCookies.map((line) => cookiePair(line))).toEqual(['session=']);
    expect(await app.middleware.listUserSessions('ada')).toEqual([]);
  });

  it('the promise form is unchanged: same data under a new sid', async () => {
    const { app } = await setup(async (ctx: Context) => {
      if (ctx.path === '/start') ctx.session.a = 1;
      else await ctx.session.regenerate();
    });
    const old = cookiePair((await app.request('/start')).setCookies[0]);
    const moved = await app.request('/renew', { cookie: old });
    expect((await app.middleware.load(cookiePair(moved.setCookies[0])))?.data).toEqual({ a: 1 });
  });
});

describe('save(callback) and destroy(callback)', () => {
  it('save() writes an unchanged session at commit (its expiry moves) and calls back with null', async () => {
    const got: unknown[] = [];
    const { app, store } = await setup(async (ctx: Context) => {
      if (ctx.path === '/start') ctx.session.a = 1;
      else if (ctx.path === '/save') got.push(await callback((done) => ctx.session.save(done)));
    });
    const cookie = cookiePair((await app.request('/start')).setCookies[0]);
    store.reset();
    await app.request('/read', { cookie });
    expect(store.count('set') + store.count('cas')).toBe(0);
    await app.request('/save', { cookie });
    expect(got).toEqual([null]);
    expect(store.count('set') + store.count('cas')).toBe(1);
  });

  it('destroy(callback) ends the session and calls back with null', async () => {
    const got: unknown[] = [];
    const { app } = await setup(async (ctx: Context) => {
      if (ctx.path === '/start') ctx.session.a = 1;
      else got.push(await callback((done) => ctx.session.destroy(done)));
    });
    const cookie = cookiePair((await app.request('/start')).setCookies[0]);
    const out = await app.request('/out', { cookie });
    expect(got).toEqual([null]);
    expect(cookiePair(out.setCookies[0])).toBe('session=');
    expect(await app.middleware.load(cookie)).toBeUndefined();
  });

  it('a callback that throws fails the request (500), never the process; a bad callback is refused before anything is done', async () => {
    const errors: Error[] = [];
    const { app } = await setup(async (ctx: Context) => {
      if (ctx.path === '/start') ctx.session.a = 1;
      else if (ctx.path === '/throw')
        await ctx.session.save(() => {
          throw new Error('a bug in the callback');
        });
      else {
        try {
          await ctx.session.destroy(42 as never);
        } catch (error) {
          errors.push(error as Error);
        }
        return JSON.stringify({ ...ctx.session });
      }
    });
    app.app.on('error', (error: Error) => errors.push(error));
    const cookie = cookiePair((await app.request('/start')).setCookies[0]);
    expect((await app.request('/throw', { cookie })).status).toBe(500);
    expect(errors.map((error) => error.message)).toEqual(['a bug in the callback']);
    // destroy(42) threw before destroying: the session is intact.
    expect((await app.request('/bad', { cookie })).body).toBe('{"a":1}');
    expect(errors[1]?.message).toBe('ctx.session: the callback must be a function, got number');
  });

  it('a callback that is not a function is a TypeError naming it; save is a control member', async () => {
    const errors: string[] = [];
    const { app } = await setup(async (ctx: Context) => {
      for (const call of [
        () => ctx.session.save(42 as never),
        () => ctx.session.destroy('x' as never),
        () => (ctx.session.save = 1 as never),
      ]) {
        try {
          await call();
        } catch (error) {
          errors.push((error as Error).message);
        }
      }
    });
    await app.request('/');
    expect(errors).toEqual([
      'ctx.session: the callback must be a function, got number',
      'ctx.session: the callback must be a function, got string',
      'ctx.session.save is a control member of koa-kv-session and cannot be used as a session data key; choose another name',
    ]);
  });
});

describe('userKey as a dotted path', () => {
  it('indexes the user a nested field holds, and lists and revokes by it', async () => {
    const { app } = await setup(
      async (ctx: Context) => {
        await callback((done) => ctx.session.regenerate(done));
        ctx.session.passport = { user: Number(ctx.query.id) };
      },
      { userKey: 'passport.user' },
    );
    const one = await app.request('/?id=7');
    await app.request('/?id=7');
    await app.request('/?id=8');
    const listed = await app.middleware.listUserSessions(7);
    expect(listed.map((entry) => entry.sid).sort()).toContain(sidOf(one.setCookies[0]));
    expect(listed).toHaveLength(2);
    expect(await app.middleware.revokeUserSessions('7')).toBe(2);
    expect(await app.middleware.listUserSessions(8)).toHaveLength(1);
  });

  it('a nested change that makes the user id unusable fails the request (the session never leaves the index silently)', async () => {
    const { app } = await setup(
      (ctx: Context) => {
        if (ctx.path === '/login') ctx.session.passport = { user: 7 };
        else (ctx.session.passport as { user: unknown }).user = { id: 7 };
      },
      { userKey: 'passport.user' },
    );
    const cookie = cookiePair((await app.request('/login')).setCookies[0]);
    expect((await app.request('/nested', { cookie })).status).toBe(500);
    expect(await app.middleware.listUserSessions(7)).toHaveLength(1);
  });

  it('an object at userKey fails the request naming the path to use', async () => {
    const { app } = await setup(
      (ctx: Context) => {
        ctx.session.passport = { user: 7 };
      },
      { userKey: 'passport' },
    );
    const errors: Error[] = [];
    app.app.on('error', (error: Error) => errors.push(error));
    expect((await app.request('/')).status).toBe(500);
    expect(errors[0]?.message).toContain("name its path, e.g. userKey: 'passport.user'");
  });

  it.each([
    ['passport.', 'must be a field name or a dotted path such as "passport.user", got "passport."'],
    ['.user', 'must be a field name or a dotted path such as "passport.user", got ".user"'],
    ['sid.user', '"sid" is a control member of ctx.session, not a data field; name the field that holds the user id'],
  ])('userKey %j is refused: %s', (userKey, message) => {
    expect(() => kvSession({ store: new Map(), userKey })).toThrow(message);
  });
});
