// Where the standalone benchmarks (logins, purge, purge-latency) leave their results: bench/results/<name>.json and
// .md, the table printed too.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), 'results');

/**
 * Writes `rows` (with the date) as `<name>.json`, and `title` plus a table of `columns` as `<name>.md`; prints the
 * table.
 */
export function writeResults(name, rows, title, columns) {
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(
    join(RESULTS, `${name}.json`),
    `${JSON.stringify({ date: new Date().toISOString(), rows }, null, 2)}\n`,
  );
  const md = [
    title,
    '',
    `| ${columns.map(([heading]) => heading).join(' | ')} |`,
    `|${columns.map(([, , align]) => (align === 'left' ? '---' : '---:')).join('|')}|`,
    ...rows.map((row) => `| ${columns.map(([, cell]) => cell(row)).join(' | ')} |`),
  ].join('\n');
  writeFileSync(join(RESULTS, `${name}.md`), `${md}\n`);
  process.stdout.write(`\n${md}\n`);
}
