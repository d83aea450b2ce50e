// Codec micro-benchmark: CBOR (cbor-x) against JSON, encode and decode ops/s and encoded bytes, for sessions of 100 B,
// 1 KB and 32 KB with Dates. For CBOR it also times what base64 costs a record (to text on write, back to bytes on
// read), beside what framing the same bytes behind a header as one Buffer would cost instead: the measurement behind
// keeping CBOR records as text (docs/stored-records.md, "Why CBOR is stored as base64 text").
import { decodePayload, encodePayload } from '../dist/esm/codec.js';

function session(bytes) {
  const base = {
    userId: 'u-123456',
    createdAt: new Date('2026-11-25T10:00:00Z'),
    lastSeen: new Date(),
    roles: ['viewer'],
  };
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

const microseconds = (run, budgetMs) => Math.round((1e6 / opsPerSecond(run, budgetMs)) * 1000) / 1000;

export function codecBenchmark(quick) {
  const budget = quick ? 100 : 500;
  const rows = [];
  for (const [label, size] of [
    ['100 B', 100],
    ['1 KB', 1024],
    ['32 KB', 32 * 1024],
  ]) {
    const data = session(size);
    for (const format of ['cbor', 'json']) {
      const payload = encodePayload(data, format);
      const bytes = format === 'cbor' ? Buffer.from(payload, 'base64') : undefined;
      const header = Buffer.from('c2:1764500000000:1:AbCdEfGh:1764400000000::', 'latin1');
      rows.push({
        size: label,
        format,
        bytes: Buffer.byteLength(payload),
        encodeOps: opsPerSecond(() => encodePayload(data, format), budget),
        decodeOps: opsPerSecond(() => decodePayload(payload, format), budget),
        keepsDates: decodePayload(payload, format).createdAt instanceof Date,
        // Microseconds per record: base64 out and back in, and a header + bytes Buffer (the alternative).
        base64Us: bytes && microseconds(() => Buffer.from(bytes.toString('base64'), 'base64'), budget),
        bufferFrameUs: bytes && microseconds(() => Buffer.concat([header, bytes]), budget),
      });
    }
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) console.table(codecBenchmark(process.argv.includes('--quick')));
