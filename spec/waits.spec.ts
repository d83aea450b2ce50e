// The waits a request makes (deadline.ts: one sweeper for every store call and queued write) and the per-key write
// queues (lanes.ts), taken alone: what expires, what is let go, and that a queue's bookkeeping never mixes up keys.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { bounded, unwatch, watch, Watched } from '../src/deadline.js';
import { Lanes } from '../src/lanes.js';

/** A wait that counts its expiries, and may run something when it expires. */
class Counted extends Watched {
  expired = 0;

  constructor(
    deadline: number,
    readonly onExpire: () => void = () => {},
  ) {
    super(deadline);
  }

  expire(): void {
    this.expired++;
    this.onExpire();
  }
}

// The sweep runs every 20 ms; a loaded machine may run it late, never early.
const PAST_SWEEP = 120;

describe('the deadline sweeper', () => {
  it('expires a wait once its deadline has passed, once, and then it is no longer watched', async () => {
    const wait = new Counted(Date.now() + 30);
    watch(wait);
    expect(wait.expired).toBe(0);
    await sleep(30 + PAST_SWEEP);
    expect(wait.expired).toBe(1);
    expect(unwatch(wait)).toBe(false);
    await sleep(PAST_SWEEP);
    expect(wait.expired).toBe(1);
  });

  it('never expires a wait let go before its deadline; letting go twice says so', async () => {
    const wait = new Counted(Date.now() + 20);
    watch(wait);
    expect(unwatch(wait)).toBe(true);
    expect(unwatch(wait)).toBe(false);
    await sleep(20 + PAST_SWEEP);
    expect(wait.expired).toBe(0);
  });

  it('keeps every other wait when waits are let go in any order', async () => {
    const soon = Date.now() + 20;
    const waits = Array.from({ length: 60 }, (_, i) => new Counted(i % 3 === 0 ? soon : Date.now() + 60_000));
    for (const wait of waits) watch(wait);
    // Let go of every second one, from the end, then from the start: first, middle and last links all go.
    const letGo = waits.filter((_, i) => i % 2 === 1);
    for (const wait of [...letGo].reverse().slice(0, 15)) expect(unwatch(wait)).toBe(true);
    for (const wait of letGo.slice(0, 15)) expect(unwatch(wait)).toBe(true);
    await sleep(20 + PAST_SWEEP);
    waits.forEach((wait, i) => {
      expect(wait.expired, `wait ${i}`).toBe(i % 3 === 0 && i % 2 === 0 ? 1 : 0);
    });
    // The long ones are still watched (and are let go here, so the sweeper can stop).
    waits.forEach((wait, i) => {
      expect(unwatch(wait), `wait ${i}`).toBe(i % 2 === 0 && i % 3 !== 0);
    });
  });

  it('does not expire a wait that an earlier expiry of the same sweep let go', async () => {
    const deadline = Date.now() + 20;
    const second = new Counted(deadline);
    const first = new Counted(deadline, () => unwatch(second));
    watch(first);
    watch(second);
    await sleep(20 + PAST_SWEEP);
    expect(first.expired + second.expired).toBe(1);
  });

  it('watches a wait added by an expiry, and expires it at its own deadline', async () => {
    const later = new Counted(Date.now() + 80);
    const first = new Counted(Date.now() + 20, () => watch(later));
    watch(first);
    await sleep(40);
    expect(first.expired).toBe(1);
    expect(later.expired).toBe(0);
    await sleep(40 + PAST_SWEEP);
    expect(later.expired).toBe(1);
  });
});

describe('bounded()', () => {
  it('settles as the work does when the work comes first', async () => {
    await expect(bounded(Promise.resolve('value'), Date.now() + 1000, () => new Error('late'))).resolves.toBe('value');
    const failure = new Error('refused');
    await expect(bounded(Promise.reject(failure), Date.now() + 1000, () => new Error('late'))).rejects.toBe(failure);
  });

  it("fails with timeout()'s error once the deadline passes, and ignores the work's late outcome", async () => {
    let answer: (value: string) => void = () => {};
    const work = new Promise<string>((resolve) => {
      answer = resolve;
    });
    const started = Date.now();
    const outcome = bounded(work, started + 30, () => new Error('timed out'));
    await expect(outcome).rejects.toThrow('timed out');
    expect(Date.now() - started).toBeGreaterThanOrEqual(30);
    answer('too late');
    await expect(outcome).rejects.toThrow('timed out');
  });
});

describe('per-key write queues', () => {
  /** Lanes whose flush records each batch and answers after `pause` ms with each item, tagged with its batch. */
  function recording(pause: number) {
    const batches: string[][] = [];
    const lanes = new Lanes<string, string, { batches: number }>(
      () => ({ batches: 0 }),
      async (batch, state) => {
        batches.push([...batch]);
        state.batches++;
        await sleep(pause);
        return batch.map((item) => `${item}#${state.batches}`);
      },
    );
    return { batches, lanes };
  }
  const timeout = () => new Error('queue timeout');

  it('writes one key one batch at a time: what queued behind a batch goes out together in the next', async () => {
    const { batches, lanes } = recording(20);
    const deadline = Date.now() + 5000;
    const outcomes = await Promise.all(['a', 'b', 'c'].map((item) => lanes.push('k', item, deadline, timeout)));
    expect(batches).toEqual([['a'], ['b', 'c']]);
    expect(outcomes).toEqual(['a#1', 'b#2', 'c#2']);
  });

  it('keeps the queues of many keys apart, keys sharing buckets included, and starts a key over once it is idle', async () => {
    const { batches, lanes } = recording(5);
    const deadline = Date.now() + 5000;
    // 300 keys: more than the table's first buckets, so keys share buckets and the table grows, then shrinks.
    const keys = Array.from({ length: 300 }, (_, i) => `session-${i}`);
    const outcomes = await Promise.all(
      keys.flatMap((key) => [
        lanes.push(key, `${key}/1`, deadline, timeout),
        lanes.push(key, `${key}/2`, deadline, timeout),
      ]),
    );
    expect(outcomes).toEqual(keys.flatMap((key) => [`${key}/1#1`, `${key}/2#2`]));
    expect(batches).toHaveLength(600);
    // Each key's lane was let go when its queue emptied: its state starts over.
    expect(await lanes.push('session-7', 'again', deadline, timeout)).toBe('again#1');
  });

  it('withdraws a queued write whose deadline passes: it is never written', async () => {
    const { batches, lanes } = recording(200);
    const first = lanes.push('k', 'first', Date.now() + 5000, timeout);
    const late = lanes.push('k', 'late', Date.now() + 30, timeout);
    await expect(late).rejects.toThrow('queue timeout');
    expect(await first).toBe('first#1');
    await sleep(PAST_SWEEP);
    expect(batches).toEqual([['first']]);
  });
});
