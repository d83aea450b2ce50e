// Error classes with stable codes: what applications match on, and what the README documents.

/** Every code an error of this library can carry. */
export type SessionErrorCode =
  | 'SESSION_INVALID_OPTION'
  | 'SESSION_NO_KEYS'
  | 'SESSION_STORE_UNAVAILABLE'
  | 'SESSION_STORE_TIMEOUT'
  | 'SESSION_TOO_LARGE'
  | 'SESSION_UNENCODABLE'
  | 'SESSION_RECORD_CORRUPT'
  | 'SESSION_ADAPTER_MISSING'
  | 'SESSION_HEADERS_SENT'
  | 'SESSION_CONFLICT'
  | 'SESSION_INVALID_USER'
  | 'SESSION_UNSUPPORTED'
  | 'SESSION_STORE_NOT_ATOMIC'
  | 'SESSION_STORE_MISSING';

// The ESM and the CommonJS build are two copies of this module: an error made by one must still be
// an instance of the other's classes. Each error carries the names of its classes under a global
// symbol, and instanceof asks for those.
const KINDS = Symbol.for('koa-kv-session.error-kinds');

/** Base class: `code` is stable across versions, `status` is what Koa answers with. */
export class SessionError extends Error {
  readonly code: SessionErrorCode;
  /** HTTP status Koa uses when this error fails a request. */
  readonly status: number;
  /** Koa shows `message` to the client only when `expose` is true; ours are for operators. */
  readonly expose = false;

  constructor(code: SessionErrorCode, message: string, status = 500, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    const kinds: string[] = [];
    for (
      let kind: unknown = new.target;
      typeof kind === 'function' && kind !== Error;
      kind = Object.getPrototypeOf(kind)
    )
      kinds.push((kind as { name: string }).name);
    Object.defineProperty(this, KINDS, { value: kinds });
  }

  /** `error instanceof SessionError` (or a subclass) holds across the ESM and CommonJS builds. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    const kinds: unknown = typeof value === 'object' && value !== null ? Reflect.get(value, KINDS) : undefined;
    // `this` is the class instanceof asks about (a subclass too), not always SessionError.
    // biome-ignore lint/complexity/noThisInStatic: see the line above
    return Array.isArray(kinds) && kinds.includes(this.name);
  }
}

/**
 * What a thrown value says: an Error's message, or the value itself as text (a driver may throw a string or nothing).
 */
export function messageOf(error: unknown): string {
  return error instanceof Error ||
    (typeof error === 'object' && error !== null && typeof (error as Error).message === 'string')
    ? (error as Error).message
    : String(error);
}

/** True for any error of koa-kv-session, from either build (ESM or CommonJS): the same as `instanceof SessionError`. */
export function isSessionError(value: unknown): value is SessionError {
  return value instanceof SessionError;
}

/** An option or `SESSION_*` variable has a value we cannot use; thrown by `kvSession()`. */
export class SessionOptionError extends SessionError {
  /** The option (`cookie.sameSite`) or environment variable (`SESSION_LIFETIME`) at fault. */
  readonly option: string;

  constructor(option: string, message: string) {
    super('SESSION_INVALID_OPTION', `koa-kv-session: ${option}: ${message}`);
    this.option = option;
  }
}

/** The store failed, was unreachable or answered too late; the request fails with 503. */
export class SessionStoreError extends SessionError {
  /** Which store call failed. */
  readonly operation: 'connect' | 'get' | 'set' | 'delete' | 'purge' | 'close';

  constructor(
    code: 'SESSION_STORE_UNAVAILABLE' | 'SESSION_STORE_TIMEOUT',
    operation: SessionStoreError['operation'],
    message: string,
    cause?: unknown,
  ) {
    super(code, message, 503, { cause });
    this.operation = operation;
  }
}

/** A record over `maxSize`: refused before anything is stored. */
export function tooLarge(bytes: number, max: number): SessionError {
  return new SessionError(
    'SESSION_TOO_LARGE',
    `koa-kv-session: the session record is ${bytes} bytes, over maxSize (${max}); nothing was saved`,
  );
}
