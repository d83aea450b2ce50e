// A session stored before hashSids was switched (on or off) moves into the configured key layout at its first request:
// like a regenerate() that keeps the sid, so nobody is signed out.
import { decodeRecord } from './codec.js';
import { parseRecord, relaidRecord } from './record.js';
import { movedTo, TOMBSTONE_LIFETIME, recordStatus, movedTombstone, type NoSession } from './tombstone.js';
import type { LayoutSwitch } from './layout-switch.js';
import type { SessionStore } from './store.js';
import { decodeSession, type Loaded, type LoadedLazily } from './stored-session.js';
import { storedUserOf } from './user-id.js';
import type { UserIndex } from './users.js';

// A copy under the old name that a process with the other setting keeps changing is followed this often.
const ROUNDS = 3;

export interface Relayout {
  readonly store: SessionStore;
  readonly users: UserIndex | undefined;
  readonly userKey: string | undefined;
  readonly report: (error: Error) => void;
  /** Whether a switch of hashSids is under way (layout-switch.ts). */
  readonly layout: LayoutSwitch;
}

/**
 * Moves the session of `sid`, found under `from` (the other layout's name), to its name in the
 * configured layout, and resolves with it there. The order is a regenerate()'s: the user index names
 * the new place first, the record is created there only if nothing is (a concurrent request of the
 * same browser may have moved it already: then that copy is the session), and the old record is
 * retired by compare-and-set, so a logout or revocation that came first stays: the new copy is
 * deleted again and the session is 'gone'. Moving under the hash, the old key (the sid itself) is
 * then deleted; moving back, its tombstone stays for requests in flight, as a regenerate()'s does.
 */
export async function relayout(
  context: Relayout,
  sid: string,
  from: string,
  loaded: Loaded,
  deadline: number,
): Promise<Loaded | NoSession> {
  const { store, users, userKey } = context;
  const hashed = store.names.hashed;
  const user = userKey === undefined ? undefined : storedUserOf(loaded.data, userKey);
  if (users !== undefined && user !== undefined) await users.alias(user, from, sid, loaded.record.expires, deadline);
  let current = loaded;
  let raw = relaidRecord(current.record, hashed);
  const ttl = () => Math.max(1, current.record.expires - Date.now());
  const created = await store.compareAndSet(sid, undefined, raw, ttl(), deadline);
  if (created.status !== 'saved') return liveOr(created.status === 'conflict' ? created.current : undefined);
  for (let round = 1; ; round++) {
    const retired = await store.compareAndSet(
      from,
      current.record.raw,
      movedTombstone(store.names.storedName(sid), store.names.isHashed(from)),
      Math.min(ttl(), TOMBSTONE_LIFETIME),
      deadline,
    );
    if (retired.status === 'saved') {
      // The old key of a session moving under its hash is its sid: it leaves the store at once.
      if (hashed) await store.remove(from, deadline);
      if (users !== undefined && user !== undefined) await users.untrack(user, [from], deadline).catch(context.report);
      break;
    }
    const fate = retired.status === 'gone' ? 'gone' : recordStatus(retired.current, Date.now());
    const newer =
      fate === 'live' && retired.status === 'conflict' ? liveOr(retired.current) : fate === 'live' ? 'gone' : fate;
    if (typeof newer === 'string') {
      // Ended (or regenerated) under the old name meanwhile: it stays so.
      await store.remove(sid, deadline);
      return newer;
    }
    // Written under the old name meanwhile, by a process with the other setting: that copy is newer.
    // Once a request has written the new copy too, the new one is the session; the old one is left
    // as it is (and in the user index, so revoking the user ends both).
    const next = relaidRecord(newer.record, hashed);
    if (
      round === ROUNDS ||
      (await store.compareAndSet(sid, raw, next, Math.max(1, newer.record.expires - Date.now()), deadline)).status !==
        'saved'
    )
      break;
    current = newer;
    raw = next;
  }
  return { record: parseRecord(raw), data: current.data };
}

/**
 * Loads sessions by sid, moving each one found in the other key layout first: one move at a time per sid in this
 * process.
 */
export class LayoutFinder {
  readonly #context: Relayout;
  readonly #moving = new Map<string, Promise<void>>();

  constructor(context: Relayout) {
    this.#context = context;
  }

  /**
   * The session a cookie's sid names, or why there is none: 'moved' when a regenerate() retired it (its browser may
   * hold the new sid), else 'gone'. A session found in the other key layout is moved first (or, while another
   * request of this process moves it, read again once that move is done). A record answers only in the layout its
   * header names: a key is no sid.
   */
  async load(sid: string, now: number, deadline: number, waited = false): Promise<LoadedLazily | NoSession> {
    const store = this.#context.store;
    const names = store.names;
    const hashed = names.hashed;
    const raw = await store.read(sid, deadline);
    // A tombstone of a move to the other layout (by a process with the other setting) sends us there, as
    // nothing here does; anything else here is the answer. (A live session found costs no hashing.)
    let other: string | undefined;
    if (raw !== undefined && raw !== null) {
      const to = movedTo(raw);
      other = to === undefined ? undefined : (names.otherName(sid) as string);
      if (other === undefined || to !== names.storedName(other)) {
        const loaded = decodeSession(raw, now, sid, store.reading, true);
        if (typeof loaded === 'string' || loaded.record.hashed === hashed) return loaded;
      }
    } else if (!(await this.#context.layout.lookElsewhere(Date.now(), deadline))) {
      // Nothing under its key, and no switch of hashSids under way: one read was all it cost.
      return 'gone';
    }
    other ??= names.otherName(sid) as string;
    const otherRaw = await store.read(other, deadline);
    // Nothing there either, or the tombstone of a move here: a request of the same browser may have
    // just moved it (between our two reads), so what is here now is the answer.
    if (otherRaw === undefined || otherRaw === null || movedTo(otherRaw) === names.storedName(sid)) {
      const again = decodeSession(await store.read(sid, deadline), now, sid, store.reading, true);
      return typeof again === 'string' || again.record.hashed === hashed ? again : 'gone';
    }
    const moved = decodeSession(otherRaw, now, sid, store.reading);
    if (typeof moved === 'string') return moved;
    if (moved.record.hashed === hashed) return 'gone';
    return this.#move(sid, other, moved, now, deadline, waited);
  }

  /** Moves the session of `sid` found under `from`, one move at a time per sid in this process. */
  async #move(
    sid: string,
    from: string,
    found: Loaded,
    now: number,
    deadline: number,
    waited: boolean,
  ): Promise<LoadedLazily | NoSession> {
    // No move before the switch is written, and every process that reads it on a miss has heard of it. (Awaited
    // first: from the check of #moving to its entry, nothing may come between.)
    await this.#context.layout.ready(deadline);
    const moving = this.#moving.get(sid);
    if (moving !== undefined && !waited) return moving.then(() => this.load(sid, now, deadline, true));
    const move = relayout(this.#context, sid, from, found, deadline);
    const settled: Promise<void> = move.then(noop, noop).finally(() => {
      if (this.#moving.get(sid) === settled) this.#moving.delete(sid);
    });
    this.#moving.set(sid, settled);
    return move;
  }
}

function noop(): void {}

/** The live session in a stored value, or its fate. */
function liveOr(raw: string | undefined): Loaded | NoSession {
  const fate = recordStatus(raw, Date.now());
  if (fate !== 'live') return fate;
  try {
    return decodeRecord(raw);
  } catch {
    return 'gone';
  }
}
