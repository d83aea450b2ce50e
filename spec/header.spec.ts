// The `header` option (issue 14): API and mobile clients carry the signed session value in a request header instead of
// a cookie; cookie clients are unaffected. On every backend.
import type { Context } from 'koa';
import { beforeEach, describe, expect, it } from 'vitest';
import { resolveSettings } from '../src/options.js';
import { cookiePair, startApp, type TestApp, withBadSignature } from './support/app.js';
import type { CountingAdapter } from './support/counting.js';
import { BACKENDS, onBackend } from './support/servers.js';

async function route(ctx: Context): Promise<unknown> {
  switch (ctx.path) {
    case '/login':
      await ctx.session.regenerate();
      ctx.session.userId = ctx.query.user;
      return 'ok';
    case '/logout':
      ctx.session = null;
      return 'bye';
    default:
      return ctx.session.userId ?? 'anonymous';
  }
}

describe.each(BACKENDS)('the session header on $name', (backend) => {
  const env = onBackend(backend, 'header');
  let store: CountingAdapter;
  let prefix: string;
  beforeEach(() => {
    store = env.store;
    prefix = env.prefix;
  });

  async function app(): Promise<TestApp> {
    const started = await startApp({ store: store, keyPrefix: prefix, header: 'X-Session' }, route);
    env.apps.push(started);
    return started;
  }

  it('a client that sends the header (empty at first) gets the session in it, never a cookie, and is known by it', async () => {
    const site = await app();
    const login = await site.request('/login?user=mo', { headers: { 'x-session': '' } });
    expect(login.setCookies).toEqual([]);
    const value = login.headers.get('x-session') as string;
    expect(value).toMatch(/^[\w-]{43}\.[\w-]+$/);
    expect(login.headers.get('vary')).toMatch(/x-session/i);
    expect((await site.request('/whoami', { headers: { 'x-session': value } })).body).toBe('mo');
    // An unchanged session does not re-send its value.
    expect((await site.request('/whoami', { headers: { 'x-session': value } })).headers.get('x-session')).toBeNull();
    const logout = await site.request('/logout', { headers: { 'x-session': value } });
    expect(logout.headers.get('x-session')).toBe('');
    expect((await site.request('/whoami', { headers: { 'x-session': value } })).body).toBe('anonymous');
  });

  it('a forged or malformed header value is no session, and reads nothing from the store', async () => {
    const site = await app();
    const value = (await site.request('/login?user=ned', { headers: { 'x-session': '' } })).headers.get(
      'x-session',
    ) as string;
    const reads = store.count('get');
    for (const forged of [withBadSignature(value), value.split('.')[0] as string, 'x'.repeat(5000), '.'.repeat(3)]) {
      expect((await site.request('/whoami', { headers: { 'x-session': forged } })).body).toBe('anonymous');
    }
    expect(store.count('get')).toBe(reads);
  });

  it('cookie clients are unaffected: the cookie as before, and never the session in a header', async () => {
    const site = await app();
    const login = await site.request('/login?user=ola');
    expect(login.headers.get('x-session')).toBeNull();
    const cookie = cookiePair(login.setCookies[0]);
    expect((await site.request('/whoami', { cookie })).body).toBe('ola');
  });
});

describe('the header option', () => {
  it('comes from SESSION_HEADER, is lower-cased, and must be a header name that is not Cookie', () => {
    expect(resolveSettings({ env: { SESSION_HEADER: 'X-Auth-Session' } }).header).toBe('x-auth-session');
    expect(resolveSettings({ env: {} }).header).toBeUndefined();
    expect(() => resolveSettings({ header: 'bad header' })).toThrow(/header: must be an HTTP header name/);
    expect(() => resolveSettings({ header: 'Cookie' })).toThrow(/header: .*not Cookie/);
  });
});
