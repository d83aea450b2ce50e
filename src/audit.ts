// The audit events (`session:created`, `session:regenerated`, `session:destroyed`, `session:revoked`,
// `session:expired`), emitted on the Koa app: made only when someone listens, never failing a request.
import type { Context } from 'koa';
import type { CommitEvent } from './plan.js';
import { sidFingerprint } from './sid.js';

/**
 * What an audit event carries (`app.on('session:created', (event) => ...)`): never the sid.
 * Events: `session:created`, `session:regenerated`, `session:destroyed`, `session:revoked`,
 * `session:expired` (a cookie named a session that is gone or past its expiry).
 */
export interface SessionEvent {
  /** The request it happened in; undefined for `revokeSession()`, `revokeUserSessions()`, `update()`. */
  readonly ctx?: Context | undefined;
  /** The session's safe id (as `listUserSessions()` entries and `sessionId(ctx)` give it). */
  readonly id: string;
  /** The user (the `userKey` field) where known. */
  readonly user?: string | undefined;
  /** `session:regenerated`: the id of the session before the new sid. */
  readonly previousId?: string | undefined;
}

/** The app events go to: the app of the latest request, outside one. */
export interface EventTarget {
  readonly keys?: unknown;
  listenerCount(name: string): number;
  emit(name: string, event: SessionEvent): unknown;
}

export class AuditEvents {
  readonly #report: (error: Error, ctx?: Context) => void;
  #lastApp: EventTarget | undefined;

  /** `report`: where a listener's throw goes (onError), instead of failing the request. */
  constructor(report: (error: Error, ctx?: Context) => void) {
    this.#report = report;
  }

  /**
   * The app of the latest request: where events outside a request (revokeSession()...) are emitted, and whose keys
   * load() checks signatures with.
   */
  get lastApp(): EventTarget | undefined {
    return this.#lastApp;
  }

  onRequest(app: EventTarget): void {
    this.#lastApp = app;
  }

  /** Emits an audit event on the app; it is made (a SHA-256 of the sid, at least) only when someone listens. */
  emit(name: string, ctx: Context | undefined, make: () => Omit<SessionEvent, 'ctx'>): void {
    const app = ctx?.app ?? this.#lastApp;
    if (app === undefined || app.listenerCount(name) === 0) return;
    try {
      app.emit(name, { ctx, ...make() });
    } catch (error) {
      this.#report(error as Error, ctx);
    }
  }

  /** The event of what a commit did. */
  commit(event: CommitEvent, ctx: Context | undefined): void {
    this.emit(`session:${event.kind}`, ctx, () => {
      const made = { id: event.kind === 'revoked' ? event.id : sidFingerprint(event.sid), user: event.user };
      return event.kind === 'regenerated' ? { ...made, previousId: sidFingerprint(event.from) } : made;
    });
  }
}
