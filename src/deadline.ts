// Deadlines for everything a request waits on: store calls and places in a write queue, all swept by one timer.

// One timer for every wait in flight, instead of a timer set and cleared per call: a wait past its
// deadline is failed by the next sweep, at most SWEEP_MS late.
const SWEEP_MS = 20;

/**
 * A wait registered with the sweeper: `expire()` runs at the first sweep past `deadline`, unless it was let go first.
 *
 * The waits in flight are a list linked through the waits themselves, not a Set: a Set (or a Map) that keeps taking
 * in and letting go of young objects had V8's scavenger keep what they hold alive (a request's record, its promises)
 * into the old generation: on Redis, 2.6 KB per read and 7 KB per write promoted, and twice the GC time of a path
 * without it. Unlinking leaves nothing behind.
 */
export abstract class Watched {
  /** The waits before and after this one while it is watched; undefined once let go. */
  previous: Watched | undefined = undefined;
  next: Watched | undefined = undefined;

  constructor(readonly deadline: number) {}

  /** Fails the wait: its deadline has passed. */
  abstract expire(): void;
}

/** The list's own end: never expires, never let go. */
class Ends extends Watched {
  constructor() {
    super(Number.POSITIVE_INFINITY);
    this.previous = this;
    this.next = this;
  }

  expire(): void {}
}

const ends = new Ends();
let watching = 0;
let sweeper: NodeJS.Timeout | undefined;

/** Registers a wait: `entry.expire()` runs at the first sweep past `entry.deadline`. */
export function watch(entry: Watched): void {
  const last = ends.previous as Watched;
  entry.previous = last;
  entry.next = ends;
  last.next = entry;
  ends.previous = entry;
  watching++;
  if (sweeper !== undefined) return;
  sweeper = setInterval(sweep, SWEEP_MS);
  sweeper.unref();
}

/** Lets go of a wait; true when it had not expired yet (its own outcome counts). */
export function unwatch(entry: Watched): boolean {
  const { previous, next } = entry;
  if (previous === undefined || next === undefined) return false;
  previous.next = next;
  next.previous = previous;
  entry.previous = undefined;
  entry.next = undefined;
  watching--;
  return true;
}

/** Fails every wait past its deadline; the timer stops once nothing is watched. */
function sweep(): void {
  const now = Date.now();
  // Taken out first, failed after: an expire() that lets go of (or adds) other waits does not disturb the walk.
  const expired: Watched[] = [];
  for (let entry = ends.next as Watched; entry !== ends; entry = entry.next as Watched) {
    if (entry.deadline <= now) expired.push(entry);
  }
  for (const entry of expired) if (unwatch(entry)) entry.expire();
  if (watching === 0 && sweeper !== undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

/** A store call's wait: fails its promise with `timeout()`. */
class Bounded extends Watched {
  readonly #reject: (error: unknown) => void;
  readonly #timeout: () => Error;

  constructor(deadline: number, reject: (error: unknown) => void, timeout: () => Error) {
    super(deadline);
    this.#reject = reject;
    this.#timeout = timeout;
  }

  expire(): void {
    this.#reject(this.#timeout());
  }
}

/** `work`'s outcome, or the error `timeout()` makes once `deadline` (epoch ms) has passed, whichever comes first. */
export function bounded<T>(work: Promise<T>, deadline: number, timeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const entry = new Bounded(deadline, reject, timeout);
    watch(entry);
    work.then(
      (value) => {
        if (unwatch(entry)) resolve(value);
      },
      (error: unknown) => {
        if (unwatch(entry)) reject(error);
      },
    );
  });
}
