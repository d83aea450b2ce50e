// The sid cookie: signing and key rotation, attributes, and what happens without keys.
import Keygrip from 'keygrip';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/backends/memory.js';
import { kvSession, type KvSessionOptions } from '../src/index.js';
import { attributesOf, cookiePair, sidOf, startApp, type Handler, type TestApp } from './support/app.js';
import { CountingAdapter } from './support/counting.js';
import { uniquePrefix } from './support/servers.js';
import type Koa from 'koa';

const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function setup(handler: Handler, options: KvSessionOptions = {}, configure?: (app: Koa) => void) {
  const store = new CountingAdapter(new MemoryBackend());
  const prefix = uniquePrefix('cookie');
  const app = await startApp({ store: store, keyPrefix: prefix, ...options }, handler, configure);
  apps.push(app);
  await app.middleware.ready();
  store.reset();
  return { app, store, prefix };
}

const login: Handler = (ctx) => {
  if (ctx.path === '/login') ctx.session.user = 'ada';
  return String(ctx.session.user ?? 'anonymous');
};

describe('signing', () => {
  it('the cookie is <sid>.<HMAC-SHA256 signature>, 43 + 1 + 43 characters', async () => {
    const { app } = await setup(login);
    const reply = await app.request('/login');
    const value = cookiePair(reply.setCookies[0]).split('=')[1] as string;
    expect(value).toMatch(/^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/);
  });

  it('key rotation: a cookie signed with an old key still works and is re-signed with the new first key', async () => {
    const old = await setup(login, { keys: ['old-key'] });
    const signedOld = cookiePair((await old.app.request('/login')).setCookies[0]);
    // Same store, new key list with the new key first.
    const rotated = await startApp(
      { store: old.store, keyPrefix: old.prefix, keys: ['new-key', 'old-key'], refreshInterval: '1h' },
      login,
    );
    apps.push(rotated);
    const reply = await rotated.request('/', { cookie: signedOld });
    expect(reply.body).toBe('ada');
    expect(reply.setCookies).toHaveLength(1);
    const resigned = cookiePair(reply.setCookies[0]);
    expect(sidOf(reply.setCookies[0])).toBe(sidOf(`${signedOld};`));
    expect(resigned).not.toBe(signedOld);
    // Once the old key is retired, only the re-signed cookie works.
    const retired = await startApp({ store: old.store, keyPrefix: old.prefix, keys: ['new-key'] }, login);
    apps.push(retired);
    expect((await retired.request('/', { cookie: resigned })).body).toBe('ada');
    expect((await retired.request('/', { cookie: signedOld })).body).toBe('anonymous');
  });

  it('app.keys signs when the keys option is not given; the first key signs, all verify', async () => {
    const first = await setup(login, {}, (app) => {
      app.keys = ['k1-old'];
    });
    const cookie = cookiePair((await first.app.request('/login')).setCookies[0]);
    const second = await startApp({ store: first.store, keyPrefix: first.prefix }, login, (app) => {
      app.keys = ['k2-new', 'k1-old'];
    });
    apps.push(second);
    expect((await second.request('/', { cookie })).body).toBe('ada');
  });

  it('SESSION_SECRET_KEYS (comma-separated) signs instead of app.keys', async () => {
    const a = await setup(login, { env: { SESSION_SECRET_KEYS: 'env-key-1, env-key-2' } });
    const cookie = cookiePair((await a.app.request('/login')).setCookies[0]);
    const b = await startApp({ store: a.store, keyPrefix: a.prefix, keys: ['env-key-1'] }, login);
    apps.push(b);
    expect((await b.request('/', { cookie })).body).toBe('ada');
    const c = await startApp({ store: a.store, keyPrefix: a.prefix }, login); // app.keys only
    apps.push(c);
    expect((await c.request('/', { cookie })).body).toBe('anonymous');
  });

  it('a Keygrip instance as app.keys works too', async () => {
    const { app } = await setup(login, {}, (koa) => {
      koa.keys = new Keygrip(['grip-key']) as unknown as string[];
    });
    const cookie = cookiePair((await app.request('/login')).setCookies[0]);
    expect((await app.request('/', { cookie })).body).toBe('ada');
  });

  it('without any keys, a request fails with SESSION_NO_KEYS and a message that says how to fix it', async () => {
    const errors: Error[] = [];
    const { app } = await setup(login, {}, (koa) => {
      koa.keys = undefined as unknown as string[];
      koa.on('error', (error) => errors.push(error));
    });
    const reply = await app.request();
    expect(reply.status).toBe(500);
    expect(errors[0]).toMatchObject({ code: 'SESSION_NO_KEYS' });
    expect(errors[0]?.message).toMatch(/app\.keys/);
    expect(errors[0]?.message).toMatch(/SESSION_SECRET_KEYS/);
  });

  it('cookie.signed false: the cookie is the bare sid, and no keys are needed', async () => {
    const { app } = await setup(login, { cookie: { signed: false } }, (koa) => {
      koa.keys = undefined as unknown as string[];
    });
    const reply = await app.request('/login');
    const value = cookiePair(reply.setCookies[0]).split('=')[1] as string;
    expect(value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await app.request('/', { cookie: `session=${value}` })).body).toBe('ada');
  });

  it('duplicated session cookies: the first one that verifies wins, forged ones cost no store read', async () => {
    const { app, store } = await setup(login);
    const good = cookiePair((await app.request('/login')).setCookies[0]);
    store.reset();
    const forged = `session=${'A'.repeat(43)}.${'B'.repeat(43)}`;
    const reply = await app.request('/', { cookie: `${forged}; other=1; ${good}` });
    expect(reply.body).toBe('ada');
    expect(store.count('get')).toBe(1);
  });
});

describe('attributes', () => {
  it('defaults: Path=/, HttpOnly, SameSite=Lax, no Domain, not Secure over http', async () => {
    const { app } = await setup(login);
    const attrs = attributesOf((await app.request('/login')).setCookies[0] as string);
    expect(attrs.get('path')).toBe('/');
    expect(attrs.get('httponly')).toBe(true);
    expect(attrs.get('samesite')).toBe('Lax');
    expect(attrs.has('domain')).toBe(false);
    expect(attrs.has('secure')).toBe(false);
    expect(attrs.has('partitioned')).toBe(false);
  });

  it('cookie name, domain, path, httpOnly, sameSite, partitioned and secure are applied', async () => {
    const { app } = await setup(login, {
      cookie: {
        name: 'sid',
        domain: 'example.test',
        path: '/app',
        httpOnly: false,
        sameSite: 'none',
        partitioned: true,
        secure: true,
      },
    });
    const reply = await app.request('/login');
    const header = reply.setCookies[0] as string;
    expect(header.startsWith('sid=')).toBe(true);
    const attrs = attributesOf(header);
    expect(attrs.get('domain')).toBe('example.test');
    expect(attrs.get('path')).toBe('/app');
    expect(attrs.has('httponly')).toBe(false);
    expect(attrs.get('samesite')).toBe('None');
    expect(attrs.get('partitioned')).toBe(true);
    expect(attrs.get('secure')).toBe(true);
    // The custom name is also the one that is read.
    expect((await app.request('/', { cookie: cookiePair(header) })).body).toBe('ada');
  });

  it('sameSite false sends no SameSite attribute', async () => {
    const { app } = await setup(login, { cookie: { sameSite: false } });
    expect(attributesOf((await app.request('/login')).setCookies[0] as string).has('samesite')).toBe(false);
  });

  it("secure 'auto' behind a proxy: X-Forwarded-Proto https with app.proxy sets Secure", async () => {
    const { app } = await setup(login, {}, (koa) => {
      koa.proxy = true;
    });
    const reply = await app.request('/login', { headers: { 'x-forwarded-proto': 'https' } });
    expect(attributesOf(reply.setCookies[0] as string).get('secure')).toBe(true);
  });

  it("secure 'auto' ignores X-Forwarded-Proto when app.proxy is off", async () => {
    const { app } = await setup(login);
    const reply = await app.request('/login', { headers: { 'x-forwarded-proto': 'https' } });
    expect(attributesOf(reply.setCookies[0] as string).has('secure')).toBe(false);
  });

  it('only one Set-Cookie header per response', async () => {
    const { app } = await setup(async (ctx) => {
      ctx.session.a = 1;
      await ctx.session.regenerate();
      ctx.session.b = 2;
    });
    expect((await app.request()).setCookies).toHaveLength(1);
  });
});

describe('cookie as a function of the request', () => {
  /** Requests name their host in X-Forwarded-Host (app.proxy), as a tenant's would arrive behind a proxy. */
  const asHost = (host: string, cookie?: string) => ({
    headers: { 'x-forwarded-host': host },
    ...(cookie === undefined ? {} : { cookie }),
  });
  const trustProxy = (app: Koa) => {
    app.proxy = true;
  };
  const tenants = (calls: string[]) => (ctx: Koa.Context) => {
    calls.push(ctx.hostname);
    return ctx.hostname.endsWith('b.example')
      ? { domain: 'b.example', sameSite: 'strict' as const }
      : { domain: 'a.example' };
  };
  const handler: Handler = async (ctx) => {
    if (ctx.path === '/login') ctx.session.user = 'ada';
    if (ctx.path === '/logout') await ctx.session.destroy();
    return String(ctx.session.user ?? 'anonymous');
  };

  it('gives each host its own Domain (and other attributes), on the cookie that is set and on the one that clears it', async () => {
    const calls: string[] = [];
    const { app } = await setup(handler, { cookie: tenants(calls) }, trustProxy);
    const a = await app.request('/login', asHost('shop.a.example'));
    const b = await app.request('/login', asHost('shop.b.example'));
    expect(attributesOf(a.setCookies[0] as string).get('domain')).toBe('a.example');
    expect(attributesOf(a.setCookies[0] as string).get('samesite')).toBe('Lax');
    expect(attributesOf(b.setCookies[0] as string).get('domain')).toBe('b.example');
    expect(attributesOf(b.setCookies[0] as string).get('samesite')).toBe('Strict');
    const out = await app.request('/logout', asHost('shop.b.example', cookiePair(b.setCookies[0])));
    expect(out.setCookies[0]).toMatch(/^session=;/);
    expect(attributesOf(out.setCookies[0] as string).get('domain')).toBe('b.example');
    expect(calls).toEqual(['shop.a.example', 'shop.b.example', 'shop.b.example']);
  });

  it('is not called by a request that neither stores nor ends its session', async () => {
    const calls: string[] = [];
    const { app } = await setup(handler, { cookie: tenants(calls) }, trustProxy);
    const cookie = cookiePair((await app.request('/login', asHost('a.example'))).setCookies[0]);
    calls.length = 0;
    const read = await app.request('/', asHost('a.example', cookie));
    expect([read.body, read.setCookies, calls]).toEqual(['ada', [], []]);
  });

  it('an async function is refused at kvSession(), naming the option', () => {
    expect(() => kvSession({ store: 'memory://', cookie: (async () => ({ domain: 'a.example' })) as never })).toThrow(
      /^koa-kv-session: cookie: the cookie function must be synchronous \(an async function returns a Promise\)/,
    );
  });

  it('its result goes over the SESSION_COOKIE_* variables and the defaults', async () => {
    const { app } = await setup(handler, {
      cookie: () => ({ sameSite: 'strict' }),
      env: { SESSION_COOKIE_PATH: '/app', SESSION_COOKIE_SAMESITE: 'none' },
    });
    const attributes = attributesOf((await app.request('/login')).setCookies[0] as string);
    expect([attributes.get('path'), attributes.get('samesite'), attributes.get('httponly')]).toEqual([
      '/app',
      'Strict',
      true,
    ]);
  });

  it.each([
    [
      'a bad attribute',
      () => ({ sameSite: 'none', secure: false }),
      /^cookie\.sameSite: SameSite=None needs a Secure cookie/,
    ],
    ['an unknown attribute', () => ({ domian: 'a.example' }), /^cookie\.domian: unknown cookie option/],
    [
      'the cookie name',
      () => ({ name: 'sid' }),
      /^cookie\.name: cannot come from the cookie function: it is needed to read the cookie/,
    ],
    ['signed', () => ({ signed: false }), /^cookie\.signed: cannot come from the cookie function/],
    [
      'no object',
      () => 'a.example',
      /^cookie: the cookie function must return an object of cookie attributes, got "a\.example"/,
    ],
    [
      'a Date',
      () => new Date(),
      /^cookie: the cookie function must return an object of cookie attributes, got a Date$/,
    ],
    [
      'a Promise',
      () => Promise.resolve({ domain: 'a.example' }),
      /^cookie: the cookie function returned a Promise: it must be synchronous/,
    ],
  ])('%s fails that request with the SessionOptionError a static option would give', async (_case, fn, message) => {
    const { app, store } = await setup(handler, { cookie: fn as never });
    const errors: Error[] = [];
    app.app.on('error', (error: Error) => errors.push(error));
    const reply = await app.request('/login');
    expect(reply.status).toBe(500);
    expect(reply.setCookies).toEqual([]);
    expect(errors[0]?.name).toBe('SessionOptionError');
    expect(errors[0]?.message.replace(/^koa-kv-session: /, '')).toMatch(message);
    // Settled before the commit: nothing was stored for a cookie that could not be sent.
    expect(store.calls.filter((call) => call.op !== 'get')).toEqual([]);
  });
});
