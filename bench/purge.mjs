// How long a purge of expired sessions takes on the SQL backends: 100 000 and 1 000 000 expired rows
// (plus 1 000 live ones that must stay), each in a table of its own that is dropped afterwards.
//   node bench/purge.mjs [--quick]      (quick: 10 000 and 100 000 rows)
// Writes bench/results/purge.json and purge.md.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBackend } from '../dist/esm/backends/registry.js';
import { BACKENDS, count, drop } from './sql-tables.mjs';
import { writeResults } from './write-results.mjs';
import { encodePayload } from '../dist/esm/codec.js';
import { frameRecord } from '../dist/esm/record.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const QUICK = process.argv.includes('--quick');
const SIZES = QUICK ? [10_000, 100_000] : [100_000, 1_000_000];
const PREFIX = 'purge-bench:';
const LIVE = 1000;

const expired = frameRecord(
  encodePayload({ user: 'ada', roles: ['viewer'] }, 'cbor'),
  'cbor',
  Date.now() - 60_000,
  true,
);
const live = frameRecord(encodePayload({ user: 'bob' }, 'cbor'), 'cbor', Date.now() + 3_600_000, true);

async function main() {
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: join(HERE, '..'), stdio: 'inherit' });
  const dir = mkdtempSync(join(tmpdir(), 'kvs-purge-'));
  const rows = [];
  try {
    for (const backend of BACKENDS) {
      for (const size of SIZES) {
        const table = `kvs_purge_bench_${size}`;
        const first = await openBackend(backend.url(table, dir), 600_000);
        try {
          await first.get('warm-up'); // creates the table
          await drop(first);
        } finally {
          await first.close();
        }
        const a = await openBackend(backend.url(table, dir), 600_000);
        try {
          await a.get('warm-up');
          const filled = performance.now();
          await backend.fill(a, size, expired, PREFIX);
          await backend.fill(a, LIVE, live, `${PREFIX}live:`);
          const fillSeconds = (performance.now() - filled) / 1000;
          const heapBefore = process.memoryUsage().heapUsed;
          const started = performance.now();
          const removed = await a.purgeExpired(PREFIX, Date.now());
          const seconds = (performance.now() - started) / 1000;
          const left = await count(a);
          rows.push({
            backend: backend.name,
            rows: size,
            removed,
            left,
            seconds,
            rowsPerSecond: Math.round(size / seconds),
            fillSeconds,
            heapGrowthMiB: (process.memoryUsage().heapUsed - heapBefore) / 1048576,
          });
          process.stdout.write(
            `${backend.name} ${size} rows: removed ${removed} in ${seconds.toFixed(2)} s, ${left} left\n`,
          );
          if (removed !== size || left !== LIVE)
            throw new Error(`${backend.name}: removed ${removed} of ${size}, ${left} rows left (expected ${LIVE})`);
        } finally {
          await drop(a).catch(() => {});
          await a.close();
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  writeResults(
    QUICK ? 'purge-quick' : 'purge',
    rows,
    `Purge of expired sessions (${new Date().toISOString().slice(0, 10)}), one DELETE per batch of 500 rows, ${LIVE} live rows kept:`,
    [
      ['backend', (r) => r.backend, 'left'],
      ['expired rows', (r) => r.rows.toLocaleString('en')],
      ['seconds', (r) => r.seconds.toFixed(2)],
      ['rows/s', (r) => r.rowsPerSecond.toLocaleString('en')],
      ['heap growth MiB', (r) => r.heapGrowthMiB.toFixed(1)],
    ],
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
