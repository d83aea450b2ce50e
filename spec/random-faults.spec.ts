// 40 rounds of overlapping requests from two apps (two processes' worth of queues) while replies are lost at
// random after the store applied the write, and every other round delayed: nothing is doubled or lost, every request
// that answered 200 did what it said, and one that answered 503 did at most what docs/guarantees.md says it may.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KvSessionOptions } from '../src/index.js';
import { cookiePair, type Reply, startApp, type TestApp } from './support/app.js';
import { FAULTY, type Faulty, route } from './support/faulty.js';
import { REQUIRE_SERVERS, reachable, uniquePrefix } from './support/servers.js';

const ROUNDS = 40;
// Redis, PostgreSQL and SQLite, as the issue asks; MariaDB and memory are covered by spec/lost-reply.spec.ts.
const KINDS = FAULTY.filter((kind) => ['redis (proxy)', 'postgres (proxy)', 'sqlite'].includes(kind.name));

interface Round {
  readonly incs: Reply[];
  readonly appends: Array<{ item: string; reply: Reply }>;
  readonly takes: Reply[];
  readonly final: Record<string, unknown> | undefined;
}

describe.each(KINDS)('random lost replies on $name', (kind) => {
  let faulty: Faulty;
  let skip: string | undefined;
  beforeAll(async () => {
    skip = kind.server !== undefined && !(await reachable(kind.server)) ? `no server at ${kind.server}` : undefined;
    if (skip !== undefined && REQUIRE_SERVERS) throw new Error(skip);
    if (skip === undefined) faulty = await kind.open();
  });
  afterAll(async () => {
    if (skip === undefined) await faulty.close();
  });

  async function round(options: KvSessionOptions, delay: number): Promise<Round> {
    const apps: TestApp[] = [];
    try {
      for (let i = 0; i < 2; i++)
        apps.push(await startApp({ store: faulty.store, onError: () => {}, ...options }, route));
      const [a, b] = apps as [TestApp, TestApp];
      const cookie = cookiePair((await a.request('/seed')).setCookies[0]);
      faulty.loseRandomly(0.2);
      faulty.delayReplies(delay);
      const on = (i: number) => (i % 2 === 0 ? a : b);
      const incs = Array.from({ length: 6 }, (_, i) => on(i).request('/inc', { cookie }));
      const appends = Array.from({ length: 6 }, (_, i) => ({
        item: `i${i}`,
        reply: on(i + 1).request(`/append?item=i${i}`, { cookie }),
      }));
      const takes = Array.from({ length: 3 }, (_, i) => on(i).request('/take', { cookie }));
      const settled = {
        incs: await Promise.all(incs),
        appends: await Promise.all(appends.map(async ({ item, reply }) => ({ item, reply: await reply }))),
        takes: await Promise.all(takes),
      };
      faulty.loseRandomly(0);
      faulty.delayReplies(0);
      return { ...settled, final: (await a.middleware.load(cookie))?.data };
    } finally {
      faulty.loseRandomly(0);
      faulty.delayReplies(0);
      await Promise.all(apps.map((app) => app.close()));
    }
  }

  it(`${ROUNDS} rounds: no increment, append or taken value doubled or lost`, async (context) => {
    if (skip !== undefined) return context.skip(skip);
    const lostBefore = faulty.lost();
    let answered503 = 0;
    for (let r = 0; r < ROUNDS; r++) {
      // Every other round, every reply is also 3 ms late (through a proxy): writes overlap more.
      const { incs, appends, takes, final } = await round(
        { keyPrefix: uniquePrefix('faults'), storeRetries: 4 },
        r % 2 === 0 ? 0 : 3,
      );
      const all = [...incs, ...appends.map(({ reply }) => reply), ...takes];
      expect(all.every((reply) => reply.status === 200 || reply.status === 503)).toBe(true);
      answered503 += all.filter((reply) => reply.status === 503).length;
      // The session itself survives every fault.
      expect(final).toBeDefined();
      const data = final as { n: number; list: string[]; token?: string };
      // Each increment that answered 200 counts once; one that answered 503 may have landed (guarantees.md).
      const ok = incs.filter((reply) => reply.status === 200).length;
      const failed = incs.length - ok;
      expect(data.n).toBeGreaterThanOrEqual(ok);
      expect(data.n).toBeLessThanOrEqual(ok + failed);
      // Appends: none twice, every 200 there, nothing that was never sent.
      expect(new Set(data.list).size).toBe(data.list.length);
      for (const { item, reply } of appends) if (reply.status === 200) expect(data.list).toContain(item);
      for (const item of data.list) expect(appends.map((append) => append.item)).toContain(item);
      // The one-time value: handed out at most once; gone from the store if handed out, else still
      // there unless a take that answered 503 took it.
      const handedOut = takes.filter((reply) => reply.status === 200 && reply.body === '"one-time"').length;
      expect(handedOut).toBeLessThanOrEqual(1);
      if (handedOut === 1) expect(data.token).toBeUndefined();
      else if (!takes.some((reply) => reply.status === 503)) expect(data.token).toBe('one-time');
    }
    // The faults really happened, and most requests still succeeded.
    expect(faulty.lost() - lostBefore).toBeGreaterThan(ROUNDS);
    expect(answered503).toBeLessThan(ROUNDS * 15 * 0.2);
    // A hang guard, not a speed bound: 40 rounds of lost replies (each retried within storeTimeout) took 4 to 20 s on
    // a quiet 2-core machine and past 30 s when the rest of the suite ran beside them.
  }, 120_000);
});
