// The request lifecycle table of the core issue, one test per row, on every backend reachable here.
import { beforeEach, describe, expect, it } from 'vitest';
import { decodeStored } from './support/records.js';
import { encodePayload } from '../src/codec.js';
import { frameRecord, recordExpiry } from '../src/record.js';
import { movedTo } from '../src/tombstone.js';
import { sidHash } from '../src/sid.js';
import type { KvSessionOptions } from '../src/index.js';
import {
  attributesOf,
  cookiePair,
  sidOf,
  startApp,
  type Handler,
  type TestApp,
  withBadSignature,
} from './support/app.js';
import type { CountingAdapter } from './support/counting.js';
import { BACKENDS, onBackend } from './support/servers.js';

const LIFETIME = 3_600_000;

describe.each(BACKENDS)('lifecycle on $name', (backend) => {
  const env = onBackend(backend, 'lifecycle');
  let store: CountingAdapter;
  let prefix: string;
  const apps = env.apps;
  beforeEach(() => {
    store = env.store;
    prefix = env.prefix;
  });

  /** The calls of a conditional write: one atomic script on Redis, a re-read then a write elsewhere. */
  function conditionalWrite(key: string, ttl = LIFETIME): Array<{ op: string; key: string; ttl?: number }> {
    return store.atomic
      ? [{ op: 'cas', key }]
      : [
          { op: 'get', key },
          { op: 'set', key, ttl },
        ];
  }

  async function start(handler: Handler, options: KvSessionOptions = {}): Promise<TestApp> {
    const app = await startApp({ store: store, keyPrefix: prefix, lifetime: LIFETIME, ...options }, handler);
    apps.push(app);
    await app.middleware.ready();
    store.reset(); // the start-up probe is not part of any request
    return app;
  }

  /** Stores a session directly, as if written `age` ms ago, and returns a cookie for it. */
  async function existing(
    app: TestApp,
    data: Record<string, unknown>,
    age: number,
    permanent = true,
  ): Promise<{ cookie: string; sid: string; expires: number }> {
    const created = await app.request('/__seed', { headers: { 'x-seed': JSON.stringify(data) } });
    const sid = sidOf(created.setCookies[0]);
    const expires = Date.now() - age + LIFETIME;
    const raw = frameRecord(encodePayload(data, 'cbor'), 'cbor', expires, permanent);
    await store.put(prefix + sid, raw, LIFETIME);
    store.reset();
    return { cookie: cookiePair(created.setCookies[0]), sid, expires };
  }

  /** Wraps a handler so that /__seed requests create a session from the x-seed header. */
  function seeding(handler: Handler): Handler {
    return (ctx) => {
      if (ctx.path === '/__seed') {
        ctx.session = JSON.parse(ctx.get('x-seed'));
        return 'seeded';
      }
      return handler(ctx);
    };
  }

  it('no cookie, handler ignores the session: no store call, no Set-Cookie, no Vary', async () => {
    const app = await start(() => 'hello');
    const reply = await app.request();
    expect(reply.status).toBe(200);
    expect(store.calls).toEqual([]);
    expect(reply.setCookies).toEqual([]);
    expect(reply.vary).toBeNull();
  });

  it('no cookie, handler only reads: no store call, no Set-Cookie, Vary: Cookie', async () => {
    const app = await start((ctx) => String(ctx.session.views ?? 'none'));
    const reply = await app.request();
    expect(reply.body).toBe('none');
    expect(store.calls).toEqual([]);
    expect(reply.setCookies).toEqual([]);
    expect(reply.vary).toBe('Cookie');
  });

  it('new permanent session gets data: one write with TTL = lifetime, persistent cookie, Vary', async () => {
    const app = await start((ctx) => {
      ctx.session.user = 'ada';
    });
    const before = Date.now();
    const reply = await app.request();
    const sid = sidOf(reply.setCookies[0]);
    expect(store.calls).toEqual([{ op: 'set', key: prefix + sid, ttl: LIFETIME }]);
    // Committed before the response left: the record is there the moment the reply is.
    expect(await store.raw(prefix + sid)).toMatch(/^c2:\d+:1:[\w-]{8}:\d+::/);
    expect(reply.setCookies).toHaveLength(1);
    const attrs = attributesOf(reply.setCookies[0] as string);
    const expires = Date.parse(attrs.get('expires') as string);
    expect(expires).toBeGreaterThanOrEqual(Math.floor((before + LIFETIME) / 1000) * 1000 - 1000);
    expect(expires).toBeLessThanOrEqual(Date.now() + LIFETIME + 1000);
    expect(attrs.get('httponly')).toBe(true);
    expect(attrs.get('samesite')).toBe('Lax');
    expect(attrs.get('path')).toBe('/');
    expect(attrs.has('max-age')).toBe(false);
    expect(reply.vary).toBe('Cookie');
  });

  it('new non-permanent session: one write with TTL = lifetime, cookie without Expires or Max-Age', async () => {
    const app = await start(
      (ctx) => {
        ctx.session.user = 'ada';
      },
      { permanent: false },
    );
    const reply = await app.request();
    const sid = sidOf(reply.setCookies[0]);
    expect(store.calls).toEqual([{ op: 'set', key: prefix + sid, ttl: LIFETIME }]);
    const attrs = attributesOf(reply.setCookies[0] as string);
    expect(attrs.has('expires')).toBe(false);
    expect(attrs.has('max-age')).toBe(false);
  });

  it.each([
    ['a bad signature', (sid: string, sig: string) => withBadSignature(`${sid}.${sig}`)],
    ['no signature', (sid: string) => sid],
    ['a sid that is too short', (sid: string, sig: string) => `${sid.slice(1)}.${sig}`],
    ['a sid outside the base64url alphabet', (sid: string, sig: string) => `${sid.slice(0, -1)}!.${sig}`],
  ])('cookie with %s: no store read, treated as no cookie', async (_label, forge) => {
    const app = await start(seeding((ctx) => String(ctx.session.user ?? 'anonymous')));
    const { cookie } = await existing(app, { user: 'ada' }, 0);
    const [sid, sig] = (cookie.split('=')[1] as string).split('.') as [string, string];
    const reply = await app.request('/', { cookie: `session=${forge(sid, sig)}` });
    expect(reply.body).toBe('anonymous');
    expect(store.calls).toEqual([]);
    expect(reply.setCookies).toEqual([]);
  });

  it('cookie whose sid is unknown: one read (no switch of hashSids under way), and a fresh sid (the client sid is never adopted)', async () => {
    const app = await start(
      seeding((ctx) => {
        ctx.session.user = 'mallory';
        return ctx.session.isNew ? 'new' : 'old';
      }),
    );
    const { cookie, sid } = await existing(app, { user: 'ada' }, 0);
    await store.delete(prefix + sid); // the record is gone: the signed cookie now names an unknown sid
    store.reset();
    const reply = await app.request('/', { cookie });
    expect(reply.body).toBe('new');
    // Its key only: the store's layout record says no switch is under way (read again at most once, when what
    // this process knows of it is a second old).
    expect(store.calls.filter((c) => c.op === 'get').map((c) => c.key)).toEqual([prefix + sid]);
    expect(store.layoutCalls.filter((c) => c.op === 'get').length).toBeLessThanOrEqual(1);
    const fresh = sidOf(reply.setCookies[0]);
    expect(fresh).not.toBe(sid);
    expect(store.calls.filter((c) => c.op === 'set').map((c) => c.key)).toEqual([prefix + fresh]);
  });

  it('cookie whose sid is unknown while a switch of hashSids is under way: its key, its key in the other layout, its key again', async () => {
    await start(seeding(() => 'plain'));
    const app = await start(
      seeding((ctx) => (ctx.session.isNew ? 'new' : 'old')),
      { hashSids: true },
    );
    const created = await app.request('/__seed', { headers: { 'x-seed': '{"user":"ada"}' } });
    const sid = sidOf(created.setCookies[0]);
    const cookie = cookiePair(created.setCookies[0]);
    await store.delete(prefix + sidHash(sid));
    store.reset();
    const reply = await app.request('/', { cookie });
    expect(reply.body).toBe('new');
    // A session stored before the switch would be under the sid itself, and one moved from there by a request in
    // between would be under its hash again.
    expect(store.calls.filter((c) => c.op === 'get').map((c) => c.key)).toEqual([
      prefix + sidHash(sid),
      prefix + sid,
      prefix + sidHash(sid),
    ]);
  });

  it('cookie whose session expired in the store: one read, then a fresh session, and the dead cookie cleared once', async () => {
    const app = await start(seeding((ctx) => String(ctx.session.user ?? 'anonymous')));
    const { cookie } = await existing(app, { user: 'ada' }, LIFETIME + 1000);
    const reply = await app.request('/', { cookie });
    expect(reply.body).toBe('anonymous');
    expect(store.calls.map((c) => c.op)).toEqual(['get']);
    expect(reply.setCookies).toHaveLength(1);
    expect(cookiePair(reply.setCookies[0])).toBe('session=');
  });

  it('existing permanent session, unmodified, refresh interval not passed: one read, no write, no Set-Cookie', async () => {
    const app = await start(
      seeding((ctx) => String(ctx.session.user)),
      { refreshInterval: '10m' },
    );
    const { cookie } = await existing(app, { user: 'ada' }, 60_000);
    const reply = await app.request('/', { cookie });
    expect(reply.body).toBe('ada');
    expect(store.calls.map((c) => c.op)).toEqual(['get']);
    expect(reply.setCookies).toEqual([]);
  });

  it('existing permanent session, unmodified, refresh interval passed: one read, one (conditional) write, fresh Expires', async () => {
    const app = await start(
      seeding((ctx) => String(ctx.session.user)),
      { refreshInterval: '10m' },
    );
    const { cookie, sid } = await existing(app, { user: 'ada' }, 11 * 60_000);
    const before = Date.now();
    const reply = await app.request('/', { cookie });
    expect(store.calls).toEqual([{ op: 'get', key: prefix + sid }, ...conditionalWrite(prefix + sid)]);
    const expires = Date.parse(attributesOf(reply.setCookies[0] as string).get('expires') as string);
    expect(expires).toBeGreaterThanOrEqual(Math.floor((before + LIFETIME) / 1000) * 1000 - 1000);
    expect(sidOf(reply.setCookies[0])).toBe(sid);
    expect(reply.body).toBe('ada');
  });

  it('refreshInterval 0 (exactly as Flask): every request of an unmodified permanent session writes and re-sends the cookie', async () => {
    const app = await start(
      seeding((ctx) => String(ctx.session.user)),
      { refreshInterval: 0 },
    );
    const { cookie, sid } = await existing(app, { user: 'ada' }, 0);
    for (let i = 0; i < 3; i++) {
      store.reset();
      const reply = await app.request('/', { cookie });
      expect(store.calls).toEqual([{ op: 'get', key: prefix + sid }, ...conditionalWrite(prefix + sid)]);
      expect(reply.setCookies).toHaveLength(1);
    }
  });

  it('existing non-permanent session, refresh passed: the store expiry moves forward, no cookie to refresh', async () => {
    const app = await start(
      seeding((ctx) => String(ctx.session.user)),
      { refreshInterval: '10m' },
    );
    const { cookie, sid } = await existing(app, { user: 'ada' }, 11 * 60_000, false);
    const reply = await app.request('/', { cookie });
    expect(store.calls).toEqual([{ op: 'get', key: prefix + sid }, ...conditionalWrite(prefix + sid)]);
    expect(reply.setCookies).toEqual([]);
  });

  it('existing session, unmodified, refreshEachRequest false: one read only, however old the record', async () => {
    const app = await start(
      seeding((ctx) => String(ctx.session.user)),
      { refreshEachRequest: false, refreshInterval: 0 },
    );
    const { cookie } = await existing(app, { user: 'ada' }, LIFETIME / 2);
    const reply = await app.request('/', { cookie });
    expect(reply.body).toBe('ada');
    expect(store.calls.map((c) => c.op)).toEqual(['get']);
    expect(reply.setCookies).toEqual([]);
  });

  // A write moves the expiry (and a permanent cookie's Expires) only when a refresh is due; Flask's
  // settings (refreshInterval 0, or refreshEachRequest false) move it on every write.
  it.each([
    ['refresh not due', {}, 0, false],
    ['refresh due', { refreshInterval: '10m' }, 11 * 60_000, true],
    ['refreshInterval 0 (Flask-exact)', { refreshInterval: 0 }, 0, true],
    ['refreshEachRequest false (Flask)', { refreshEachRequest: false }, 0, true],
  ] as const)(
    'permanent session modified, %s: one read, one (conditional) write; expiry and cookie move only then',
    async (_label, options, age, moves) => {
      const app = await start(
        seeding((ctx) => {
          ctx.session.visits = Number(ctx.session.visits ?? 0) + 1;
        }),
        options,
      );
      const { cookie, sid, expires } = await existing(app, { visits: 1 }, age);
      const before = Date.now();
      const reply = await app.request('/', { cookie });
      expect(store.calls.map((c) => c.op)).toEqual(['get', ...conditionalWrite(prefix + sid).map((c) => c.op)]);
      const raw = await store.raw(prefix + sid);
      expect(decodeStored(raw)).toEqual({ visits: 2 });
      if (moves) {
        expect(recordExpiry(raw)).toBeGreaterThanOrEqual(before + LIFETIME);
        expect(sidOf(reply.setCookies[0])).toBe(sid);
        const cookieExpires = Date.parse(attributesOf(reply.setCookies[0] as string).get('expires') as string);
        expect(Math.abs(cookieExpires - recordExpiry(raw))).toBeLessThan(2000);
      } else {
        expect(recordExpiry(raw)).toBe(expires);
        expect(reply.setCookies).toEqual([]);
      }
    },
  );

  it('non-permanent session modified: one read, one (conditional) write keeping the expiry (no refresh due), no cookie (nothing in it changed)', async () => {
    const app = await start(
      seeding((ctx) => {
        ctx.session.visits = Number(ctx.session.visits ?? 0) + 1;
      }),
      { permanent: false },
    );
    const { cookie, sid, expires } = await existing(app, { visits: 1 }, 0, false);
    const reply = await app.request('/', { cookie });
    expect(store.calls.map((c) => c.op)).toEqual(['get', ...conditionalWrite(prefix + sid).map((c) => c.op)]);
    expect(recordExpiry(await store.raw(prefix + sid))).toBe(expires);
    expect(reply.setCookies).toEqual([]);
  });

  it.each([
    [
      'emptied key by key',
      (ctx: Parameters<Handler>[0]) => {
        delete ctx.session.user;
      },
    ],
    [
      'cleared',
      (ctx: Parameters<Handler>[0]) => {
        ctx.session.clear();
      },
    ],
    [
      'destroyed',
      async (ctx: Parameters<Handler>[0]) => {
        await ctx.session.destroy();
      },
    ],
    [
      'set to null',
      (ctx: Parameters<Handler>[0]) => {
        ctx.session = null;
      },
    ],
  ])('session %s: record deleted, deletion cookie repeating every attribute', async (_label, act) => {
    const app = await start(seeding(act), {
      cookie: { domain: 'example.test', path: '/app', secure: true, sameSite: 'strict', partitioned: true },
    });
    const { cookie, sid } = await existing(app, { user: 'ada' }, 0);
    const reply = await app.request('/', { cookie });
    expect(store.calls).toEqual([
      { op: 'get', key: prefix + sid },
      { op: 'delete', key: prefix + sid },
    ]);
    expect(await store.raw(prefix + sid)).toBeUndefined();
    expect(reply.setCookies).toHaveLength(1);
    const deletion = reply.setCookies[0] as string;
    expect(deletion.startsWith('session=;')).toBe(true);
    const attrs = attributesOf(deletion);
    expect(attrs.get('expires')).toBe('Thu, 01 Jan 1970 00:00:00 GMT');
    expect(attrs.get('max-age')).toBe('0');
    expect(attrs.get('path')).toBe('/app');
    expect(attrs.get('domain')).toBe('example.test');
    expect(attrs.get('secure')).toBe(true);
    expect(attrs.get('samesite')).toBe('Strict');
    expect(attrs.get('partitioned')).toBe(true);
    expect(attrs.get('httponly')).toBe(true);
  });

  it('regenerate(): new record written, then the old one retired by compare-and-set, cookie with the new sid, same data', async () => {
    const app = await start(
      seeding(async (ctx) => {
        await ctx.session.regenerate();
        return String(ctx.session.user ?? 'nobody');
      }),
    );
    const { cookie, sid } = await existing(app, { user: 'ada' }, 0);
    const reply = await app.request('/', { cookie });
    const fresh = sidOf(reply.setCookies[0]);
    expect(fresh).not.toBe(sid);
    // Atomic backends retire the old record in one compare-and-set; the others read it right before.
    const retire = store.atomic
      ? [{ op: 'cas', key: prefix + sid }]
      : [
          { op: 'get', key: prefix + sid },
          { op: 'set', key: prefix + sid, ttl: Math.min(LIFETIME, 600_000) },
        ];
    expect(store.calls).toEqual([
      { op: 'get', key: prefix + sid },
      { op: 'set', key: prefix + fresh, ttl: LIFETIME },
      ...retire,
    ]);
    expect(movedTo(await store.raw(prefix + sid))).toBe(fresh);
    const next = await app.request('/', { cookie: cookiePair(reply.setCookies[0]) });
    expect(next.body).toBe('ada');
    // The old cookie names no session any more.
    expect((await app.request('/', { cookie })).body).toBe('nobody');
  });

  it('handler throws an error without a status (a bug): nothing written, the error and status reach the client unchanged', async () => {
    const app = await start(
      seeding((ctx) => {
        ctx.session.user = 'eve';
        throw new Error('a bug');
      }),
    );
    const { cookie, sid } = await existing(app, { user: 'ada' }, 0);
    const reply = await app.request('/', { cookie });
    expect(reply.status).toBe(500);
    expect(reply.body).toBe('Internal Server Error');
    expect(store.calls.map((c) => c.op)).toEqual(['get']);
    expect(reply.setCookies).toEqual([]);
    expect(decodeStored(await store.raw(prefix + sid))).toEqual({ user: 'ada' });
  });

  it('handler sets a 5xx status: nothing written, status unchanged', async () => {
    const app = await start(
      seeding((ctx) => {
        ctx.session.user = 'eve';
        ctx.status = 503;
        ctx.body = 'down for maintenance';
      }),
    );
    const { cookie, sid } = await existing(app, { user: 'ada' }, 0);
    const reply = await app.request('/', { cookie });
    expect(reply.status).toBe(503);
    expect(reply.body).toBe('down for maintenance');
    expect(store.calls.map((c) => c.op)).toEqual(['get']);
    expect(reply.setCookies).toEqual([]);
    expect(decodeStored(await store.raw(prefix + sid))).toEqual({ user: 'ada' });
  });
});
