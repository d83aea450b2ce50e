// The public API beside the middleware (sessions-api.ts): what works on sessions beyond one request (ready, close,
// purge, list, revoke, load, update), through the same parts and committer as requests (requests.ts).
import { createdOf } from './lifetime.js';
import type { RequestSessions } from './requests.js';
import { SessionState } from './session.js';
import type { Session } from './session-types.js';
import type { LoadedSession, SessionsApi } from './sessions-api.js';
import { cookieValues, type KeysLike } from './cookie.js';
import { SessionError } from './errors.js';
import { sidFingerprint } from './sid.js';
import { purgeExpired } from './store-scan.js';
import type { StoreAbilities } from './store-types.js';
import { dataOf } from './unread.js';
import type { UserIndex, UserSession } from './users.js';

export class Sessions implements SessionsApi {
  readonly #requests: RequestSessions;
  #startup: Promise<void>;
  /** The latest probe failed: the next ready() probes again (the store may be back). */
  #startupFailed = false;
  readonly #settled: Promise<void>;

  /** Starts a probe of the store at once: ready() resolves with its outcome. */
  constructor(requests: RequestSessions) {
    this.#requests = requests;
    this.#startup = this.#probe();
    this.#settled = this.#startup.then(
      () => undefined,
      (error: Error) => requests.report(error),
    );
  }

  /** The sessions service bound, to sit on the middleware: a member of SessionsApi missing here fails to compile. */
  bound(): SessionsApi {
    return {
      ready: this.ready.bind(this),
      close: this.close.bind(this),
      purge: this.purge.bind(this),
      listUserSessions: this.listUserSessions.bind(this),
      revokeUserSessions: this.revokeUserSessions.bind(this),
      revokeSession: this.revokeSession.bind(this),
      load: this.load.bind(this),
      update: this.update.bind(this),
    };
  }

  /** A read of a key that is never written, bounded by storeTimeout; remembers a failure for the next ready(). */
  #probe(): Promise<void> {
    this.#startupFailed = false;
    const probe = this.#requests.parts.store.probe();
    probe.catch(() => {
      this.#startupFailed = true;
    });
    // Then whether a switch of hashSids is under way (this process's own setting may start one).
    return probe.then(() => this.#requests.parts.layout.check());
  }

  async ready(): Promise<StoreAbilities> {
    if (this.#startupFailed) this.#startup = this.#probe();
    // The deadline sweeper never keeps a process alive (a request does): awaited at start-up with
    // nothing else running, ready() would otherwise end the process instead of settling.
    const hold = setInterval(() => {}, 60_000);
    try {
      await this.#startup;
      return await this.#requests.parts.store.abilities();
    } finally {
      clearInterval(hold);
    }
  }

  purge(): Promise<number> {
    return purgeExpired(this.#requests.parts.store);
  }

  async listUserSessions(user: string | number): Promise<UserSession[]> {
    return this.#index('listUserSessions').list(userArgument('listUserSessions', user));
  }

  async revokeUserSessions(user: string | number, options?: { readonly except?: string }): Promise<number> {
    const id = userArgument('revokeUserSessions', user);
    this.#index('revokeUserSessions');
    const { parts, events } = this.#requests;
    const revoked = await parts.revoker.revokeUser(id, options?.except, (error) => this.#requests.report(error));
    for (const ended of revoked) events.emit('session:revoked', undefined, () => ({ id: ended.id, user: id }));
    return revoked.length;
  }

  async revokeSession(session: string | { readonly user: string | number; readonly id: string }): Promise<boolean> {
    if (typeof session === 'string') return this.#revokeSid(session);
    if (typeof session !== 'object' || session === null || typeof session.id !== 'string') {
      throw new TypeError(
        'koa-kv-session: revokeSession() takes a sid, or { user, id } with the id of a listUserSessions() entry',
      );
    }
    const user = userArgument('revokeSession', session.user);
    // The index names the sessions, and the safe ids they had before a regenerate(): no session is read.
    const name = await this.#index('revokeSession').withId(user, session.id);
    return name === undefined ? false : this.#revoke(name, user);
  }

  /** A sid from the caller: one that could not have been made is no session, and costs no store call. */
  #revokeSid(sid: string): Promise<boolean> {
    return typeof sid !== 'string' || !this.#requests.isWellFormed(sid) ? Promise.resolve(false) : this.#revoke(sid);
  }

  /**
   * Signs a live session out (following it through a racing regenerate()); false when there was none. `name`: a sid, or
   * a name the index gave.
   */
  async #revoke(name: string, user?: string): Promise<boolean> {
    const { parts, events } = this.#requests;
    const ended = await parts.revoker.revoke(name, { user, report: (error) => this.#requests.report(error) });
    if (ended !== undefined) events.emit('session:revoked', undefined, () => ({ id: ended.id, user: ended.user }));
    return ended !== undefined;
  }

  async load(
    header: string | undefined,
    app?: { readonly keys?: KeysLike | undefined },
  ): Promise<LoadedSession | undefined> {
    if (header !== undefined && typeof header !== 'string')
      throw new TypeError('koa-kv-session: load() takes the Cookie header (a string), or undefined');
    if (app !== undefined && (app === null || typeof app !== 'object'))
      throw new TypeError(
        'koa-kv-session: load(header, app) takes the Koa app (or an object with its keys) as second argument',
      );
    const requests = this.#requests;
    const { settings } = requests;
    const signer = requests.signer(app?.keys ?? requests.events.lastApp?.keys, 'load');
    const { session: found } = await requests.loadFromValues(
      cookieValues(header, settings.cookie.name),
      signer,
      Date.now() + settings.storeTimeout,
    );
    if (found === undefined) return undefined;
    const { sid, record, data } = found;
    return {
      sid,
      id: sidFingerprint(sid),
      data: dataOf(data),
      permanent: record.permanent,
      expires: new Date(record.expires),
      createdAt: record.created === undefined ? undefined : new Date(createdOf(record, settings)),
    };
  }

  async update(sid: string, change: (session: Session) => void | Promise<void>): Promise<boolean> {
    if (typeof change !== 'function')
      throw new TypeError('koa-kv-session: update(sid, change) takes a function that changes the session');
    const requests = this.#requests;
    const { settings } = requests;
    if (typeof sid !== 'string' || !requests.isWellFormed(sid)) return false;
    const started = Date.now();
    const loaded = await requests.find(sid, started, started + settings.storeTimeout);
    if (typeof loaded === 'string') return false;
    const loadSpent = Date.now() - started;
    const state = new SessionState(
      settings,
      { sid, record: loaded.record, data: loaded.data, staleCookie: false, storeSpent: loadSpent },
      requests.taker,
    );
    await change(state.proxy);
    const plan = state.plan(Date.now());
    // The time change() took is not the store's: the commit has what loading and takes left.
    const cookieAfter = await requests.commit(plan, Date.now() + settings.storeTimeout - state.storeSpent, undefined);
    // A write that found the record gone clears the cookie: the session was destroyed or revoked meanwhile.
    return !(plan.write !== undefined && cookieAfter === 'clear');
  }

  async close(): Promise<void> {
    // The timer stops at once; a purge under way is waited for.
    const stopped = this.#requests.cleanup.stop();
    await this.#settled;
    await stopped;
    await this.#requests.parts.store.close();
  }

  #index(method: string): UserIndex {
    const users = this.#requests.parts.users;
    if (users === undefined) {
      throw new SessionError(
        'SESSION_INVALID_OPTION',
        `koa-kv-session: ${method}() needs the userKey option (or SESSION_USER_KEY): the session field that holds ` +
          `the user id`,
      );
    }
    return users;
  }
}

/** A user id as the API takes it: a non-empty string or a finite number, as a string. */
function userArgument(method: string, user: unknown): string {
  const usable = (typeof user === 'string' && user !== '') || (typeof user === 'number' && Number.isFinite(user));
  if (!usable)
    throw new TypeError(
      `koa-kv-session: ${method}() takes a user id (a non-empty string or a number), got ` +
        `${typeof user === 'string' ? '""' : typeof user}`,
    );
  return String(user);
}
