// Installs the packed package into an empty project as a user would, from the npm registry, with
// npm, pnpm and yarn, on the Node first on PATH, and checks what issue 15 promised of that install:
//   - nothing is compiled (no native addon built under node_modules),
//   - the zero-config app (`kvSession()`, no options) serves a session across two requests, or, on a
//     Node without node:sqlite (below `engines`), kvSession() throws naming the package to install.
// With --compare it also installs koa-session and express-session + connect-redis + redis the same
// way, for the README's install table. Prints one line per install: packages, MB, seconds.
//
//   node scripts/install-check.mjs [--managers npm,pnpm,yarn] [--compare]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const args = process.argv.slice(2);
const managers = (args.includes('--managers') ? args[args.indexOf('--managers') + 1] : 'npm,pnpm,yarn').split(',');
const compare = args.includes('--compare');
const hasNodeSqlite = process.getBuiltinModule?.('node:sqlite') !== undefined;

// The package managers themselves come from the npm registry, pinned, run through npx.
const RUNNERS = {
  npm: (deps) => ['npm', ['install', '--no-audit', '--no-fund', ...deps]],
  pnpm: (deps, store) => [
    'npx',
    ['--yes', 'pnpm@10.24.0', 'add', '--reporter=append-only', `--store-dir=${store}`, ...deps],
  ],
  yarn: (deps) => ['npx', ['--yes', 'yarn@1.22.22', 'add', '--silent', '--no-progress', ...deps]],
};

const work = mkdtempSync(join(tmpdir(), 'kvs-install-'));
let failed = false;
const fail = (message) => {
  failed = true;
  console.error(`install-check: FAIL ${message}`);
};

/**
 * Disk usage of a folder as `du -sk` reports it (what a user measuring the install sees; pnpm's store, hard-linked,
 * counts once).
 */
function footprint(dir) {
  if (!existsSync(dir)) return 0;
  const kb = Number(execFileSync('du', ['-sk', dir], { encoding: 'utf8' }).split('\t')[0]);
  return kb * 1024;
}

/**
 * Installed packages: every folder holding a package.json with a name, under node_modules (nested copies too, as npm's
 * "added N packages" counts them; pnpm's .pnpm store once).
 */
function packages(dir) {
  const found = new Set();
  const walk = (path, depth) => {
    if (depth > 12 || !existsSync(path)) return;
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const full = join(path, entry.name);
      if (path.endsWith('node_modules') && entry.name.startsWith('@')) {
        for (const scoped of readdirSync(full, { withFileTypes: true })) {
          if (!scoped.isDirectory()) continue;
          found.add(join(full, scoped.name));
          walk(join(full, scoped.name), depth + 2);
        }
        continue;
      }
      if (path.endsWith('node_modules') && existsSync(join(full, 'package.json'))) found.add(full);
      walk(full, depth + 1);
    }
  };
  walk(join(dir, 'node_modules'), 0);
  return found.size;
}

/** Native addons built at install: a node-gyp build folder anywhere under node_modules. */
function compiled(dir) {
  const found = [];
  const walk = (path, depth) => {
    if (depth > 14 || !existsSync(path)) return;
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.isSymbolicLink()) continue;
      const full = join(path, entry.name);
      if (entry.name === 'build' && existsSync(join(full, 'Release'))) found.push(full.slice(dir.length + 1));
      else walk(full, depth + 1);
    }
  };
  walk(join(dir, 'node_modules'), 0);
  return found;
}

function install(label, manager, deps) {
  const dir = join(work, label);
  mkdirSync(dir);
  // Yarn 1 resolves cbor-x's optional cbor-extract to 2.2.3, whose platform packages were never
  // published, and then fails the whole install: the README tells Yarn 1 users to pin it, as here.
  const resolutions = manager === 'yarn' ? { resolutions: { 'cbor-extract': '2.2.2' } } : {};
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: `try-${label}`, version: '1.0.0', private: true, type: 'module', ...resolutions }),
  );
  const [command, argv] = RUNNERS[manager](deps, join(work, `.pnpm-${label}`));
  const started = Date.now();
  // A cache of its own: the download is part of what a new user waits for.
  const env = {
    ...process.env,
    npm_config_cache: join(work, `.cache-${label}`),
    YARN_CACHE_FOLDER: join(work, `.yarn-${label}`),
  };
  const result = spawnSync(command, argv, { cwd: dir, env, encoding: 'utf8', timeout: 600_000 });
  const seconds = (Date.now() - started) / 1000;
  if (result.status !== 0) {
    fail(`${label}: ${command} ${argv.join(' ')} exited with ${result.status}\n${result.stdout}\n${result.stderr}`);
    return undefined;
  }
  // npm says how many packages it added: that is the count a user sees, and ours must agree with it.
  const added = /added (\d+) packages?/.exec(result.stdout)?.[1];
  const row = {
    label,
    manager,
    packages: packages(dir),
    mb: footprint(join(dir, 'node_modules')) / 1e6,
    seconds,
    compiled: compiled(dir),
  };
  if (added !== undefined && Number(added) !== row.packages)
    fail(`${label}: npm reports ${added} packages added, the count here is ${row.packages}`);
  // pnpm 10 skips dependencies' install scripts and says so ("Ignored build scripts: cbor-extract",
  // "pnpm approve-builds"); newer npm versions print a like notice. The README calls them harmless:
  // the zero-config app below runs in this very install, with nothing approved.
  const notices = `${result.stdout}\n${result.stderr}`
    .split('\n')
    .filter((line) => /approve-builds|allowScripts|ignored build scripts/i.test(line));
  if (notices.length > 0)
    console.log(
      `install-check: ${label}: the install printed, and nothing was approved: ${notices.map((l) => l.trim()).join(' / ')}`,
    );
  console.log(
    `install-check: ${label} (${manager}, Node ${process.version}): ${row.packages} packages, ${row.mb.toFixed(1)} MB, ${seconds.toFixed(1)} s${row.compiled.length ? `, compiled: ${row.compiled.join(', ')}` : ', nothing compiled'}`,
  );
  return { ...row, dir };
}

const APP = `import Koa from 'koa';
import { kvSession } from 'koa-kv-session';
const app = new Koa();
app.keys = ['install-check'];
app.silent = true;
const errors = [];
let middleware;
try {
  middleware = kvSession({ onError: (error) => errors.push(error) });
} catch (error) {
  console.log(JSON.stringify({ thrown: error.code + ': ' + error.message }));
  process.exit(0);
}
app.use(middleware);
app.use((ctx) => { ctx.session.views = (ctx.session.views ?? 0) + 1; ctx.body = String(ctx.session.views); });
const server = app.listen(0, '127.0.0.1');
await new Promise((r) => server.once('listening', r));
const url = 'http://127.0.0.1:' + server.address().port + '/';
const one = await fetch(url);
const cookie = one.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
const two = await fetch(url, { headers: { cookie } });
console.log(JSON.stringify({ status: [one.status, two.status], views: [await one.text(), await two.text()], errors: errors.map((e) => e.code + ': ' + e.message) }));
server.close();
await middleware.close();
`;

function zeroConfig(row) {
  writeFileSync(join(row.dir, 'app.mjs'), APP);
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('SESSION_')));
  const result = spawnSync(process.execPath, ['app.mjs'], { cwd: row.dir, env, encoding: 'utf8', timeout: 60_000 });
  let reply;
  try {
    reply = JSON.parse(result.stdout.trim().split('\n').pop());
  } catch {
    return fail(
      `${row.label}: the zero-config app did not answer (exit ${result.status})\n${result.stdout}\n${result.stderr}`,
    );
  }
  if (hasNodeSqlite) {
    if (reply.views.join() !== '1,2')
      return fail(`${row.label}: the zero-config app did not keep its session: ${JSON.stringify(reply)}`);
    console.log(`install-check: ${row.label}: zero-config app kept its session (views 1, 2) on node:sqlite`);
  } else {
    const missing =
      reply.thrown?.startsWith('SESSION_ADAPTER_MISSING') && reply.thrown.includes('npm install sqlite3')
        ? reply.thrown
        : undefined;
    if (missing === undefined)
      return fail(
        `${row.label}: expected kvSession() to throw SESSION_ADAPTER_MISSING naming sqlite3 on ${process.version}: ${JSON.stringify(reply)}`,
      );
    console.log(
      `install-check: ${row.label}: zero-config kvSession() on ${process.version} (no node:sqlite) throws "${missing}"`,
    );
  }
}

try {
  execFileSync('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', work], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  const tarball = join(
    work,
    readdirSync(work).find((name) => name.endsWith('.tgz')),
  );
  for (const manager of managers) {
    const row = install(`koa-kv-session-${manager}`, manager, [tarball, 'koa']);
    if (row === undefined) continue;
    if (row.compiled.length > 0) fail(`${row.label}: the install compiled ${row.compiled.join(', ')}`);
    zeroConfig(row);
  }
  if (compare) {
    install('koa-session', 'npm', ['koa-session', 'koa']);
    install('express-session', 'npm', ['express-session', 'connect-redis', 'redis', 'express']);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
