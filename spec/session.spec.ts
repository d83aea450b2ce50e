// ctx.session as handlers see it: a plain object of user data, plus control members that are never stored.
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/backends/memory.js';
import type { KvSessionOptions } from '../src/index.js';
import { decodeStored } from './support/records.js';
import { cookiePair, sidOf, startApp, type Handler, type TestApp } from './support/app.js';
import { CountingAdapter } from './support/counting.js';
import { uniquePrefix } from './support/servers.js';

const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

async function setup(handler: Handler, options: KvSessionOptions = {}) {
  const store = new CountingAdapter(new MemoryBackend());
  const prefix = uniquePrefix('session');
  const app = await startApp({ store: store, keyPrefix: prefix, ...options }, handler);
  apps.push(app);
  await app.middleware.ready();
  store.reset();
  return { app, store, prefix };
}

/** Runs `first` in one request and `then` in the next, with the cookie of the first; returns the second reply. */
async function twoRequests(first: Handler, then: Handler, options?: KvSessionOptions) {
  let step = 0;
  const ctx = await setup((c) => (step++ === 0 ? first(c) : then(c)), options);
  const one = await ctx.app.request();
  const two = await ctx.app.request('/', { cookie: cookiePair(one.setCookies[0]) });
  return { ...ctx, one, two };
}

describe('ctx.session behaves as a plain object of user data', () => {
  it('reads, assigns, deletes; Object.keys, spread and JSON.stringify see only user data', async () => {
    const { two } = await twoRequests(
      (ctx) => {
        ctx.session.a = 1;
        ctx.session.b = 'two';
        ctx.session.gone = true;
      },
      (ctx) => {
        delete ctx.session.gone;
        return JSON.stringify({
          keys: Object.keys(ctx.session),
          spread: { ...ctx.session },
          json: JSON.parse(JSON.stringify(ctx.session)),
          has: 'a' in ctx.session,
          sidEnumerable: Object.keys(ctx.session).includes('sid'),
        });
      },
    );
    expect(JSON.parse(two.body)).toEqual({
      keys: ['a', 'b'],
      spread: { a: 1, b: 'two' },
      json: { a: 1, b: 'two' },
      has: true,
      sidEnumerable: false,
    });
  });

  it('user keys of any name round-trip, "_x", "__proto__" and "constructor" included', async () => {
    const { two } = await twoRequests(
      (ctx) => {
        ctx.session._x = 'underscore';
        // biome-ignore lint/suspicious/noProto: a data key named __proto__ is what this test stores
        ctx.session.__proto__ = 'proto';
        const data: Record<string, unknown> = ctx.session;
        for (const [key, value] of [
          ['constructor', 'ctor'],
          ['toString', 'str'],
        ] as const)
          data[key as string] = value;
      },
      (ctx) =>
        JSON.stringify({
          keys: Object.keys(ctx.session).sort(),
          x: ctx.session._x,
          p: Object.getOwnPropertyDescriptor(ctx.session, '__proto__')?.value,
        }),
    );
    expect(JSON.parse(two.body)).toEqual({
      keys: ['__proto__', '_x', 'constructor', 'toString'],
      x: 'underscore',
      p: 'proto',
    });
  });

  it.each(['sid', 'isNew', 'regenerate', 'destroy', 'clear'])(
    'assigning a user key named "%s" throws a TypeError that says so',
    async (name) => {
      const { app } = await setup((ctx) => {
        try {
          (ctx.session as Record<string, unknown>)[name] = 'x';
          return 'no error';
        } catch (error) {
          return `${(error as Error).constructor.name}: ${(error as Error).message}`;
        }
      });
      const reply = await app.request();
      expect(reply.body).toMatch(new RegExp(`^TypeError: ctx\\.session\\.${name} is a control member`));
    },
  );

  it.each(['sid', 'permanent', 'modified', 'regenerate'])(
    'assigning an object with a "%s" key to ctx.session throws a TypeError',
    async (name) => {
      const { app } = await setup((ctx) => {
        try {
          ctx.session = { [name]: 1, other: 2 };
          return 'no error';
        } catch (error) {
          return `${(error as Error).constructor.name}: ${(error as Error).message}`;
        }
      });
      expect((await app.request()).body).toMatch(/^TypeError: ctx\.session\.\w+ is a control member/);
    },
  );

  it('deleting a control member throws a TypeError', async () => {
    const { app } = await setup((ctx) => {
      try {
        delete (ctx.session as Record<string, unknown>).sid;
        return 'no error';
      } catch (error) {
        return (error as Error).constructor.name;
      }
    });
    expect((await app.request()).body).toBe('TypeError');
  });

  it('assigning an object replaces the data', async () => {
    const { two } = await twoRequests(
      (ctx) => {
        ctx.session.old = 1;
      },
      (ctx) => {
        ctx.session = { fresh: 2 };
        return JSON.stringify(ctx.session);
      },
    );
    expect(two.body).toBe('{"fresh":2}');
  });
});

describe('control members', () => {
  it('sid is read-only, stable within a request, and the cookie carries it', async () => {
    const { app } = await setup((ctx) => {
      const first = ctx.session.sid;
      ctx.session.x = 1;
      return `${first}|${ctx.session.sid}`;
    });
    const reply = await app.request();
    const [a, b] = reply.body.split('|');
    expect(a).toBe(b);
    expect(sidOf(reply.setCookies[0])).toBe(a);
  });

  it('isNew is true for a new session and false once stored', async () => {
    const { one, two } = await twoRequests(
      (ctx) => {
        ctx.session.x = 1;
        return String(ctx.session.isNew);
      },
      (ctx) => String(ctx.session.isNew),
    );
    expect(one.body).toBe('true');
    expect(two.body).toBe('false');
  });

  it('permanent = false on a permanent session: cookie re-sent without Expires, flag stored', async () => {
    const { two, store, prefix, one } = await twoRequests(
      (ctx) => {
        ctx.session.x = 1;
      },
      (ctx) => {
        ctx.session.permanent = false;
        return String(ctx.session.modified);
      },
    );
    expect(one.setCookies[0]).toMatch(/Expires=/);
    expect(two.body).toBe('true');
    expect(two.setCookies).toHaveLength(1);
    expect(two.setCookies[0]).not.toMatch(/Expires=/);
    expect(String(await store.raw(prefix + sidOf(one.setCookies[0])))).toMatch(/^c2:\d+:0:/);
  });

  it('permanent = true on a browser-session session ("remember me"): persistent cookie', async () => {
    const { two } = await twoRequests(
      (ctx) => {
        ctx.session.x = 1;
      },
      (ctx) => {
        ctx.session.permanent = true;
      },
      { permanent: false },
    );
    expect(two.setCookies[0]).toMatch(/Expires=/);
  });

  it('permanent only takes a boolean', async () => {
    const { app } = await setup((ctx) => {
      try {
        (ctx.session as { permanent: unknown }).permanent = 'yes';
        return 'no error';
      } catch (error) {
        return (error as Error).message;
      }
    });
    expect((await app.request()).body).toBe('ctx.session.permanent must be a boolean, got string');
  });

  it('modified reports a change, and setting it to true forces a save of unchanged data', async () => {
    const { two, store } = await twoRequests(
      (ctx) => {
        ctx.session.x = 1;
      },
      (ctx) => {
        const before = ctx.session.modified;
        ctx.session.modified = true;
        return `${before}|${ctx.session.modified}`;
      },
      { refreshEachRequest: false },
    );
    expect(two.body).toBe('false|true');
    expect(store.count('set') + store.count('cas')).toBe(2);
  });

  it('assigning the same value is not a modification', async () => {
    const { two, store } = await twoRequests(
      (ctx) => {
        ctx.session.x = 1;
      },
      (ctx) => {
        ctx.session.x = 1;
        return String(ctx.session.modified);
      },
      { refreshEachRequest: false },
    );
    expect(two.body).toBe('false');
    expect(store.count('set') + store.count('cas')).toBe(1);
  });

  it('awaiting regenerate(), destroy() and clear() is safe', async () => {
    const { app } = await setup(async (ctx) => {
      ctx.session.x = 1;
      await ctx.session.regenerate();
      await ctx.session.clear();
      await ctx.session.destroy();
      return 'done';
    });
    expect((await app.request()).body).toBe('done');
  });

  it('destroy() then new data: the old record is deleted and a new session with a new sid is written', async () => {
    const { one, two, store, prefix } = await twoRequests(
      (ctx) => {
        ctx.session.user = 'ada';
      },
      async (ctx) => {
        await ctx.session.destroy();
        ctx.session.flash = 'logged out';
        return String(ctx.session.isNew);
      },
    );
    const oldSid = sidOf(one.setCookies[0]);
    const newSid = sidOf(two.setCookies[0]);
    expect(two.body).toBe('true');
    expect(newSid).not.toBe(oldSid);
    expect(await store.raw(prefix + oldSid)).toBeUndefined();
    expect(decodeStored(await store.raw(prefix + newSid))).toEqual({ flash: 'logged out' });
  });

  it('regenerate() on a new session just gives it a fresh sid', async () => {
    const { app, store } = await setup(async (ctx) => {
      const before = ctx.session.sid;
      await ctx.session.regenerate();
      ctx.session.x = 1;
      return before;
    });
    const reply = await app.request();
    expect(sidOf(reply.setCookies[0])).not.toBe(reply.body);
    expect(store.calls.map((c) => c.op)).toEqual(['set']);
  });
});

describe('saved data', () => {
  it('nested mutation reaches the store', async () => {
    let step = 0;
    const { app, store, prefix } = await setup((ctx) => {
      if (step++ === 0) ctx.session.cart = { items: ['apple'] };
      else (ctx.session.cart as { items: string[] }).items.push('pear');
    });
    const one = await app.request();
    await app.request('/', { cookie: cookiePair(one.setCookies[0]) });
    expect(decodeStored(await store.raw(prefix + sidOf(one.setCookies[0])))).toEqual({
      cart: { items: ['apple', 'pear'] },
    });
  });

  it('reading a nested object without changing it writes nothing', async () => {
    const { store, two } = await twoRequests(
      (ctx) => {
        ctx.session.cart = { items: ['apple'] };
      },
      (ctx) => String((ctx.session.cart as { items: string[] }).items.length),
      { refreshEachRequest: false },
    );
    expect(two.body).toBe('1');
    expect(store.count('set') + store.count('cas')).toBe(1);
  });
});
