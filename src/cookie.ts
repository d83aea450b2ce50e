// Read and write the sid cookie: one cookie `<sid>.<signature>`, signed with HMAC-SHA256 and checked in constant time.
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

/** The sid cookie's attributes, resolved from the `cookie` option (settings.ts's `CookieOptions`). */
export interface CookieSettings {
  readonly name: string;
  readonly domain: string | undefined;
  readonly path: string;
  readonly httpOnly: boolean;
  readonly secure: boolean | 'auto';
  readonly sameSite: 'lax' | 'strict' | 'none' | false;
  readonly partitioned: boolean;
  readonly signed: boolean;
  readonly overwrite: boolean;
}

/** Signs and verifies cookie values; `index` is the position of the key that verifies, or -1. */
export interface Signer {
  sign(data: string): string;
  index(data: string, signature: string): number;
}

/** What Koa accepts as `app.keys`: an array of keys or a Keygrip instance. */
export type KeysLike =
  | readonly (string | Buffer)[]
  | { sign(data: string): string; index(data: string, digest: string): number };

const SIGNATURE_BYTES = 32;
const SIGNATURE_CHARS = 43;
const EPOCH = 'Thu, 01 Jan 1970 00:00:00 GMT';

// Signatures that verified recently: a returning cookie costs a Map lookup instead of an HMAC.
// Only successes are kept, keyed by the whole signed string, so nothing is learned from a hit.
// Both caches are bounded: when full they start over.
const VERIFIED_CACHE_SIZE = 10_000;

class HmacSigner implements Signer {
  readonly #keys: KeyObject[];
  readonly #verified = new Map<string, number>();
  /** Signatures made recently: a permanent session's cookie is re-sent often, its signature never changes. */
  readonly #signed = new Map<string, string>();

  constructor(keys: readonly (string | Buffer)[]) {
    this.#keys = keys.map((key) => createSecretKey(typeof key === 'string' ? Buffer.from(key) : key));
  }

  sign(data: string): string {
    let signature = this.#signed.get(data);
    if (signature === undefined) {
      signature = createHmac('sha256', this.#keys[0] as KeyObject)
        .update(data)
        .digest('base64url');
      if (this.#signed.size >= VERIFIED_CACHE_SIZE) this.#signed.clear();
      this.#signed.set(data, signature);
    }
    return signature;
  }

  index(data: string, signature: string): number {
    if (signature.length !== SIGNATURE_CHARS) return -1;
    const cacheKey = `${data}.${signature}`;
    const cached = this.#verified.get(cacheKey);
    if (cached !== undefined) return cached;
    const given = Buffer.from(signature, 'base64url');
    if (given.length !== SIGNATURE_BYTES) return -1;
    for (let i = 0; i < this.#keys.length; i++) {
      const expected = createHmac('sha256', this.#keys[i] as KeyObject)
        .update(data)
        .digest();
      if (timingSafeEqual(expected, given)) {
        if (this.#verified.size >= VERIFIED_CACHE_SIZE) this.#verified.clear();
        this.#verified.set(cacheKey, i);
        return i;
      }
    }
    return -1;
  }
}

let cachedKeys: KeysLike | undefined;
let cachedSigner: Signer | undefined;

/** A signer for these keys, or undefined when there are none. Cached: `app.keys` rarely changes. */
export function signerFor(keys: KeysLike | undefined): Signer | undefined {
  if (keys === undefined) return undefined;
  if (keys === cachedKeys) return cachedSigner;
  let signer: Signer | undefined;
  if (Array.isArray(keys)) {
    signer = keys.length > 0 ? new HmacSigner(keys as readonly (string | Buffer)[]) : undefined;
  } else if (typeof (keys as { sign?: unknown }).sign === 'function') {
    signer = keys as Signer;
  }
  cachedKeys = keys;
  cachedSigner = signer;
  return signer;
}

/** Every value the Cookie header holds for `name`, in order (browsers send the most specific path first). */
export function cookieValues(header: string | undefined, name: string): string[] {
  const values: string[] = [];
  if (!header) return values;
  const prefix = `${name}=`;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = header.length;
    let from = start;
    while (header.charCodeAt(from) === 32) from++;
    if (header.startsWith(prefix, from)) {
      let value = header.slice(from + prefix.length, end).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      values.push(value);
    }
    start = end + 1;
  }
  return values;
}

/** The value to put in the cookie for `sid`. */
export function cookieValue(sid: string, cookie: CookieSettings, signer: Signer | undefined): string {
  if (!cookie.signed || signer === undefined) return sid;
  return `${sid}.${signer.sign(`${cookie.name}=${sid}`)}`;
}

/**
 * The sid a cookie value carries if its signature verifies: `{ sid, stale }`, where `stale` means an
 * older key signed it (the cookie is re-signed with the first key). Undefined for anything else.
 */
export function sidFromCookie(
  value: string,
  cookie: CookieSettings,
  signer: Signer | undefined,
  isWellFormed: (sid: string) => boolean,
): { sid: string; stale: boolean } | undefined {
  if (!cookie.signed) return isWellFormed(value) ? { sid: value, stale: false } : undefined;
  if (signer === undefined) return undefined;
  const dot = value.lastIndexOf('.');
  if (dot === -1) return undefined;
  const sid = value.slice(0, dot);
  // The cheap shape check comes first: a malformed sid costs no HMAC and never reaches the store.
  if (!isWellFormed(sid)) return undefined;
  const index = signer.index(`${cookie.name}=${sid}`, value.slice(dot + 1));
  return index === -1 ? undefined : { sid, stale: index > 0 };
}

function attributes(cookie: CookieSettings, secure: boolean): string {
  let text = `; Path=${cookie.path}`;
  if (cookie.domain !== undefined) text += `; Domain=${cookie.domain}`;
  if (secure) text += '; Secure';
  if (cookie.httpOnly) text += '; HttpOnly';
  if (cookie.sameSite === 'lax') text += '; SameSite=Lax';
  else if (cookie.sameSite === 'strict') text += '; SameSite=Strict';
  else if (cookie.sameSite === 'none') text += '; SameSite=None';
  if (cookie.partitioned) text += '; Partitioned';
  return text;
}

/** A Set-Cookie value; `expires` (ms since the epoch) makes it persistent, none makes it a browser-session cookie. */
export function serializeCookie(
  value: string,
  cookie: CookieSettings,
  secure: boolean,
  expires: number | undefined,
): string {
  const lifetime = expires === undefined ? '' : `; Expires=${new Date(expires).toUTCString()}`;
  return `${cookie.name}=${value}${lifetime}${attributes(cookie, secure)}`;
}

/** A Set-Cookie value that removes the cookie: it repeats every attribute, or browsers keep the original. */
export function deletionCookie(cookie: CookieSettings, secure: boolean): string {
  return `${cookie.name}=; Expires=${EPOCH}; Max-Age=0${attributes(cookie, secure)}`;
}
