// What a koa-session user expects of ctx.session: a thrown 4xx keeps what the handler saved, a dead cookie is cleared,
// a mocked ctx.session is left alone, cookie.overwrite; real Koa apps on the memory store and on Redis.
import { setTimeout as sleep } from 'node:timers/promises';
import type Koa from 'koa';
import type { Context } from 'koa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/backends/memory.js';
import { type KvSessionOptions, SessionOptionError, kvSession } from '../src/index.js';
import { attributesOf, cookiePair, type Handler, sidOf, startApp, type TestApp } from './support/app.js';
import type { CountingAdapter } from './support/counting.js';
import { BACKENDS, onBackend } from './support/servers.js';

/** A store whose writes can be made to fail: the error path of a commit during a thrown 4xx. */
class FailingWrites extends MemoryBackend {
  failSet = false;
  override async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    if (this.failSet) throw new Error('READONLY replica');
    return super.set(key, value, ttl);
  }
}

/**
 * Routes of a login form: /fail counts a failed attempt, then throws 401; /flash sets a flash message, then 400; /boom
 * 500; /plain throws an Error without a status.
 */
const route: Handler = async (ctx: Context) => {
  switch (ctx.path) {
    case '/fail':
      ctx.session.failures = Number(ctx.session.failures ?? 0) + 1;
      return ctx.throw(401, 'wrong password');
    case '/flash':
      ctx.session.flash = 'please fill in every field';
      return ctx.throw(400);
    case '/boom':
      ctx.session.failures = 99;
      return ctx.throw(500);
    case '/plain':
      ctx.session.failures = 99;
      throw new Error('a bug');
    case '/logout':
      ctx.session = null;
      return 'bye';
    case '/rotate':
      await ctx.session.regenerate();
      return 'rotated';
    default:
      return String(ctx.session.failures ?? 0);
  }
};

describe.each(BACKENDS.filter((backend) => backend.name === 'memory' || backend.name === 'redis'))(
  'koa-session habits on $name',
  (backend) => {
    const env = onBackend(backend, 'habits');
    let store: CountingAdapter;
    let prefix: string;
    beforeEach(() => {
      store = env.store;
      prefix = env.prefix;
    });

    async function app(
      options: KvSessionOptions = {},
      handler: Handler = route,
      configure?: (app: Koa) => void,
    ): Promise<TestApp> {
      const started = await startApp({ store: store, keyPrefix: prefix, ...options }, handler, configure);
      env.apps.push(started);
      return started;
    }

    describe('a thrown HTTP error below 500 is a response: the session is committed', () => {
      it('ctx.throw(401) rendered by Koa itself: 401, the counter saved, its Set-Cookie and Vary on the response', async () => {
        const site = await app();
        const first = await site.request('/fail');
        expect(first.status).toBe(401);
        expect(first.setCookies).toHaveLength(1);
        expect(first.vary).toMatch(/Cookie/);
        const cookie = cookiePair(first.setCookies[0]);
        expect((await site.request('/fail', { cookie })).status).toBe(401);
        expect((await site.request('/', { cookie })).body).toBe('2');
      });

      it('ctx.throw(400) rendered by an upstream error handler: the flash message is saved and the cookie reaches the page', async () => {
        const site = await app({}, route, (koa) => {
          koa.use(async (ctx, next) => {
            try {
              await next();
            } catch (error) {
              ctx.status = (error as { status: number }).status;
              ctx.body = `error page: ${ctx.session.flash}`;
            }
          });
        });
        const reply = await site.request('/flash');
        expect(reply.status).toBe(400);
        expect(reply.body).toBe('error page: please fill in every field');
        expect(reply.setCookies).toHaveLength(1);
        const data = await site.middleware.load(cookiePair(reply.setCookies[0]));
        expect(data?.data.flash).toBe('please fill in every field');
      });

      it.each(['/boom', '/plain'])(
        '%s (500, or an error without a status): nothing is committed, the stored session keeps its value',
        async (path) => {
          const site = await app();
          const cookie = cookiePair((await site.request('/fail')).setCookies[0]);
          const reply = await site.request(path, { cookie });
          expect(reply.status).toBe(500);
          expect(reply.setCookies).toEqual([]);
          expect((await site.request('/', { cookie })).body).toBe('1');
        },
      );
    });

    it('a commit that fails during a thrown 401 never masks it: the client gets the 401, onError the store failure', async () => {
      const failing = new FailingWrites();
      const errors: Error[] = [];
      const started = await startApp(
        { store: failing, keyPrefix: prefix, onError: (error) => errors.push(error) },
        route,
      );
      env.apps.push(started);
      failing.failSet = true;
      const reply = await started.request('/fail');
      expect(reply.status).toBe(401);
      expect(reply.body).toBe('wrong password');
      expect(reply.setCookies).toEqual([]);
      expect(errors.map((error) => (error as { code?: string }).code)).toContain('SESSION_STORE_UNAVAILABLE');
    });

    describe('a dead cookie is cleared once', () => {
      it('a cookie naming a revoked session gets a deletion cookie with the same attributes; the next request carries none', async () => {
        const site = await app({ cookie: { path: '/', domain: 'example.test' } });
        const first = await site.request('/fail');
        const cookie = cookiePair(first.setCookies[0]);
        await site.middleware.revokeSession(sidOf(first.setCookies[0]));
        const reply = await site.request('/', { cookie });
        expect(reply.body).toBe('0');
        expect(reply.setCookies).toHaveLength(1);
        const cleared = attributesOf(reply.setCookies[0] as string);
        expect(cookiePair(reply.setCookies[0])).toMatch(/^session=$/);
        expect(Date.parse(cleared.get('expires') as string)).toBeLessThan(Date.now());
        expect(cleared.get('domain')).toBe('example.test');
        expect(cleared.get('path')).toBe('/');
      });

      it('an expired session: deletion cookie; ctx.session = null with it: deletion cookie too', async () => {
        const site = await app({ lifetime: '1s' });
        const cookie = cookiePair((await site.request('/fail')).setCookies[0]);
        await sleep(1200);
        const reply = await site.request('/', { cookie });
        expect(reply.setCookies).toHaveLength(1);
        expect(cookiePair(reply.setCookies[0])).toBe('session=');
        const logout = await site.request('/logout', { cookie });
        expect(logout.setCookies).toHaveLength(1);
        expect(cookiePair(logout.setCookies[0])).toBe('session=');
      });

      it('a cookie whose session a regenerate() moved is not cleared: the browser may hold the new one already', async () => {
        const site = await app();
        const cookie = cookiePair((await site.request('/fail')).setCookies[0]);
        const moved = await site.request('/rotate', { cookie });
        expect(moved.setCookies).toHaveLength(1);
        const stale = await site.request('/', { cookie });
        expect(stale.setCookies).toEqual([]);
      });

      it('a new session written by the same request replaces the dead cookie: one Set-Cookie, the new sid', async () => {
        const site = await app();
        const first = await site.request('/fail');
        await site.middleware.revokeSession(sidOf(first.setCookies[0]));
        const reply = await site.request('/fail', { cookie: cookiePair(first.setCookies[0]) });
        expect(reply.setCookies).toHaveLength(1);
        expect(sidOf(reply.setCookies[0])).not.toBe(sidOf(first.setCookies[0]));
      });
    });

    it('after ctx.session = null, ctx.session is a new empty session (not null): data set then starts a new one', async () => {
      const site = await app({}, async (ctx) => {
        ctx.session.user = 'ada';
        ctx.session = null;
        const after = {
          empty: Object.keys(ctx.session).length === 0,
          isNew: ctx.session.isNew,
          isNull: ctx.session === null,
        };
        return JSON.stringify(after);
      });
      expect(JSON.parse((await site.request('/')).body)).toEqual({ empty: true, isNew: true, isNull: false });
    });
  },
);

describe('a ctx.session the application defined itself (a test mock) is left alone', () => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((started) => started.close()));
  });

  it('a value defined on app.context before the first request is what handlers see; once it is removed, the real session is back', async () => {
    let app: Koa | undefined;
    const started = await startApp(
      { store: 'memory://' },
      (ctx) => JSON.stringify(ctx.session),
      (koa) => {
        app = koa;
        // What mm(app.context, 'session', {...}) and sinon's stubs do.
        Object.defineProperty(koa.context, 'session', {
          value: { user: 'mocked' },
          writable: true,
          configurable: true,
        });
      },
    );
    apps.push(started);
    expect(JSON.parse((await started.request('/')).body)).toEqual({ user: 'mocked' });
    expect(JSON.parse((await started.request('/')).body)).toEqual({ user: 'mocked' });
    Reflect.deleteProperty((app as Koa).context, 'session');
    expect(JSON.parse((await started.request('/')).body)).toEqual({});
  });
});

describe('cookie.overwrite', () => {
  const apps: TestApp[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((started) => started.close()));
  });

  const handler: Handler = (ctx) => {
    ctx.append('Set-Cookie', 'session=set-earlier; path=/');
    ctx.append('Set-Cookie', 'other=kept; path=/');
    ctx.session.n = 1;
    return 'ok';
  };

  it('true: a Set-Cookie of the same name set earlier in the response is replaced; others stay', async () => {
    const started = await startApp({ store: 'memory://', cookie: { overwrite: true } }, handler);
    apps.push(started);
    const names = (await started.request('/')).setCookies.map((header) => cookiePair(header).split('=')[0]);
    expect(names).toEqual(['other', 'session']);
  });

  it('false (the default): both are sent, as Koa does', async () => {
    const started = await startApp({ store: 'memory://' }, handler);
    apps.push(started);
    const names = (await started.request('/')).setCookies.map((header) => cookiePair(header).split('=')[0]);
    expect(names).toEqual(['session', 'other', 'session']);
  });

  it('is an option and a variable like every cookie attribute', async () => {
    expect(() => kvSession({ store: 'memory://', cookie: { overwrite: 'yes' as never } })).toThrow(SessionOptionError);
    expect(() => kvSession({ store: 'memory://', env: { SESSION_COOKIE_OVERWRITE: 'maybe' } })).toThrow(
      /SESSION_COOKIE_OVERWRITE/,
    );
    const fromEnv = kvSession({ store: 'memory://', env: { SESSION_COOKIE_OVERWRITE: 'true' } });
    await fromEnv.close();
  });
});
