// What a response says of the session: Set-Cookie (or the session header) and Vary, and how they survive a thrown 4xx.
import type { Context } from 'koa';
import { type CookieSettings, cookieValue, deletionCookie, serializeCookie, type Signer } from './cookie.js';
import { SessionError } from './errors.js';
import type { CommitPlan } from './plan.js';
import { warnOnce } from './warnings.js';

/** How the session travels on this request: the cookie, or the header a client opted into. */
export interface Channel {
  readonly cookie: CookieSettings;
  /** The session header (lower case) when the client sent it; undefined: the cookie. */
  readonly header: string | undefined;
  readonly signer: Signer | undefined;
}

/**
 * Sets what the response says of the session: `Vary` when the response depended on it, and the
 * cookie (or header) to send. Headers already sent: nothing can be set; a cookie that was due is reported.
 */
export function writeSession(
  ctx: Context,
  send: CommitPlan['cookie'],
  accessed: boolean,
  channel: Channel,
  report: (error: Error) => void,
): void {
  if (send !== undefined || accessed) {
    if (ctx.headerSent) {
      if (send !== undefined)
        report(
          new SessionError(
            'SESSION_HEADERS_SENT',
            'koa-kv-session: the response headers were already sent, so the session cookie could not be set',
          ),
        );
      return;
    }
    const varies = channel.header ?? 'Cookie';
    // The usual response has no Vary yet: set, not parsed and merged.
    if (ctx.response.get('Vary') === '') ctx.set('Vary', varies);
    else ctx.vary(varies);
  }
  if (send === undefined) return;
  const { cookie, signer } = channel;
  if (channel.header !== undefined) {
    ctx.set(channel.header, send === 'clear' ? '' : cookieValue(send.sid, cookie, signer));
    return;
  }
  const secure = cookie.secure === 'auto' ? ctx.secure : cookie.secure;
  const sent = cookie.sameSite === 'none' && !secure ? laxOverHttp(cookie) : cookie;
  const header =
    send === 'clear'
      ? deletionCookie(sent, secure)
      : serializeCookie(cookieValue(send.sid, cookie, signer), sent, secure, send.expires);
  if (cookie.overwrite) dropSetCookie(ctx, cookie.name);
  ctx.append('Set-Cookie', header);
}

/** An error that is an HTTP response below 500, as `ctx.throw(401)` makes. */
export interface HttpClientError {
  status: number;
  headers?: Record<string, unknown>;
}

export function isClientError(error: unknown): error is HttpClientError {
  if (typeof error !== 'object' || error === null) return false;
  const { status, statusCode } = error as { status?: unknown; statusCode?: unknown };
  const code = status ?? statusCode;
  return typeof code === 'number' && Number.isInteger(code) && code >= 400 && code < 500;
}

/**
 * Adds the response's `names` headers to the error's own, which Koa's error handler sets on the response it renders.
 */
export function carryHeaders(error: HttpClientError, ctx: Context, names: readonly string[]): void {
  const headers: Record<string, unknown> = { ...(error.headers ?? {}) };
  let carried = false;
  for (const name of names) {
    const value = ctx.response.get(name) as unknown;
    if (value === undefined || value === '' || (Array.isArray(value) && value.length === 0)) continue;
    headers[name] = value;
    carried = true;
  }
  if (!carried) return;
  try {
    error.headers = headers;
  } catch {
    // A frozen error keeps its headers: an upstream handler that renders it still sees ours on ctx.
  }
}

/** Removes the Set-Cookie headers of cookie `name` set earlier in this response (`cookie.overwrite`). */
function dropSetCookie(ctx: Context, name: string): void {
  const prior = ctx.response.get('Set-Cookie') as unknown;
  const list = Array.isArray(prior) ? (prior as string[]) : typeof prior === 'string' && prior !== '' ? [prior] : [];
  const kept = list.filter((header) => !header.startsWith(`${name}=`));
  if (kept.length === list.length) return;
  if (kept.length === 0) ctx.remove('Set-Cookie');
  else ctx.set('Set-Cookie', kept);
}

/**
 * Browsers drop a SameSite=None cookie that is not Secure, so the session would never stick: over
 * plain HTTP (secure "auto" on a request Koa sees as http) the cookie goes out SameSite=Lax, and the
 * first time that happens it is said, with the usual cause.
 */
function laxOverHttp(cookie: CookieSettings): CookieSettings {
  warnOnce(
    'KV_SESSION_SAMESITE_NONE_OVER_HTTP',
    'koa-kv-session: cookie.sameSite is "none" (SESSION_COOKIE_SAMESITE) but this request is plain HTTP, so the ' +
      'cookie cannot be Secure and browsers would drop it: it was sent SameSite=Lax. Behind a TLS proxy, set ' +
      'app.proxy = true so that ctx.secure sees https.',
  );
  return { ...cookie, sameSite: 'lax' };
}
