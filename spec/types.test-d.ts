// Types: declaration merging of SessionData makes ctx.session type-check and autocomplete in handlers.
import Koa from 'koa';
import { describe, expectTypeOf, it } from 'vitest';
import {
  kvSession,
  sessionExpires,
  type KvSessionMiddleware,
  type Session,
  type SessionError,
  type UserSession,
} from '../src/index.js';

declare module '../src/index.js' {
  interface SessionData {
    userId: string;
    cart: { items: string[] };
  }
}

describe('ctx.session types', () => {
  it('declared fields are typed (optional: a new session has none of them)', () => {
    const app = new Koa();
    app.use(kvSession({ store: 'memory://' }));
    app.use((ctx) => {
      expectTypeOf(ctx.session.userId).toEqualTypeOf<string | undefined>();
      expectTypeOf(ctx.session.cart).toEqualTypeOf<{ items: string[] } | undefined>();
      ctx.session.userId = 'u1';
      // @ts-expect-error userId is a string
      ctx.session.userId = 42;
      // @ts-expect-error unknown keys are refused once SessionData is declared
      ctx.session.nosuch = 1;
    });
  });

  it('control members have their own types', () => {
    const app = new Koa();
    app.use(async (ctx) => {
      expectTypeOf(ctx.session.sid).toEqualTypeOf<string>();
      expectTypeOf(ctx.session.isNew).toEqualTypeOf<boolean>();
      expectTypeOf(ctx.session.permanent).toEqualTypeOf<boolean>();
      expectTypeOf(ctx.session.regenerate).returns.toEqualTypeOf<Promise<void>>();
      expectTypeOf(ctx.session.destroy).returns.toEqualTypeOf<Promise<void>>();
      ctx.session.permanent = true;
      // @ts-expect-error sid is read-only
      ctx.session.sid = 'x';
      await ctx.session.regenerate();
    });
  });

  it('take() and update() are typed by the field they name', () => {
    const app = new Koa();
    app.use(async (ctx) => {
      expectTypeOf(await ctx.session.take('userId')).toEqualTypeOf<string | undefined>();
      expectTypeOf(ctx.session.update('cart', (cart) => ({ items: [...(cart?.items ?? []), 'sku'] }))).toEqualTypeOf<
        { items: string[] } | undefined
      >();
      // @ts-expect-error only declared fields can be taken
      await ctx.session.take('nosuch');
      // @ts-expect-error fn must return the field's type
      ctx.session.update('userId', () => 42);
    });
  });

  it('ctx.session can be assigned data or null', () => {
    const app = new Koa();
    app.use((ctx) => {
      ctx.session = { userId: 'u2' };
      ctx.session = null;
      // @ts-expect-error a number is not session data
      ctx.session = 5;
    });
  });

  it('kvSession() returns Koa middleware with ready() and close()', () => {
    expectTypeOf(kvSession).parameter(0).toMatchTypeOf<object | undefined>();
    expectTypeOf<KvSessionMiddleware>().toMatchTypeOf<Koa.Middleware>();
    expectTypeOf<KvSessionMiddleware['close']>().returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf<Session['sid']>().toEqualTypeOf<string>();
    expectTypeOf<SessionError['code']>().toMatchTypeOf<string>();
  });

  it('options autocomplete and are checked', () => {
    kvSession({ store: 'memory://', serialization: 'json', cookie: { sameSite: 'strict' } });
    // @ts-expect-error serialization is 'cbor' | 'json'
    kvSession({ serialization: 'xml' });
    // @ts-expect-error unknown option
    kvSession({ lifetme: '1h' });
  });

  it('user sessions and sessionExpires() are typed', () => {
    const sessions = kvSession({ store: 'memory://', userKey: 'userId' });
    expectTypeOf(sessions.listUserSessions).parameter(0).toEqualTypeOf<string | number>();
    expectTypeOf(sessions.listUserSessions).returns.toEqualTypeOf<Promise<UserSession[]>>();
    expectTypeOf(sessions.revokeUserSessions).returns.toEqualTypeOf<Promise<number>>();
    expectTypeOf<UserSession['expires']>().toEqualTypeOf<Date>();
    expectTypeOf<UserSession['sid']>().toEqualTypeOf<string>();
    const app = new Koa();
    app.use((ctx) => {
      expectTypeOf(sessionExpires(ctx)).toEqualTypeOf<Date | undefined>();
    });
    // @ts-expect-error userKey is a field name
    kvSession({ userKey: 1 });
  });

  it('what load(), listUserSessions() and update() give is the declared SessionData, and userKey names one of its fields', async () => {
    const sessions = kvSession({ store: 'memory://', userKey: 'userId' });
    type Declared = Partial<{ userId: string; cart: { items: string[] } }>;
    expectTypeOf<UserSession['data']>().toEqualTypeOf<Declared>();
    expectTypeOf<NonNullable<Awaited<ReturnType<typeof sessions.load>>>['data']>().toEqualTypeOf<Declared>();
    const loaded = await sessions.load(undefined);
    if (loaded !== undefined) expectTypeOf(loaded.data.userId).toEqualTypeOf<string | undefined>();
    await sessions.update('sid', (session) => {
      session.userId = 'u2';
      // @ts-expect-error update() sees the declared fields too
      session.userId = 3;
    });
    // @ts-expect-error userKey must be a declared field once SessionData is declared
    kvSession({ userKey: 'userid' });
  });
});
