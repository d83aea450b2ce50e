// Per-key write queues and the retry pause of compare-and-set writers (session records and user indexes).
import { unwatch, watch, Watched } from './deadline.js';
import { SessionError } from './errors.js';

/** A queued write; it is its own entry in the deadline sweeper, so waiting costs no extra promise. */
class Waiting<Item, Outcome> extends Watched {
  constructor(
    deadline: number,
    readonly item: Item,
    readonly resolve: (outcome: Outcome) => void,
    readonly reject: (error: unknown) => void,
    /** The queue it waits in, which it leaves when its time is up: it is never written after its writer gave up. */
    readonly queue: Array<Waiting<Item, Outcome>>,
    readonly timeout: () => Error,
  ) {
    super(deadline);
  }

  expire(): void {
    const at = this.queue.indexOf(this);
    if (at !== -1) this.queue.splice(at, 1);
    this.reject(this.timeout());
  }
}

interface Lane<Item, Outcome, State> {
  readonly key: string;
  /** hashOf(key), reckoned once per write. */
  readonly hash: number;
  readonly waiting: Array<Waiting<Item, Outcome>>;
  readonly state: State;
  /** The next lane in its bucket of the table. */
  next: Lane<Item, Outcome, State> | undefined;
}

const FEWEST_BUCKETS = 64;

/**
 * The lanes in flight, by key: chains in a plain array of buckets, not a Map. A Map (or a Set) that keeps taking in and
 * letting go of young objects had V8's scavenger keep the entries it let go of, and everything they held, alive into
 * the old generation: every write's lane with its latest record, 1.5 KB per write on Redis, and major GCs the
 * prototype never has. An array slot or a link set to undefined holds nothing.
 */
class LaneTable<L extends { readonly key: string; readonly hash: number; next: L | undefined }> {
  #buckets = new Array<L | undefined>(FEWEST_BUCKETS).fill(undefined);
  #size = 0;

  get(key: string, hash: number): L | undefined {
    let lane = this.#buckets[hash & (this.#buckets.length - 1)];
    while (lane !== undefined && lane.key !== key) lane = lane.next;
    return lane;
  }

  add(lane: L): void {
    this.#link(lane);
    if (++this.#size > this.#buckets.length) this.#resize(this.#buckets.length * 2);
  }

  remove(lane: L): void {
    const at = lane.hash & (this.#buckets.length - 1);
    let before: L | undefined;
    let found = this.#buckets[at];
    while (found !== undefined && found !== lane) {
      before = found;
      found = found.next;
    }
    if (found === undefined) return;
    if (before === undefined) this.#buckets[at] = lane.next;
    else before.next = lane.next;
    lane.next = undefined;
    // A burst's worth of buckets is given back once it is over.
    if (--this.#size < this.#buckets.length / 4 && this.#buckets.length > FEWEST_BUCKETS)
      this.#resize(this.#buckets.length / 2);
  }

  #resize(length: number): void {
    const lanes: L[] = [];
    for (let lane of this.#buckets) {
      for (; lane !== undefined; lane = lane.next) lanes.push(lane);
    }
    this.#buckets = new Array<L | undefined>(length).fill(undefined);
    for (const lane of lanes) this.#link(lane);
  }

  /** Puts `lane` first in its bucket. */
  #link(lane: L): void {
    const at = lane.hash & (this.#buckets.length - 1);
    lane.next = this.#buckets[at];
    this.#buckets[at] = lane;
  }
}

/**
 * FNV-1a of a key's last 16 characters: a sid's are random, and so are a user index name's (a hash of the user).
 * (Hashing the whole key cost more than the rest of the lane's bookkeeping.) The bucket count is a power of two.
 */
function hashOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = Math.max(0, key.length - 16); i < key.length; i++)
    hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return hash;
}

/**
 * The writes of one key in this process run one batch at a time: everything that queued up while a
 * batch was in flight goes out together in the next one, so a hot key costs one store write per
 * batch and never conflicts with itself. `State` lives as long as the lane (while writes keep coming).
 */
export class Lanes<Item, Outcome, State> {
  readonly #lanes = new LaneTable<Lane<Item, Outcome, State>>();
  readonly #newState: () => State;
  readonly #flush: (batch: Item[], state: State, deadline: number) => Promise<Outcome[]>;

  /**
   * `flush` writes a batch and resolves with one outcome per item, in order; its store calls end by
   * `deadline`, the latest of the batch's writers.
   */
  constructor(newState: () => State, flush: (batch: Item[], state: State, deadline: number) => Promise<Outcome[]>) {
    this.#newState = newState;
    this.#flush = flush;
  }

  /**
   * Queues `item` on the lane of `key`; resolves with its outcome once its batch is written, or
   * rejects with `timeout()` at `deadline` (epoch ms), queueing included. An item still waiting then
   * is withdrawn: it is never written after its writer gave up.
   */
  push(key: string, item: Item, deadline: number, timeout: () => Error): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      const hash = hashOf(key);
      const busy = this.#lanes.get(key, hash);
      const lane = busy ?? { key, hash, waiting: [], state: this.#newState(), next: undefined };
      const waiting = new Waiting(deadline, item, resolve, reject, lane.waiting, timeout);
      watch(waiting);
      lane.waiting.push(waiting);
      if (busy !== undefined) return;
      this.#lanes.add(lane);
      void this.#drain(lane);
    });
  }

  /** Writes batch after batch until nothing waits, then lets the lane go. */
  async #drain(lane: Lane<Item, Outcome, State>): Promise<void> {
    while (lane.waiting.length > 0) {
      const batch = lane.waiting.splice(0);
      const deadline = batch.reduce((latest, w) => Math.max(latest, w.deadline), 0);
      try {
        const outcomes = await this.#flush(
          batch.map((w) => w.item),
          lane.state,
          deadline,
        );
        batch.forEach((waiting, i) => {
          if (unwatch(waiting)) waiting.resolve(outcomes[i] as Outcome);
        });
      } catch (error) {
        for (const waiting of batch) if (unwatch(waiting)) waiting.reject(error);
      }
    }
    this.#lanes.remove(lane);
  }
}

// Conflicts come only from other processes. Retries wait a random, growing moment, so two processes
// do not collide again in lockstep, and stop at storeTimeout.
const MAX_ATTEMPTS = 50;

/**
 * How long to wait before the compare-and-set attempt after `attempt`; throws SESSION_CONFLICT (503)
 * with `message(attempt)` once the attempts or the time until `deadline` run out.
 */
export function conflictPause(attempt: number, deadline: number, message: (attempts: number) => string): number {
  const pause = Math.random() * Math.min(2 ** attempt, 100);
  if (attempt >= MAX_ATTEMPTS || Date.now() + pause >= deadline)
    throw new SessionError('SESSION_CONFLICT', message(attempt), 503);
  return pause;
}
