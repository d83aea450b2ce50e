// What the middleware calls for each request: the signer of its cookie, the live session the cookie names (in either
// key layout), and the commit of what the request changed, with its audit events. Built once per kvSession() on the
// parts wiring.ts makes; the public API (sessions.ts) works through the same object.
import type { Context } from 'koa';
import { AuditEvents, type EventTarget } from './audit.js';
import type { StoredMap } from './cbor.js';
import { CleanupScheduler } from './cleanup.js';
import { Committer } from './commit.js';
import { type KeysLike, type Signer, sidFromCookie, signerFor } from './cookie.js';
import { debugLog } from './debug.js';
import { messageOf, SessionError } from './errors.js';
import { pastAbsoluteLifetime } from './lifetime.js';
import type { CommitPlan, Taker } from './plan.js';
import type { StoredData, StoredRecord } from './record.js';
import { LayoutFinder } from './relayout.js';
import type { Settings } from './settings.js';
import { isWellFormedSid, sidFingerprint } from './sid.js';
import type { LoadedLazily } from './stored-session.js';
import type { NoSession } from './tombstone.js';
import { checkKeyLengths } from './warnings.js';
import { type Wired, wire } from './wiring.js';

const debug = debugLog('koa-kv-session');

/** What a request's session cookie led to: the live session it names, and whether it named one that is gone. */
export interface Found {
  readonly session:
    | {
        readonly sid: string;
        readonly stale: boolean;
        readonly record: StoredRecord;
        /** The data, or (CBOR) its payload, read key by key as the request asks (SessionState). */
        readonly data: StoredData | StoredMap;
      }
    | undefined;
  readonly dead: boolean;
}
export const NOTHING_FOUND: Found = { session: undefined, dead: false };

// Most requests carry at most one session cookie; a client cannot make us read the store more often than this.
const MAX_CANDIDATES = 2;

export class RequestSessions {
  readonly settings: Settings;
  /** The store, user index, revocations and key layout switch (wiring.ts), shared with the public API. */
  readonly parts: Wired;
  readonly #committer: Committer;
  /** Finds the session of a sid, in either key layout (relayout.ts). */
  readonly #finder: LayoutFinder;
  /** ctx.session.take() of a loaded session: its own compare-and-set, within the request's storeTimeout. */
  readonly taker: Taker;
  /** The background purge of expired records (cleanup.ts). */
  readonly cleanup: CleanupScheduler;
  /** The audit events, on the app of the request (outside one, of the latest request). */
  readonly events: AuditEvents;

  constructor(settings: Settings) {
    this.settings = settings;
    const report = (error: Error): void => this.report(error);
    this.parts = wire(settings, report);
    const { store, users, revoker, layout } = this.parts;
    this.events = new AuditEvents((error, ctx) => this.report(error, ctx));
    this.#committer = new Committer(store, settings, users, revoker);
    this.#finder = new LayoutFinder({ store, users, userKey: settings.userKey, report, layout });
    this.taker = (sid, base, key, deadline) => this.#committer.take(sid, base, key, deadline);
    this.cleanup = new CleanupScheduler(store, settings, report);
  }

  /** Hands an error the library handles without failing the request to onError (and the debug log). */
  report(error: Error, ctx?: Context): void {
    debug('%s', error.message);
    try {
      this.settings.onError?.(error, ctx);
    } catch (hookError) {
      debug('onError hook threw: %s', messageOf(hookError));
    }
  }

  /** A request arrived on `app`: events outside requests go there from now on, and a background purge may start. */
  onRequest(app: EventTarget): void {
    this.cleanup.onRequest();
    this.parts.layout.tick(Date.now());
    this.events.onRequest(app);
  }

  /**
   * The signer of session cookies: the `keys` option, else `keys` (the app's); throws SESSION_NO_KEYS when cookies are
   * signed and there are none.
   */
  signer(keys: unknown, method: string): Signer | undefined {
    const { cookie } = this.settings;
    const signer = cookie.signed ? signerFor((this.settings.keys ?? keys) as KeysLike | undefined) : undefined;
    if (signer !== undefined && this.settings.keys === undefined && Array.isArray(keys))
      checkKeyLengths(keys, 'app.keys');
    if (cookie.signed && signer === undefined) {
      throw new SessionError(
        'SESSION_NO_KEYS',
        method === 'request'
          ? "koa-kv-session: signed session cookies need secret keys: set app.keys = ['a long random secret'], pass " +
              'kvSession({ keys: [...] }), or set SESSION_SECRET_KEYS (or turn signing off with cookie.signed: false)'
          : `koa-kv-session: ${method}() checks signed cookies and needs the keys: pass the app, ${method}(header, ` +
              `app), or kvSession({ keys: [...] }), or set SESSION_SECRET_KEYS (app.keys is known only once the app ` +
              `has served a request)`,
      );
    }
    return signer;
  }

  /** True for a sid this configuration could have made: anything else is no session, and costs no store call. */
  isWellFormed = (sid: string): boolean => isWellFormedSid(sid, this.settings.sidLength);

  /** The live session of `sid`, in either key layout, or why there is none ('gone' past absoluteLifetime too). */
  async find(sid: string, now: number, deadline: number): Promise<LoadedLazily | NoSession> {
    return this.#withinLifetime(await this.#finder.load(sid, now, deadline), now);
  }

  /** Past absoluteLifetime, however active, a session is as if gone (its stored expiry never reaches past it). */
  #withinLifetime(loaded: LoadedLazily | NoSession, now: number): LoadedLazily | NoSession {
    return typeof loaded !== 'string' && pastAbsoluteLifetime(loaded.record, this.settings, now) ? 'gone' : loaded;
  }

  /**
   * The first live session the values of the session cookie name, as a request would load it, and
   * whether a verified value named a session that is gone (expired, destroyed, revoked; not one a
   * regenerate() moved): that cookie is dead, and the response clears it. With `ctx` (a request), each sid that
   * named no session is a `session:expired` event.
   */
  async loadFromValues(
    values: readonly string[],
    signer: Signer | undefined,
    deadline: number,
    ctx?: Context,
  ): Promise<Found> {
    let dead = false;
    const tried: string[] = [];
    for (const value of values) {
      const found = sidFromCookie(value, this.settings.cookie, signer, this.isWellFormed);
      // A sid already looked up (copies of one cookie) costs nothing more.
      if (found === undefined || tried.includes(found.sid)) continue;
      tried.push(found.sid);
      const now = Date.now();
      // The finder itself, not find(): a request's lookup has no async frame more than it needs.
      const loaded = this.#withinLifetime(await this.#finder.load(found.sid, now, deadline), now);
      if (typeof loaded !== 'string') {
        return {
          session: { sid: found.sid, stale: found.stale, record: loaded.record, data: loaded.data },
          dead: false,
        };
      }
      if (loaded !== 'moved') dead = true;
      // In a request: its audit event. (A cookie that names nothing is common: the event is made only if heard.)
      if (ctx !== undefined) this.events.emit('session:expired', ctx, () => ({ id: sidFingerprint(found.sid) }));
      if (tried.length >= MAX_CANDIDATES) break;
    }
    return { session: undefined, dead };
  }

  /** The store steps of a commit (commit.ts) for a request, with its events; resolves with the cookie to send. */
  commit(plan: CommitPlan, deadline: number, ctx: Context | undefined): Promise<CommitPlan['cookie']> {
    // No session is written before the layout record is read (and GRACE has passed after a switch to this layout):
    // what that waits for GRACE is no store time.
    const ready = this.parts.layout.ready(deadline);
    if (ready !== 0) return Promise.resolve(ready).then((waited) => this.commit(plan, deadline + waited, ctx));
    const describe = this.settings.describe;
    const label =
      describe === undefined || ctx === undefined
        ? undefined
        : () => {
            try {
              return describe(ctx);
            } catch (error) {
              this.report(error as Error, ctx);
              return undefined;
            }
          };
    return this.#committer.commit(
      plan,
      deadline,
      (error) => this.report(error, ctx),
      label,
      (event) => this.events.commit(event, ctx),
    );
  }
}
