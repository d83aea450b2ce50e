// Whether a switch of hashSids is under way, so that a sid with nothing under its key is looked up under its key in
// the other layout only then: an unknown sid costs one read, as before hashSids existed, once a switch is over.
//
// The store says it, in one record beside the sessions: `<keyPrefix>~layout` ("~" never occurs in a sid), framed like a
// session record (JSON, so that a purge reads its expiry) and never listed by the operator command:
//   j2:<expires>:0:<versions>:::{"hashed":<the layout of the latest switch>,"since":<ms>,"until":<ms>}
// - A process that starts with the other setting than `hashed` switches: it writes its own, `since` now and `until` as
//   long from now as a session may live (absoluteLifetime, else 400 days). Until then a session may still be stored in
//   the other layout.
// - A running process with the other setting (an old one in a rolling deploy) keeps writing sessions there: it moves
//   `until` on as it goes, so the switch lasts that long past the last such process.
// - Every process reads the record at start-up and every IDLE_RECHECK; on a sid with nothing under its key it reads it
//   again first when what it knows is RECHECK old or more. A process that has not heard of a switch learns of it at
//   its first such miss RECHECK after the switch began, at the latest.
// - A process whose layout a switch is to writes or moves its first session GRACE (more than RECHECK) after `since`:
//   by then no process decides a session is gone without having heard of the switch. Nor does it write one before it
//   has read the record.
// - `migrate --hash-sids` ends the switch when it has moved every session (`until` now), unless a process with the
//   other setting carried it on meanwhile.
import { setTimeout as sleep } from 'node:timers/promises';
import { frameRecord, parseRecord } from './record.js';
import { LAYOUT_NAME } from './names.js';
import { MAX_LIFETIME } from './parse.js';
import type { SessionStore } from './store.js';

/** How old what a process knows of the switch may get before a miss reads the record again. */
export const RECHECK = 1_000;
/** How often a process reads the record anyway (one with the other setting than the switch's: every RECHECK). */
export const IDLE_RECHECK = 10 * RECHECK;
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
  /** How long a session written now may stay in the store. */
  readonly #span: number;
  readonly #report: (error: Error) => void;
  /** What this process knows; undefined until the record was read (then a miss looks in both layouts). */
  #known: LayoutState | undefined;
  /** When the read behind #known was sent. */
  #readAt = Number.NEGATIVE_INFINITY;
  #reading: Promise<void> | undefined;
  /** Why the latest read failed: what a write waiting for the record fails with. */
  #failure: Error | undefined;
  /** This process started: the first read of the record switches to its setting when the record says otherwise. */
  #starting = true;
  /** GRACE has passed since the latest switch to this process's layout it knows of (or there was none). */
  #settled = false;

  /** A switch lasts as long as a session may live: `absoluteLifetime`, else the longest lifetime it may be given. */
  constructor(store: SessionStore, absoluteLifetime: number | undefined, report: (error: Error) => void) {
    this.#store = store;
    this.#span = absoluteLifetime ?? MAX_LIFETIME;
    this.#report = report;
  }

  /** Reads the record, writing it when it must change; joins a read under way. */
  check(deadline?: number): Promise<void> {
    this.#reading ??= this.#check(deadline).finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  /** A request arrived: the record is read again in the background once what this process knows is old. */
  tick(now: number): void {
    const known = this.#known;
    const every = known !== undefined && known.hashed !== this.#store.names.hashed ? RECHECK : IDLE_RECHECK;
    if (now - this.#readAt >= every && this.#reading === undefined) this.check().catch(() => undefined);
  }

  /**
   * True when a sid with nothing under its key (found so at `missedAt`) may have its session under its key in the
   * other layout. What this process knows is read again first when it was read RECHECK or more before the miss.
   */
  async lookElsewhere(missedAt: number, deadline: number): Promise<boolean> {
    if (missedAt - this.#readAt >= RECHECK) {
      await this.check(deadline);
      // A read already under way may have been sent too early: one more.
      if (missedAt - this.#readAt >= RECHECK) await this.check(deadline);
    }
    return this.#says(Date.now());
  }

  /**
   * 0 once this process may write or move sessions in its layout; before that, a promise of how long it waited for
   * GRACE after a switch to its layout began (not store time), which rejects with the store's error when the record
   * cannot be read.
   */
  ready(deadline?: number): number | Promise<number> {
    return this.#settled ? 0 : this.#settle(deadline);
  }

  async #settle(deadline: number | undefined): Promise<number> {
    if (this.#known === undefined) await this.check(deadline);
    const known = this.#known;
    if (known === undefined) throw this.#failure ?? this.#store.timeout('get');
    let wait = 0;
    if (known.hashed === this.#store.names.hashed) wait = Math.min(GRACE, known.since + GRACE - Date.now());
    if (wait > 0) await sleep(wait);
    this.#settled = true;
    return Math.max(0, wait);
  }

  /**
   * Ends the switch to this process's layout, when every session has moved (`migrate --hash-sids`): an unknown sid
   * costs one read from now on. False when it goes on: a process with the other setting carried it on since this one
   * read it, and may still write sessions there.
   */
  async end(now = Date.now()): Promise<boolean> {
    const raw = await this.#store.loadRaw(LAYOUT_NAME);
    const stored = parseLayout(raw);
    const known = this.#known;
    if (stored === undefined || stored.hashed !== this.#store.names.hashed) return false;
    if (known === undefined || stored.until !== known.until) return false;
    return stored.until <= now || this.#write(raw, { ...stored, until: now });
  }

  /** Writes `state` over the record `raw` (undefined: none) by compare-and-set; true when it was written. */
  async #write(raw: string | undefined, state: LayoutState, deadline?: number): Promise<boolean> {
    const { raw: written, ttl } = layoutRecord(state, Date.now());
    const saved = (await this.#store.compareAndSet(LAYOUT_NAME, raw, written, ttl, deadline)).status === 'saved';
    if (saved) this.#known = state;
    return saved;
  }

  #says(now: number): boolean {
    const known = this.#known;
    return known === undefined || known.hashed !== this.#store.names.hashed || now < known.until;
  }

  async #check(deadline: number | undefined): Promise<void> {
    const sent = Date.now();
    try {
      let done = false;
      for (let attempt = 0; attempt < 3 && !done; attempt++) {
        const raw = await this.#store.loadRaw(LAYOUT_NAME, deadline);
        const stored = parseLayout(raw);
        const next = this.#next(stored, Date.now());
        if (next === undefined) {
          this.#known = stored;
          done = true;
        } else done = await this.#write(raw, next, deadline);
      }
      // Three compare-and-sets lost to other processes: tried again at the next check, as if not read.
      if (done) {
        this.#starting = false;
        this.#readAt = sent;
      }
      this.#failure = undefined;
    } catch (error) {
      // Until it is read, a sid with nothing under its key is looked up in both layouts, as at start-up.
      this.#failure = error as Error;
      this.#report(error as Error);
    }
  }

  /** What the record must say now, or undefined when it says it already. */
  #next(stored: LayoutState | undefined, now: number): LayoutState | undefined {
    const hashed = this.#store.names.hashed;
    if (stored === undefined) {
      // Lost (evicted, deleted) while this process knew it: written back. Never seen: the store has seen no switch,
      // its sessions are in this process's layout.
      return this.#known ?? { hashed, since: 0, until: 0 };
    }
    if (stored.hashed === hashed) return undefined;
    // Starting with the other setting is a switch; running with it, this process writes sessions in its own layout.
    if (this.#starting) return { hashed, since: now, until: now + this.#span };
    return stored.until >= now + this.#span - IDLE_RECHECK ? undefined : { ...stored, until: now + this.#span };
  }
}
