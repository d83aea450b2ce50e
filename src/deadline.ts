// Deadlines for everything a request waits on: store calls and places in a write queue, all swept by one timer.

// One timer for every wait in flight, instead of a timer set and cleared per call: a wait past its
// deadline is failed by the next sweep, at most SWEEP_MS late.
const SWEEP_MS = 20;

interface Watched {
  readonly deadline: number;
  readonly expire: () => void;
}

const inFlight = new Set<Watched>();
let sweeper: NodeJS.Timeout | undefined;

function watch(entry: Watched): void {
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

/**
 * `work`'s outcome, or the error `timeout()` makes once `deadline` (epoch ms) has passed, whichever
 * comes first. `onExpire` runs when the deadline wins: the place to withdraw work not yet started.
 */
export function bounded<T>(work: Promise<T>, deadline: number, timeout: () => Error, onExpire?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const entry: Watched = {
      deadline,
      expire: () => {
        onExpire?.();
        reject(timeout());
      },
    };
    watch(entry);
    work.then(
      (value) => {
        if (inFlight.delete(entry)) resolve(value);
      },
      (error: unknown) => {
        if (inFlight.delete(entry)) reject(error);
      },
    );
  });
}
