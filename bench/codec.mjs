// Codec micro-benchmark: CBOR (cbor-x) against JSON, encode and decode ops/s and encoded bytes, for sessions of 100 B, 1 KB and 32 KB with Dates.
import { decodePayload, encodePayload } from '../dist/esm/codec.js';

function session(bytes) {
  const base = { userId: 'u-123456', createdAt: new Date('2026-11-25T10:00:00Z'), lastSeen: new Date(), roles: ['viewer'] };
  const filler = Math.max(0, bytes - Buffer.byteLength(JSON.stringify(base)) - 12);
  return { ...base, notes: 'x'.repeat(filler) };
}

function opsPerSecond(run, budgetMs) {
  let iterations = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < budgetMs) {
    for (let i = 0; i < 100; i++) run();
    iterations += 100;
    elapsed = performance.now() - started;
  }
  return Math.round((iterations / elapsed) * 1000);
}

export function codecBenchmark(quick) {
  const budget = quick ? 100 : 500;
  const rows = [];
  for (const [label, size] of [['100 B', 100], ['1 KB', 1024], ['32 KB', 32 * 1024]]) {
    const data = session(size);
    for (const format of ['cbor', 'json']) {
      const payload = encodePayload(data, format);
      rows.push({
        size: label,
        format,
        bytes: Buffer.byteLength(payload),
        encodeOps: opsPerSecond(() => encodePayload(data, format), budget),
        decodeOps: opsPerSecond(() => decodePayload(payload, format), budget),
        keepsDates: decodePayload(payload, format).createdAt instanceof Date,
      });
    }
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) console.table(codecBenchmark(process.argv.includes('--quick')));
