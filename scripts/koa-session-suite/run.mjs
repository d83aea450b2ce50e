// Runs koa-session's own test suite against kvSession(): node scripts/koa-session-suite/run.mjs <checkout of koajs/session>
//
// Their test files are copied into a folder outside this project (their code stays theirs), with
// one change: the line that imports koa-session now imports shim.mjs, which maps koa-session's
// options onto kvSession() as docs/from-koa-session.md says. Mocha runs them there. Every failure
// must be one docs/koa-session-suite.md lists as a documented difference (expected.json holds the
// same list by test title); a failure it does not list, or a listed test that now passes, fails
// this run. Needs network access to the npm registry (mocha, tsx, supertest, mm, koa 2).
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const checkout = process.argv[2];
if (checkout === undefined || !existsSync(join(checkout, 'test'))) {
  console.error('usage: node scripts/koa-session-suite/run.mjs <path to a checkout of koajs/session (7.0.2)>');
  process.exit(2);
}

execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
const work = mkdtempSync(join(tmpdir(), 'kvs-koa-session-suite-'));
try {
  cpSync(join(checkout, 'test'), join(work, 'test'), { recursive: true });
  const shim = pathToFileURL(join(HERE, 'shim.mjs')).href;
  let rewritten = 0;
  for (const file of readdirSync(join(work, 'test'))) {
    const path = join(work, 'test', file);
    const text = readFileSync(path, 'utf8');
    const next = text.replace(/from '\.\.\/src\/index\.js'/g, `from '${shim}'`);
    if (next !== text) rewritten++;
    writeFileSync(path, next);
  }
  if (rewritten === 0) throw new Error('no test file imports ../src/index.js: is this a checkout of koajs/session?');
  writeFileSync(
    join(work, 'package.json'),
    JSON.stringify({ name: 'koa-session-suite', private: true, type: 'module' }),
  );
  execFileSync(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--silent',
      'mocha@10',
      'tsx@4',
      '@eggjs/supertest@8',
      'mm@4',
      'snap-shot-it@7',
      'koa@2',
      'zod@3',
    ],
    { cwd: work, stdio: 'inherit' },
  );
  const reportFile = join(work, 'report.json');
  try {
    const mocha = join(work, 'node_modules', 'mocha', 'bin', 'mocha.js');
    execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        mocha,
        '--reporter',
        'json',
        '--reporter-option',
        `output=${reportFile}`,
        '--timeout',
        '10000',
        '--exit',
        'test/*.test.ts',
      ],
      {
        cwd: work,
        stdio: 'inherit',
      },
    );
  } catch {
    // Failures are read from the report.
  }
  const report = JSON.parse(readFileSync(reportFile, 'utf8'));
  const expected = JSON.parse(readFileSync(join(HERE, 'expected.json'), 'utf8'));
  const known = new Map(Object.entries(expected.differences));
  const failed = report.failures.map((test) => test.fullTitle);
  const passed = report.passes.map((test) => test.fullTitle);
  const surprising = failed.filter((title) => !known.has(title));
  const stale = passed.filter((title) => known.has(title));
  console.log(
    `koa-session ${expected.version} suite against kvSession(): ${passed.length} passed, ${failed.length} failed (${failed.length - surprising.length} documented differences)`,
  );
  const byReason = new Map();
  for (const title of failed)
    if (known.has(title)) byReason.set(known.get(title), (byReason.get(known.get(title)) ?? 0) + 1);
  for (const [reason, count] of [...byReason].sort((a, b) => b[1] - a[1]))
    console.log(`  ${String(count).padStart(3)}  ${reason}: ${expected.reasons[reason]}`);
  for (const title of surprising)
    console.log(
      `  NOT DOCUMENTED: ${title}\n    ${report.failures
        .find((test) => test.fullTitle === title)
        ?.err?.message?.split('\n')
        .slice(0, 3)
        .join(' / ')}`,
    );
  if (process.env.KOA_SESSION_SUITE_REPORT)
    writeFileSync(process.env.KOA_SESSION_SUITE_REPORT, JSON.stringify(report, null, 2));
  for (const title of stale) console.log(`  now passes, still listed in expected.json: ${title}`);
  process.exitCode = surprising.length > 0 || stale.length > 0 ? 1 : 0;
} finally {
  rmSync(work, { recursive: true, force: true });
}
