// Per-key write queues and the retry pause of compare-and-set writers (session records and user indexes).
import { unwatch, watch, type Watched } from './deadline.js';
import { SessionError } from './errors.js';

/** A queued write; it is its own entry in the deadline sweeper, so waiting costs no extra promise. */
interface Waiting<Item, Outcome> extends Watched {
  readonly item: Item;
  readonly resolve: (outcome: Outcome) => void;
  readonly reject: (error: unknown) => void;
}

interface Lane<Item, Outcome, State> {
  readonly waiting: Array<Waiting<Item, Outcome>>;
  readonly state: State;
}

/**
 * The writes of one key in this process run one batch at a time: everything that queued up while a
 * batch was in flight goes out together in the next one, so a hot key costs one store write per
 * batch and never conflicts with itself. `State` lives as long as the lane (while writes keep coming).
 */
export class Lanes<Item, Outcome, State> {
  readonly #lanes = new Map<string, Lane<Item, Outcome, State>>();
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
      let lane = this.#lanes.get(key);
      const waiting: Waiting<Item, Outcome> = {
        item,
        deadline,
        resolve,
        reject,
        expire: () => {
          const list = (lane as Lane<Item, Outcome, State>).waiting;
          const at = list.indexOf(waiting);
          if (at !== -1) list.splice(at, 1);
          reject(timeout());
        },
      };
      watch(waiting);
      if (lane !== undefined) {
        lane.waiting.push(waiting);
        return;
      }
      lane = { waiting: [waiting], state: this.#newState() };
      this.#lanes.set(key, lane);
      void this.#drain(key, lane);
    });
  }

  /** Writes batch after batch until nothing waits, then lets the lane go. */
  async #drain(key: string, lane: Lane<Item, Outcome, State>): Promise<void> {
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
    this.#lanes.delete(key);
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
