// Deadlines for everything a request waits on: store calls and places in a write queue, all swept by one timer.

// One timer for every wait in flight, instead of a timer set and cleared per call: a wait past its
// deadline is failed by the next sweep, at most SWEEP_MS late.
const SWEEP_MS = 20;

/** A wait registered with the sweeper: `expire` runs once `deadline` has passed, unless it was let go first. */
export interface Watched {
  readonly deadline: number;
  readonly expire: () => void;
}

const inFlight = new Set<Watched>();
let sweeper: NodeJS.Timeout | undefined;

/** Registers a wait: `entry.expire()` runs at the first sweep past `entry.deadline`. */
export function watch(entry: Watched): void {
  inFlight.add(entry);
  if (sweeper !== undefined) return;
  sweeper = setInterval(() => {
    const now = Date.now();
    for (const entry of inFlight) {
      if (entry.deadline <= now) {
        inFlight.delete(entry);
        entry.expire();
      }
    }
    if (inFlight.size === 0 && sweeper !== undefined) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  }, SWEEP_MS);
  sweeper.unref();
}

/** Lets go of a wait; true when it had not expired yet (its own outcome counts). */
export function unwatch(entry: Watched): boolean {
  return inFlight.delete(entry);
}

/** `work`'s outcome, or the error `timeout()` makes once `deadline` (epoch ms) has passed, whichever comes first. */
export function bounded<T>(work: Promise<T>, deadline: number, timeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const entry: Watched = { deadline, expire: () => reject(timeout()) };
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
