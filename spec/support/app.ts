// Real HTTP against a real Koa app: starting one with kvSession(), sending requests, reading cookies back.
import type { AddressInfo } from 'node:net';
import Koa, { type Context } from 'koa';
import { kvSession, type KvSessionMiddleware, type KvSessionOptions, type StoreOption } from '../../src/index.js';

export interface Reply {
  status: number;
  body: string;
  setCookies: string[];
  vary: string | null;
  headers: Headers;
}

export interface TestApp {
  readonly app: Koa;
  /** What kvSession() was given. */
  readonly options: KvSessionOptions;
  readonly middleware: KvSessionMiddleware;
  readonly url: string;
  /** Sends a request; `cookie` is the Cookie header. */
  request(path?: string, init?: { cookie?: string; headers?: Record<string, string> }): Promise<Reply>;
  close(): Promise<void>;
}

export type Handler = (ctx: Context) => unknown | Promise<unknown>;

/**
 * A Koa app on a free loopback port with kvSession(options) and one handler. `configure` runs before
 * kvSession() is added (middleware in front of it), `after` once it is (middleware behind it).
 */
export async function startApp(
  options: KvSessionOptions,
  handler: Handler,
  configure?: (app: Koa) => void,
  after?: (app: Koa) => void,
): Promise<TestApp> {
  const app = new Koa();
  app.keys = ['test-key-new-0123456789', 'test-key-old-0123456789'];
  app.silent = true;
  if (process.env.KV_SESSION_TEST_LOG_ERRORS)
    app.on('error', (error) => console.error('app error:', error.code, error.message));
  configure?.(app);
  const middleware = kvSession(options);
  app.use(middleware);
  after?.(app);
  app.use(async (ctx) => {
    const result = await handler(ctx);
    if (result !== undefined && ctx.body === undefined) ctx.body = result as string;
    if (ctx.body === undefined) ctx.body = 'ok';
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    app,
    options,
    middleware,
    url,
    async request(path = '/', init = {}) {
      const headers: Record<string, string> = { ...init.headers };
      if (init.cookie !== undefined) headers.cookie = init.cookie;
      const response = await fetch(url + path, { headers, redirect: 'manual' });
      return {
        status: response.status,
        body: await response.text(),
        setCookies: response.headers.getSetCookie(),
        vary: response.headers.get('vary'),
        headers: response.headers,
      };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await middleware.close();
    },
  };
}

/** `name=value` of a Set-Cookie header, ready to send back as a Cookie header. */
/**
 * A store a spec built from a third-party package it holds as `object` or `unknown` (its types are not
 * imported), handed in as `store` as an app hands it in: the one cast the specs need for it.
 */
export function asStore(store: unknown): StoreOption {
  return store as StoreOption;
}

export function cookiePair(setCookie: string | undefined): string {
  if (setCookie === undefined) throw new Error('expected a Set-Cookie header');
  return setCookie.split(';')[0] as string;
}

/** The sid inside a signed cookie value (`<sid>.<signature>`). */
export function sidOf(setCookie: string | undefined): string {
  const value = cookiePair(setCookie).split('=')[1] as string;
  return value.split('.')[0] as string;
}

/**
 * A signed value (`<sid>.<signature>`) with a signature that does not verify: its first character changed. (Changing
 * the last characters can miss: the last one may differ only in padding bits, and they may be "A" already.)
 */
export function withBadSignature(value: string): string {
  const [sid, signature] = value.split('.') as [string, string];
  return `${sid}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
}

/** Attributes of a Set-Cookie header, lower-cased names. */
export function attributesOf(setCookie: string): Map<string, string | true> {
  const map = new Map<string, string | true>();
  for (const part of setCookie.split(';').slice(1)) {
    const [name, ...rest] = part.trim().split('=');
    map.set((name as string).toLowerCase(), rest.length ? rest.join('=') : true);
  }
  return map;
}

/** A promise and its resolver: lets a test hold a request open until it says so. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}
