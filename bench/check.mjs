// The guard against a slower request path: this build against a baseline commit (default: the one before
// HEAD), each in process on memory:// (bench/inproc.mjs: the library's own CPU per request, no network),
// interleaved over rounds, medians compared. Exits 1 when a scenario costs more than 15% over the baseline. Prints
// also the read and the write against the anchor benchmark's speed-of-light prototype run on the same harness.
//   npm run bench:check [-- <commit>] [--rounds N]
// The baseline is built in .cache/bench-base-<commit> (a git worktree sharing this node_modules).
import { execFileSync } from 'node:child_process';
import { existsSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const args = process.argv.slice(2);
const roundsAt = args.indexOf('--rounds');
const ROUNDS = roundsAt === -1 ? 5 : Number(args[roundsAt + 1]);
const ref = args.find((arg, i) => !arg.startsWith('--') && args[i - 1] !== '--rounds') ?? 'HEAD~1';
const SCENARIOS = ['cbor-write', 'json-write', 'cbor-read', 'cbor-unknown'];
const LIMIT = 1.15;

const git = (...argv) => execFileSync('git', argv, { cwd: ROOT, encoding: 'utf8' }).trim();
const commit = git('rev-parse', '--short', ref);
const base = join(ROOT, '.cache', `bench-base-${commit}`);
if (!existsSync(join(base, 'dist', 'esm', 'index.js'))) {
  if (!existsSync(base)) git('worktree', 'add', '--detach', base, commit);
  if (!existsSync(join(base, 'node_modules'))) symlinkSync(join(ROOT, 'node_modules'), join(base, 'node_modules'));
  execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: base, stdio: 'inherit' });
}
execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' });

const builds = { this: join(ROOT, 'dist', 'esm', 'index.js'), [commit]: join(base, 'dist', 'esm', 'index.js') };
const samples = new Map();
/** One in-process run, its CPU per request kept under `key`. */
function measure(key, build, scenario) {
  // Without allocation-site pretenuring: in this loop V8 flips it on for some allocation site by chance (the 1,000
  // sessions made first look long-lived), and a build that differs by one object literal then costs 40% more or
  // less in GC. What is compared here is the library's own work; real servers are measured by bench/ab.mjs.
  const flags = ['--no-allocation-site-pretenuring'];
  const line = execFileSync(process.execPath, [...flags, join(ROOT, 'bench', 'inproc.mjs'), build, scenario], {
    encoding: 'utf8',
  });
  samples.set(key, [...(samples.get(key) ?? []), JSON.parse(line).cpuUs]);
}
for (let round = 0; round < ROUNDS; round++) {
  // The order of the builds turns every round: neither always runs on a warmer machine.
  const order = round % 2 === 0 ? Object.keys(builds) : Object.keys(builds).reverse();
  for (const scenario of SCENARIOS) for (const name of order) measure(`${name} ${scenario}`, builds[name], scenario);
  // The speed-of-light prototype on the same harness, in the same rounds.
  for (const scenario of ['cbor-read', 'cbor-write']) measure(`sol ${scenario}`, 'sol', scenario);
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
let failed = false;
console.log(`| scenario | this build (CPU us/request) | ${commit} | this / ${commit} |`);
console.log('|---|---:|---:|---:|');
for (const scenario of SCENARIOS) {
  const mine = median(samples.get(`this ${scenario}`));
  const theirs = median(samples.get(`${commit} ${scenario}`));
  const ratio = mine / theirs;
  if (ratio > LIMIT) failed = true;
  console.log(
    `| ${scenario} | ${mine.toFixed(1)} | ${theirs.toFixed(1)} | ${ratio.toFixed(2)}${ratio > LIMIT ? ' (over 1.15)' : ''} |`,
  );
}
const cbor = median(samples.get('this cbor-write'));
const json = median(samples.get('this json-write'));
console.log(
  `\nthis build, same run: a CBOR write costs ${(cbor - json).toFixed(1)} us more than a JSON one (${(cbor / json).toFixed(2)}x)`,
);
const against = (scenario) =>
  (median(samples.get(`sol ${scenario}`)) / median(samples.get(`this ${scenario}`))).toFixed(2);
console.log(
  `this build against the speed-of-light prototype on the same harness (its CPU / ours): CBOR read ` +
    `${against('cbor-read')}x, CBOR write ${against('cbor-write')}x`,
);
if (failed) {
  console.error(`bench:check: a scenario costs more than ${LIMIT}x what it did at ${commit}`);
  process.exit(1);
}
