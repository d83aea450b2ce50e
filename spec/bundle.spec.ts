// The package in an application bundled by esbuild, ES module and CommonJS, with the banner docs/ecosystem.md gives;
// and the debug lines that replace the debug package (whose dynamic require broke such bundles).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { debugEnabled } from '../src/debug.js';

const ROOT = join(import.meta.dirname, '..');
const folder = mkdtempSync(join(tmpdir(), 'kvs-bundle-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

// Two requests of one browser against the zero-config-free memory store: prints "1 2".
const APP = `import Koa from 'koa';
import { kvSession } from 'koa-kv-session';
const app = new Koa();
app.keys = ['a long random secret for the bundle'];
const sessions = kvSession({ store: 'memory://' });
app.use(sessions);
app.use((ctx) => { ctx.session.n = (ctx.session.n ?? 0) + 1; ctx.body = String(ctx.session.n); });
const server = app.listen(0, '127.0.0.1', async () => {
  const url = 'http://127.0.0.1:' + server.address().port;
  const one = await fetch(url);
  const two = await fetch(url, { headers: { cookie: one.headers.getSetCookie()[0].split(';')[0] } });
  console.log(await one.text(), await two.text());
  server.close();
  await sessions.close();
});
`;

/** The banner docs/ecosystem.md tells esbuild users to give an ES module bundle. */
function documentedBanner(): string {
  const page = readFileSync(join(ROOT, 'docs', 'ecosystem.md'), 'utf8');
  const banner = /banner: \{ js: "([^"]+)" \}/.exec(page)?.[1];
  if (banner === undefined) throw new Error('docs/ecosystem.md shows no esbuild banner');
  return banner;
}

/** Bundles the app (koa-kv-session as built in dist/) and runs it; its output and exit status. */
function bundleAndRun(format: 'esm' | 'cjs', banner?: string): { status: number | null; output: string } {
  const entry = join(folder, 'app.mjs');
  writeFileSync(entry, APP);
  const outfile = join(folder, format === 'esm' ? `out-${Date.now()}.mjs` : `out-${Date.now()}.cjs`);
  buildSync({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format,
    outfile,
    logLevel: 'silent',
    nodePaths: [join(ROOT, 'node_modules')],
    alias: { 'koa-kv-session': join(ROOT, 'dist', format, 'index.js') },
    ...(banner === undefined ? {} : { banner: { js: banner } }),
  });
  const run = spawnSync(process.execPath, [outfile], { cwd: folder, encoding: 'utf8', timeout: 30_000 });
  return { status: run.status, output: `${run.stdout}${run.stderr}`.trim() };
}

describe('an app bundled with esbuild', () => {
  it('as an ES module, with the banner of docs/ecosystem.md, keeps a session', () => {
    expect(bundleAndRun('esm', documentedBanner())).toEqual({ status: 0, output: '1 2' });
  });

  it('as CommonJS, with no banner, keeps a session', () => {
    expect(bundleAndRun('cjs')).toEqual({ status: 0, output: '1 2' });
  });

  it('the usual banner fails, which is why the page gives another (cbor-x imports createRequire itself)', () => {
    const usual = "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";
    const run = bundleAndRun('esm', usual);
    expect(run.status).not.toBe(0);
    expect(run.output).toContain("Identifier 'createRequire' has already been declared");
  });

  it('the package depends on no module that needs a dynamic require of its own (debug did)', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(Object.keys(manifest.dependencies)).toEqual(['cbor-x']);
    const sources = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((file) =>
      file.endsWith('.ts'),
    );
    expect(sources.filter((file) => readFileSync(join(ROOT, 'src', file), 'utf8').includes("from 'debug'"))).toEqual(
      [],
    );
  });
});

describe('debug lines without the debug package', () => {
  it.each([
    ['koa-kv-session', 'koa-kv-session', true],
    ['koa-kv-session:store', 'koa-kv-session', false],
    ['koa-kv-session:store', 'koa-kv-session*', true],
    ['koa-kv-session', 'koa-kv-session:*', false],
    ['koa-kv-session:store', 'app, koa-kv-session:*', true],
    ['koa-kv-session:store', '*,-koa-kv-session:store', false],
    ['koa-kv-session', '', false],
    ['koa-kv-session', undefined, false],
  ])('%s with DEBUG=%j: %s', (namespace, debug, enabled) => {
    expect(debugEnabled(namespace, debug)).toBe(enabled);
  });

  it('DEBUG=koa-kv-session* writes what the library did on stderr', () => {
    const script = `import { kvSession } from ${JSON.stringify(join(ROOT, 'dist', 'esm', 'index.js'))};
      const sessions = kvSession({ store: { get: async () => { throw new Error('store down'); }, set: async () => true, delete: async () => true }, storeTimeout: 300, storeRetries: 0 });
      await sessions.ready().catch(() => {});
      await sessions.close();`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, DEBUG: 'koa-kv-session*' },
    });
    expect(run.stderr).toMatch(/koa-kv-session .*failed a connect: store down/);
  });
});
