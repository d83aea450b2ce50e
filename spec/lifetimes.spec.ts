// Which limit ends a session when: its own lifetime (ctx.session.lifetime), the absolute lifetime, the lifetime of
// non-permanent sessions; on every backend.
import { beforeEach, describe, expect, it } from 'vitest';
import { encodePayload } from '../src/codec.js';
import { frameRecord, parseRecord, recordExpiry, type RecordMeta } from '../src/record.js';
import { kvSession, sessionExpires, type KvSessionOptions } from '../src/index.js';
import { decodeStored } from './support/records.js';
import { attributesOf, cookiePair, sidOf, startApp, type Handler, type TestApp } from './support/app.js';
import type { CountingAdapter } from './support/counting.js';
import { BACKENDS, onBackend } from './support/servers.js';

const HOUR = 3_600_000;
const cookieExpiry = (setCookie: string | undefined): number =>
  Date.parse(attributesOf(setCookie as string).get('expires') as string);

describe.each(BACKENDS)('lifetimes on $name', (backend) => {
  const env = onBackend(backend, 'lifetimes');
  let store: CountingAdapter;
  let prefix: string;
  const apps = env.apps;
  beforeEach(() => {
    store = env.store;
    prefix = env.prefix;
  });

  async function start(handler: Handler, options: KvSessionOptions = {}): Promise<TestApp> {
    const app = await startApp({ store: store, keyPrefix: prefix, lifetime: HOUR, ...options }, handler);
    apps.push(app);
    await app.middleware.ready();
    store.reset();
    return app;
  }

  /** A session stored directly with the given header fields; resolves with a cookie that names it. */
  async function seeded(
    app: TestApp,
    expires: number,
    meta: RecordMeta,
    permanent = true,
  ): Promise<{ cookie: string; sid: string }> {
    const created = await app.request('/seed');
    const sid = sidOf(created.setCookies[0]);
    await store.put(
      prefix + sid,
      frameRecord(encodePayload({ user: 'ada' }, 'cbor'), 'cbor', expires, permanent, meta),
      Math.max(1000, expires - Date.now()),
    );
    store.reset();
    return { cookie: cookiePair(created.setCookies[0]), sid };
  }

  const route: Handler = async (ctx) => {
    if (ctx.path === '/seed') ctx.session.user = 'seed';
    if (ctx.path === '/own') ctx.session.lifetime = ctx.get('x-lifetime') === 'null' ? null : ctx.get('x-lifetime');
    if (ctx.path === '/login') {
      await ctx.session.regenerate({ login: true });
      ctx.session.user = 'ada';
    }
    if (ctx.path === '/rotate') await ctx.session.regenerate();
    if (ctx.path === '/switch') {
      await ctx.session.regenerate();
      ctx.session.user = 'bob';
    }
    if (ctx.path === '/write') ctx.session.n = Number(ctx.session.n ?? 0) + 1;
    if (ctx.path === '/forget') ctx.session.permanent = false;
    return JSON.stringify({
      user: ctx.session.user ?? null,
      lifetime: ctx.session.lifetime,
      expires: sessionExpires(ctx)?.getTime() ?? null,
    });
  };

  it('ctx.session.lifetime gives one session its own lifetime: in the stored TTL and header, the cookie, and kept through regenerate()', async () => {
    const app = await start(route);
    const first = await app.request('/seed');
    const cookie = cookiePair(first.setCookies[0]);
    const sid = sidOf(first.setCookies[0]);
    const before = Date.now();
    store.reset();
    const own = await app.request('/own', { cookie, headers: { 'x-lifetime': '2h' } });
    expect(JSON.parse(own.body).lifetime).toBe(2 * HOUR);
    const raw = String(await store.raw(prefix + sid));
    expect(parseRecord(raw).lifetime).toBe(2 * HOUR);
    expect(recordExpiry(raw)).toBeGreaterThanOrEqual(before + 2 * HOUR);
    const ttl = store.calls.find((c) => c.op === 'set')?.ttl;
    if (ttl !== undefined) expect(ttl).toBeGreaterThan(2 * HOUR - 5000);
    expect(Math.abs(cookieExpiry(own.setCookies[0]) - recordExpiry(raw))).toBeLessThan(1000);
    // Read back, and kept by regenerate() (a login), which starts a new creation time.
    const login = await app.request('/login', { cookie });
    expect(JSON.parse(login.body).lifetime).toBe(2 * HOUR);
    const moved = parseRecord(await store.raw(prefix + sidOf(login.setCookies[0])));
    expect(moved.lifetime).toBe(2 * HOUR);
    expect(moved.created).toBeGreaterThanOrEqual(before);
    // null: back to the configured lifetime.
    const reset = await app.request('/own', {
      cookie: cookiePair(login.setCookies[0]),
      headers: { 'x-lifetime': 'null' },
    });
    expect(JSON.parse(reset.body).lifetime).toBe(HOUR);
    expect(parseRecord(await store.raw(prefix + sidOf(login.setCookies[0]))).lifetime).toBeUndefined();
  });

  it('absoluteLifetime: a session created longer ago than that loads as no session, however recently it was used', async () => {
    const app = await start(route, { absoluteLifetime: HOUR });
    const now = Date.now();
    const { cookie } = await seeded(app, now + HOUR, { created: now - HOUR - 1000 });
    const reply = await app.request('/', { cookie });
    expect(JSON.parse(reply.body).user).toBeNull();
    // Nothing was written to end it: the load alone treats it as gone.
    expect(store.calls.filter((c) => c.op !== 'get')).toEqual([]);
  });

  it('absoluteLifetime caps the stored expiry and the cookie of a refresh and of a write; a written session keeps its creation time', async () => {
    const app = await start(route, { absoluteLifetime: HOUR, refreshInterval: 0 });
    const now = Date.now();
    const created = now - HOUR + 60_000; // one minute left
    const { cookie, sid } = await seeded(app, now + 30_000, { created });
    for (const path of ['/', '/write']) {
      const reply = await app.request(path, { cookie });
      expect(JSON.parse(reply.body).user).toBe('ada');
      const raw = String(await store.raw(prefix + sid));
      expect(recordExpiry(raw)).toBe(created + HOUR);
      expect(parseRecord(raw).created).toBe(created);
      // The refresh moves the cookie to the cap; the write after it has nothing left to move.
      if (path === '/') expect(cookieExpiry(reply.setCookies[0])).toBe(Math.floor((created + HOUR) / 1000) * 1000);
      else expect(reply.setCookies).toEqual([]);
      expect(JSON.parse(reply.body).expires).toBe(created + HOUR);
      const ttl = store.calls.find((c) => c.op === 'set')?.ttl;
      if (ttl !== undefined) expect(ttl).toBeLessThanOrEqual(60_000);
      store.reset();
    }
    // A login starts a new creation time: the full lifetime again.
    const login = await app.request('/login', { cookie });
    expect(recordExpiry(await store.raw(prefix + sidOf(login.setCookies[0])))).toBeGreaterThanOrEqual(
      now + HOUR - 1000,
    );
  });

  it('absoluteLifetime: regenerate() alone keeps the creation time; a login (regenerate({ login: true }), or a new userKey value) starts a new one', async () => {
    const app = await start(route, { absoluteLifetime: HOUR, userKey: 'user' });
    const now = Date.now();
    const created = now - HOUR + 60_000; // one minute left
    const { cookie } = await seeded(app, now + 30_000, { created });
    // A route that rotates the sid cannot renew the session for ever.
    const rotated = await app.request('/rotate', { cookie });
    const moved = parseRecord(await store.raw(prefix + sidOf(rotated.setCookies[0])));
    expect(moved.created).toBe(created);
    expect(moved.expires).toBe(created + HOUR);
    const again = cookiePair(rotated.setCookies[0]);
    const relogin = await app.request('/login', { cookie: again });
    expect(parseRecord(await store.raw(prefix + sidOf(relogin.setCookies[0]))).created).toBeGreaterThanOrEqual(now);
    // Another session of the same age: the userKey field changes, a new login.
    const second = await seeded(app, now + 30_000, { created });
    const switched = await app.request('/switch', { cookie: second.cookie });
    const other = parseRecord(await store.raw(prefix + sidOf(switched.setCookies[0])));
    expect(other.created).toBeGreaterThanOrEqual(now);
    expect(other.expires).toBeGreaterThanOrEqual(now + HOUR - 1000);
  });

  it('nonPermanentLifetime, in real time: a browser-session session is gone after it, a permanent one lives on', async () => {
    const app = await start(
      async (ctx) => {
        if (ctx.path === '/remember') ctx.session.permanent = true;
        if (ctx.path !== '/') ctx.session.user = ctx.path.slice(1);
        return String(ctx.session.user ?? 'anonymous');
      },
      { permanent: false, nonPermanentLifetime: '2s' },
    );
    const browser = cookiePair((await app.request('/forget')).setCookies[0]);
    const remembered = cookiePair((await app.request('/remember')).setCookies[0]);
    await new Promise((done) => setTimeout(done, 3200));
    expect((await app.request('/', { cookie: browser })).body).toBe('anonymous');
    expect((await app.request('/', { cookie: remembered })).body).toBe('remember');
  });

  it('nonPermanentLifetime: a browser-session session expires after it on the server, a permanent one after lifetime', async () => {
    const app = await start(route, { nonPermanentLifetime: '30m' });
    const before = Date.now();
    const permanent = await app.request('/seed');
    expect(recordExpiry(await store.raw(prefix + sidOf(permanent.setCookies[0])))).toBeGreaterThanOrEqual(
      before + HOUR,
    );
    // "Don't remember me": the same session made non-permanent.
    const forgotten = await app.request('/forget', { cookie: cookiePair(permanent.setCookies[0]) });
    const raw = String(await store.raw(prefix + sidOf(permanent.setCookies[0])));
    expect(recordExpiry(raw)).toBeLessThanOrEqual(Date.now() + 30 * 60_000);
    expect(recordExpiry(raw)).toBeGreaterThanOrEqual(before + 30 * 60_000);
    expect(decodeStored(raw)).toEqual({ user: 'seed' });
    expect(forgotten.setCookies[0]).not.toMatch(/Expires=/);
    expect(JSON.parse(forgotten.body).lifetime).toBe(30 * 60_000);
  });
});

describe('lifetimes: options and the control member', () => {
  it.each([
    ['SESSION_NON_PERMANENT_LIFETIME', 'soon', /SESSION_NON_PERMANENT_LIFETIME/],
    ['SESSION_ABSOLUTE_LIFETIME', '0', /SESSION_ABSOLUTE_LIFETIME.*at least one second/],
    ['SESSION_CLEANUP_INTERVAL', '-5', /SESSION_CLEANUP_INTERVAL/],
  ])('%s=%s fails with a message naming the variable', (variable, value, message) => {
    expect(() => kvSession({ store: 'memory://', env: { [variable]: value } })).toThrow(message);
  });

  it('reads them from the environment in seconds or as durations', async () => {
    const errors: Error[] = [];
    const app = await startApp(
      {
        store: 'memory://',
        env: { SESSION_NON_PERMANENT_LIFETIME: '1800', SESSION_ABSOLUTE_LIFETIME: '12h', SESSION_PERMANENT: 'false' },
        onError: (e) => errors.push(e),
      },
      (ctx) => {
        ctx.session.user = 'ada';
        return String(ctx.session.lifetime);
      },
    );
    try {
      expect((await app.request('/')).body).toBe(String(1_800_000));
      expect(errors).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('lifetime is a reserved name; a bad value is a TypeError that names it', async () => {
    const seen: string[] = [];
    const app = await startApp({ store: 'memory://' }, (ctx) => {
      for (const act of [
        () => {
          ctx.session = { lifetime: 5 };
        },
        () => {
          delete (ctx.session as { lifetime?: unknown }).lifetime;
        },
        () => {
          ctx.session.lifetime = 'soon';
        },
        () => {
          ctx.session.lifetime = 10;
        },
        () => {
          ctx.session.lifetime = 1e16;
        },
        () => {
          ctx.session.lifetime = '9999999999w';
        },
        () => {
          ctx.session.lifetime = 1e308;
        },
      ]) {
        try {
          act();
          seen.push('no error');
        } catch (error) {
          seen.push(`${(error as Error).name}: ${(error as Error).message}`);
        }
      }
      return 'ok';
    });
    try {
      await app.request('/');
      expect(seen[0]).toMatch(/TypeError: .*lifetime is a control member/);
      expect(seen[1]).toMatch(/TypeError: .*lifetime is a control member/);
      expect(seen[2]).toMatch(/TypeError: .*ctx\.session\.lifetime.*"soon"/);
      expect(seen[3]).toMatch(/TypeError: .*at least one second/);
      // What no cookie or backend could carry is refused when set, before anything is stored.
      for (const refused of seen.slice(4))
        expect(refused).toMatch(/TypeError: .*ctx\.session\.lifetime.*at most 400 days/);
      expect(seen).toHaveLength(7);
    } finally {
      await app.close();
    }
  });
});
