// Whether a switch of hashSids is under way, so that a sid with nothing under its key is looked up under its key in
// the other layout only then: an unknown sid costs one read, as before hashSids existed, once a switch is over.
//
// The store says it, in one record beside the sessions: `<keyPrefix>~layout` ("~" never occurs in a sid), framed like a
// session record (JSON, so that a purge reads its expiry) and never listed by the operator command:
//   j2:<expires>:0:<versions>:::{"hashed":<the layout of the latest switch>,"since":<ms>,"until":<ms>}
// - A process that starts with the other setting than `hashed` switches: it writes its own, `since` now and `until` a
//   lifetime (and a margin) from now. Until then a session may still be stored in the other layout.
// - A running process with the other setting (an old one in a rolling deploy) keeps writing sessions there: it moves
//   `until` on at every check, so the switch lasts a lifetime past the last such process.
// - Every process reads the record at start-up; on a sid with nothing under its key it reads it again first when what
//   it knows is RECHECK old or more. So a process that has not heard of a switch learns of it at its first such miss
//   RECHECK after the switch began, at the latest.
// - A process whose layout a switch is to waits until GRACE (more than RECHECK) after `since` before it serves its
//   first request or moves its first session: by then no process decides a session is gone without having heard of it.
// - `migrate --hash-sids` ends the switch when it has moved every session (`until` now).
import { setTimeout as sleep } from 'node:timers/promises';
import { frameRecord, parseRecord } from './codec.js';
import { LAYOUT_NAME } from './names.js';
import type { SessionStore } from './store.js';

/** How old what a process knows of the switch may get before a miss reads the record again. */
export const RECHECK = 1_000;
/** How long after a switch began its processes wait before serving: RECHECK, and a margin for clocks and a read. */
export const GRACE = RECHECK + 500;
/** How long the record outlives `until` in the store: longer than any session lives. */
const KEPT = 400 * 86_400_000;

/** What the record says. */
export interface LayoutState {
  /** The layout of the latest switch: true for sessions under the hash of their sid. */
  readonly hashed: boolean;
  /** When that switch began (0: no switch is known). */
  readonly since: number;
  /** Until when a session may still be stored in the other layout. */
  readonly until: number;
}

/** The record, or undefined for none or one that cannot be read (it is written again). */
export function parseLayout(raw: string | undefined): LayoutState | undefined {
  if (raw === undefined) return undefined;
  try {
    const value = JSON.parse(parseRecord(raw).payload) as Partial<LayoutState>;
    const { hashed, since, until } = value;
    if (typeof hashed !== 'boolean' || typeof since !== 'number' || typeof until !== 'number') return undefined;
    return { hashed, since, until };
  } catch {
    return undefined;
  }
}

/** The stored record of `state`, and its TTL. */
export function layoutRecord(state: LayoutState, now: number): { raw: string; ttl: number } {
  const expires = Math.max(state.until, now) + KEPT;
  const raw = frameRecord(JSON.stringify(state), 'json', expires, false, { created: undefined });
  return { raw, ttl: expires - now };
}

export class LayoutSwitch {
  readonly #store: SessionStore;
  /** How long a session written now may live in the store (the longest idle lifetime), plus a margin. */
  readonly #span: number;
  readonly #report: (error: Error) => void;
  /** What this process knows; undefined until the record was read (then a miss looks in both layouts). */
  #known: LayoutState | undefined;
  #readAt = Number.NEGATIVE_INFINITY;
  #reading: Promise<void> | undefined;
  /** This process started: the first read of the record switches to its setting when the record says otherwise. */
  #starting = true;
  /** GRACE has passed since the latest switch to this process's layout it knows of (or there was none). */
  #settled = false;
  #settling: Promise<void> | undefined;

  constructor(store: SessionStore, longestLifetime: number, report: (error: Error) => void) {
    this.#store = store;
    this.#span = longestLifetime + 2 * RECHECK;
    this.#report = report;
  }

  /** Reads the record (at start-up, and when what this process knows is old), writing it when it must change. */
  check(now = Date.now(), deadline?: number): Promise<void> {
    this.#reading ??= this.#check(now, deadline).finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  /**
   * A request arrived. A process with the other setting than the latest switch's keeps writing sessions in its own
   * layout: every RECHECK it moves the end of the switch on (in the background).
   */
  tick(now: number): void {
    const known = this.#known;
    if (known === undefined || known.hashed === this.#store.names.hashed || now - this.#readAt < RECHECK) return;
    this.check(now).catch(() => undefined);
  }

  /**
   * True when a sid with nothing under its key may have its session under its key in the other layout. What this
   * process knows is read again first when it is older than RECHECK (a miss is what asks: a session found costs
   * nothing more).
   */
  async lookElsewhere(now: number, deadline: number): Promise<boolean> {
    if (now - this.#readAt >= RECHECK) await this.check(now, deadline);
    return this.#says(now);
  }

  /**
   * Undefined once this process may serve requests; before that (at start-up, and until GRACE after a switch to its
   * layout began), a promise of that time. Rejects only where a failed read of the record throws (the CLI).
   */
  settling(deadline?: number): Promise<void> | undefined {
    if (this.#settled) return undefined;
    this.#settling ??= this.#settle(deadline);
    return this.#settling;
  }

  async #settle(deadline: number | undefined): Promise<void> {
    if (this.#known === undefined) await this.check(Date.now(), deadline);
    const known = this.#known;
    // Not read (the store fails): requests go on, and fail or look in both layouts as the store allows.
    if (known !== undefined && known.hashed === this.#store.names.hashed) {
      const wait = known.since + GRACE - Date.now();
      if (wait > 0) await sleep(wait);
    }
    if (known !== undefined) this.#settled = true;
    this.#settling = undefined;
  }

  /**
   * Ends the switch to this process's layout, when every session has moved (`migrate --hash-sids`): an unknown sid
   * costs one read from now on. A process still running with the other setting starts it again at its next check.
   */
  async end(now = Date.now()): Promise<void> {
    const raw = await this.#store.loadRaw(LAYOUT_NAME);
    const stored = parseLayout(raw);
    if (stored === undefined || stored.hashed !== this.#store.names.hashed || stored.until <= now) return;
    const { raw: written, ttl } = layoutRecord({ ...stored, until: now }, now);
    if ((await this.#store.compareAndSet(LAYOUT_NAME, raw, written, ttl)).status === 'saved') {
      this.#known = { ...stored, until: now };
    }
  }

  #says(now: number): boolean {
    const known = this.#known;
    return known === undefined || known.hashed !== this.#store.names.hashed || now < known.until;
  }

  async #check(now: number, deadline: number | undefined): Promise<void> {
    try {
      const hashed = this.#store.names.hashed;
      for (let attempt = 0; attempt < 3; attempt++) {
        const raw = await this.#store.loadRaw(LAYOUT_NAME, deadline);
        const stored = parseLayout(raw);
        const next = this.#next(stored, hashed, Date.now());
        if (next === undefined) {
          this.#known = stored;
          break;
        }
        const { raw: written, ttl } = layoutRecord(next, Date.now());
        const result = await this.#store.compareAndSet(LAYOUT_NAME, raw, written, ttl, deadline);
        if (result.status === 'saved') {
          this.#known = next;
          break;
        }
      }
      this.#starting = false;
      this.#readAt = now;
    } catch (error) {
      // Until it is read, a sid with nothing under its key is looked up in both layouts, as at start-up.
      this.#report(error as Error);
    }
  }

  /** What the record must say now, or undefined when it says it already. */
  #next(stored: LayoutState | undefined, hashed: boolean, now: number): LayoutState | undefined {
    // A store without the record has seen no switch: its sessions are in this process's layout.
    if (stored === undefined) return { hashed, since: 0, until: 0 };
    if (stored.hashed === hashed) return undefined;
    // Starting with the other setting is a switch; running with it, this process writes sessions in its own layout.
    if (this.#starting) return { hashed, since: now, until: now + this.#span };
    return stored.until >= now + this.#span - 2 * RECHECK ? undefined : { ...stored, until: now + this.#span };
  }
}
