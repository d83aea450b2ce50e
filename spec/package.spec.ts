// The packed package, as a user installs it: ESM import, CommonJS require, type declarations, and the zero-config
// default.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { versionOf } from './support/ecosystem.js';

const ROOT = resolve(import.meta.dirname, '..');
// Inside the repository, so the packed package resolves its dependencies from our node_modules
// without another install; .test-output/ is ignored by git.
const WORK = join(ROOT, '.test-output', `pack-${process.pid}`);
const INSTALLED = join(WORK, 'node_modules', 'koa-kv-session');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

function node(file: string, env: Record<string, string> = {}): string {
  return execFileSync(process.execPath, [file], {
    cwd: WORK,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

beforeAll(() => {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(INSTALLED, { recursive: true });
  // dist/ was built by the global setup; --ignore-scripts keeps prepack from rebuilding it under
  // the feet of specs that run the demo from it at the same time.
  const output = execFileSync('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', WORK], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  const tarball = join(WORK, output.trim().split('\n').pop() as string);
  execFileSync('tar', ['-xzf', tarball, '-C', INSTALLED, '--strip-components=1']);
}, 180_000);

afterAll(() => {
  rmSync(WORK, { recursive: true, force: true });
});

/** A script that serves one app with kvSession(), makes two requests and prints the views counts. */
function appScript(kind: 'esm' | 'cjs', options: string): string {
  const head =
    kind === 'esm'
      ? "import Koa from 'koa';\nimport { kvSession } from 'koa-kv-session';\n"
      : "const Koa = require('koa');\nconst { kvSession } = require('koa-kv-session');\n";
  return `${head}
(async () => {
  const app = new Koa();
  app.keys = ['pack-test'];
  const middleware = kvSession(${options});
  app.use(middleware);
  app.use((ctx) => { ctx.session.views = (ctx.session.views ?? 0) + 1; ctx.body = String(ctx.session.views); });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const url = 'http://127.0.0.1:' + server.address().port + '/';
  const cookie = process.env.COOKIE;
  const one = await fetch(url, cookie ? { headers: { cookie } } : {});
  // A known session written before a refresh is due gets no new cookie: keep the one sent.
  const set = one.headers.getSetCookie()[0]?.split(';')[0] ?? cookie;
  const two = await fetch(url, { headers: { cookie: set } });
  console.log(JSON.stringify({ views: [await one.text(), await two.text()], cookie: set }));
  server.close();
  await middleware.close();
})().catch((error) => { console.error(error); process.exit(1); });
`;
}

describe('npm pack output', () => {
  it('ships dist (ESM and CommonJS with declarations), README, docs, CHANGELOG and LICENSE, not sources or specs', () => {
    for (const file of [
      'dist/esm/index.js',
      'dist/esm/index.d.ts',
      'dist/cjs/index.js',
      'dist/cjs/index.d.ts',
      'README.md',
      'docs/guarantees.md',
      'CHANGELOG.md',
      'LICENSE',
    ]) {
      expect(existsSync(join(INSTALLED, file)), file).toBe(true);
    }
    expect(existsSync(join(INSTALLED, 'src'))).toBe(false);
    expect(existsSync(join(INSTALLED, 'spec'))).toBe(false);
  });

  it('is ready to publish: repository, homepage and bugs name one repository', () => {
    const manifest = JSON.parse(readFileSync(join(INSTALLED, 'package.json'), 'utf8'));
    const repository = String(manifest.repository?.url)
      .replace(/^git\+/, '')
      .replace(/\.git$/, '');
    expect(repository).toMatch(/^https:\/\/github\.com\/[\w.-]+\/[\w.-]+$/);
    expect(manifest.homepage).toBe(`${repository}#readme`);
    expect(manifest.bugs?.url).toBe(`${repository}/issues`);
  });

  it('every link and image in the packed README and docs works on the registry page and in node_modules', () => {
    const manifest = JSON.parse(readFileSync(join(INSTALLED, 'package.json'), 'utf8'));
    const repository = String(manifest.repository.url)
      .replace(/^git\+/, '')
      .replace(/\.git$/, '');
    const raw = repository.replace('https://github.com/', 'https://raw.githubusercontent.com/');
    const pages = ['README.md', 'CHANGELOG.md', ...readdirSync(join(INSTALLED, 'docs')).map((name) => `docs/${name}`)];
    let checked = 0;
    for (const page of pages) {
      const text = readFileSync(join(INSTALLED, page), 'utf8');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const path = (target as string).split('#')[0] as string;
        if (path === '' || /^(mailto|http:\/\/(localhost|127\.0\.0\.1))/.test(path)) continue;
        checked++;
        if (path.startsWith(`${repository}/blob/main/`) || path.startsWith(`${raw}/main/`)) {
          // Into the repository (not packed): the file must exist in this checkout.
          const file = path.replace(`${repository}/blob/main/`, '').replace(`${raw}/main/`, '');
          expect(existsSync(join(ROOT, file)), `${page}: ${target}`).toBe(true);
        } else if (!/^https?:/.test(path)) {
          // Relative: it must reach a packed file, so that it works in node_modules and on the registry page.
          expect(existsSync(join(INSTALLED, page, '..', path)), `${page}: ${target}`).toBe(true);
        }
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  it('says it has no side effects at import (bundlers may drop what is unused)', () => {
    expect(JSON.parse(readFileSync(join(INSTALLED, 'package.json'), 'utf8'))).toMatchObject({
      license: 'MIT',
      sideEffects: false,
    });
  });

  it('depends on cbor-x only: every store driver the code loads is an optional peer, none is installed for everyone', () => {
    const manifest = JSON.parse(readFileSync(join(INSTALLED, 'package.json'), 'utf8'));
    expect(Object.keys(manifest.dependencies).sort()).toEqual(['cbor-x']);
    // The packages src/ loads on demand (importOptional / exportOf), as `npm install` names them.
    const loaded = new Set<string>();
    for (const file of readdirSync(join(ROOT, 'src', 'backends'))) {
      for (const match of readFileSync(join(ROOT, 'src', 'backends', file), 'utf8').matchAll(
        /(?:importOptional|exportOf)\('([^']+)'/g,
      )) {
        const name = match[1] as string;
        loaded.add(
          name
            .split('/')
            .slice(0, name.startsWith('@') ? 2 : 1)
            .join('/'),
        );
      }
    }
    expect([...loaded].sort()).toEqual([
      '@keyv/dynamo',
      '@keyv/etcd',
      '@keyv/memcache',
      '@keyv/mongo',
      '@keyv/redis',
      '@keyv/valkey',
      'iovalkey',
      'mysql2',
      'pg',
      'sqlite3',
    ]);
    for (const name of loaded) {
      expect(manifest.peerDependencies[name], name).toBeTypeOf('string');
      expect(manifest.peerDependenciesMeta[name], name).toEqual({ optional: true });
    }
    expect(manifest.peerDependencies.koa).toBe('^2.13.0 || ^3.0.0');
    expect(manifest.peerDependenciesMeta.koa).toBeUndefined();
  });

  it('peer ranges take every version the suite runs on, the Keyv 6 line (release candidates included) as well as Keyv 5', () => {
    const manifest = JSON.parse(readFileSync(join(INSTALLED, 'package.json'), 'utf8')) as {
      peerDependencies: Record<string, string>;
    };
    const keyv6 = JSON.parse(readFileSync(join(ROOT, 'spec', 'keyv6', 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const require = createRequire(join(ROOT, 'package.json'));
    const semver = require('semver') as { satisfies(version: string, range: string): boolean };
    const ran: Array<[string, string]> = [];
    for (const [name, range] of Object.entries(manifest.peerDependencies)) {
      if (name === 'koa') continue;
      ran.push([name, versionOf(name)]);
      const six = keyv6.dependencies[name];
      if (six !== undefined) ran.push([name, six]);
      for (const [peer, version] of ran.filter(([n]) => n === name))
        expect(semver.satisfies(version, range), `${peer}@${version} against ${range}`).toBe(true);
    }
    expect(ran).toContainEqual(['@keyv/redis', '6.0.0-rc.1']);
    expect(ran).toContainEqual(['keyv', '6.1.0']);
  });

  it('source maps resolve without src/: every map carries the source it points at', () => {
    for (const build of ['esm', 'cjs']) {
      const map = JSON.parse(readFileSync(join(INSTALLED, 'dist', build, 'session.js.map'), 'utf8')) as {
        sources: string[];
        sourcesContent?: string[];
      };
      expect(map.sources).toHaveLength(1);
      expect(map.sourcesContent?.[0]).toMatch(/^\/\/ The object handlers see as ctx\.session/);
    }
  });

  it('SessionError is one class for ESM and CommonJS: instanceof and isSessionError() hold across the two builds', () => {
    writeFileSync(
      join(WORK, 'identity.mjs'),
      `import { createRequire } from 'node:module';
import * as esm from 'koa-kv-session';
const cjs = createRequire(import.meta.url)('koa-kv-session');
const fromCjs = (() => { try { cjs.kvSession({ sidLength: 1 }); } catch (error) { return error; } })();
const fromEsm = (() => { try { esm.kvSession({ sidLength: 1 }); } catch (error) { return error; } })();
console.log(JSON.stringify({
  distinctClasses: esm.SessionError !== cjs.SessionError,
  cjsIsEsm: fromCjs instanceof esm.SessionError && fromCjs instanceof esm.SessionOptionError,
  esmIsCjs: fromEsm instanceof cjs.SessionError && fromEsm instanceof cjs.SessionOptionError,
  notStore: fromCjs instanceof esm.SessionStoreError,
  plainError: new Error('x') instanceof esm.SessionError,
  guards: [esm.isSessionError(fromCjs), cjs.isSessionError(fromEsm), esm.isSessionError(new Error('x'))],
}));
`,
    );
    expect(JSON.parse(node('identity.mjs'))).toEqual({
      distinctClasses: true,
      cjsIsEsm: true,
      esmIsCjs: true,
      notStore: false,
      plainError: false,
      guards: [true, true, false],
    });
  });

  it('imports under ESM', () => {
    writeFileSync(join(WORK, 'esm.mjs'), appScript('esm', "{ store: 'memory://' }"));
    expect(JSON.parse(node('esm.mjs')).views).toEqual(['1', '2']);
  });

  it('requires under CommonJS', () => {
    writeFileSync(join(WORK, 'cjs.cjs'), appScript('cjs', "{ store: 'memory://' }"));
    expect(JSON.parse(node('cjs.cjs')).views).toEqual(['1', '2']);
  });

  it('CommonJS loads the adapters lazily too (SQLite here)', () => {
    writeFileSync(join(WORK, 'cjs-sqlite.cjs'), appScript('cjs', "{ store: 'sqlite://./cjs.sqlite' }"));
    expect(JSON.parse(node('cjs-sqlite.cjs')).views).toEqual(['1', '2']);
  });

  it('kvSession() with no options and no SESSION_STORE keeps sessions in ./sessions.sqlite, across restarts', () => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('SESSION_')));
    writeFileSync(join(WORK, 'default.mjs'), appScript('esm', ''));
    const run = (cookie?: string) =>
      JSON.parse(
        execFileSync(process.execPath, ['default.mjs'], {
          cwd: WORK,
          env: { ...clean, ...(cookie ? { COOKIE: cookie } : {}) },
          encoding: 'utf8',
          timeout: 60_000,
        }),
      );
    const first = run();
    expect(first.views).toEqual(['1', '2']);
    expect(existsSync(join(WORK, 'sessions.sqlite'))).toBe(true);
    // A new process, the same file: the session is still there.
    expect(run(first.cookie).views).toEqual(['3', '4']);
  });

  it('the koa-kv-session command purges expired records from the store SESSION_* names', () => {
    const db = join(WORK, 'cli.sqlite');
    writeFileSync(
      join(WORK, 'seed.mjs'),
      `import { KeyvSqlite } from '@keyv/sqlite';
const adapter = new KeyvSqlite({ uri: 'sqlite://${db}' });
for (const key of ['cli:a', 'cli:b', 'cli:c']) await adapter.set(key, 'c2:1000:1:AAAAAAAA:1::oA==');
await adapter.set('cli:live', 'c2:${Date.now() + 3_600_000}:1:AAAAAAAA:1::oA==');
await adapter.set('other:d', 'c2:1000:1:AAAAAAAA:1::oA==');
await adapter.disconnect();
`,
    );
    node('seed.mjs');
    const cli = join(INSTALLED, 'dist', 'esm', 'cli', 'main.js');
    const env = { SESSION_STORE: `sqlite://${db}`, SESSION_KEY_PREFIX: 'cli:' };
    const out = execFileSync(process.execPath, [cli, 'purge'], {
      cwd: WORK,
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
    expect(out).toMatch(/^removed 3 expired session records under "cli:" from sqlite:\/\//);
    // Run again: nothing left to remove under this prefix; the other prefix was never touched.
    expect(
      execFileSync(process.execPath, [cli, 'purge'], { cwd: WORK, env: { ...process.env, ...env }, encoding: 'utf8' }),
    ).toMatch(/^removed 0 expired/);
    const help = run(process.execPath, [cli, 'purge', '--help']);
    expect(help.status).toBe(0);
    const unknown = run(process.execPath, [cli, 'frobnicate']);
    expect(unknown.status).toBe(2);
    expect(unknown.output).toMatch(/unknown command "frobnicate"/);
    const badEnv = spawnResult(cli, { SESSION_STORE: 'ftp://nowhere' });
    expect(badEnv.status).toBe(2);
    expect(badEnv.output).toMatch(/SESSION_STORE/);
  });

  it.each([
    ['ESM', 'consumer.mts', 'NodeNext'],
    ['CommonJS', 'consumer.cts', 'NodeNext'],
  ])('type declarations work for %s consumers, with SessionData declaration merging', (_label, file, module) => {
    writeFileSync(
      join(WORK, file),
      `import Koa from 'koa';
import { kvSession, SessionError, type KvSessionOptions } from 'koa-kv-session';

declare module 'koa-kv-session' {
  interface SessionData { userId: string }
}

const options: KvSessionOptions = { store: 'memory://', cookie: { sameSite: 'strict' } };
const app = new Koa();
app.use(kvSession(options));
app.use(async (ctx) => {
  const id: string | undefined = ctx.session.userId;
  ctx.session.userId = 'u1';
  // @ts-expect-error userId is declared as a string
  ctx.session.userId = 1;
  await ctx.session.regenerate();
  ctx.body = id ?? ctx.session.sid;
});
export const code: string = new SessionError('SESSION_TOO_LARGE', 'x').code;
`,
    );
    writeFileSync(
      join(WORK, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module,
          moduleResolution: module,
          target: 'ES2022',
          skipLibCheck: false,
          types: ['node'],
        },
        files: [file],
      }),
    );
    const result = run(process.execPath, [tsc, '-p', 'tsconfig.json']);
    expect(result.output).toBe('');
    expect(result.status).toBe(0);
  });
});

/** Runs `koa-kv-session purge` with extra environment, returning status and output. */
function spawnResult(cli: string, env: Record<string, string>): { status: number | null; output: string } {
  try {
    execFileSync(process.execPath, [cli, 'purge'], {
      cwd: WORK,
      env: { ...process.env, ...env },
      encoding: 'utf8',
      stdio: 'pipe',
    });
    return { status: 0, output: '' };
  } catch (error) {
    const failed = error as { status: number | null; stdout?: string; stderr?: string };
    return { status: failed.status, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

/** Runs a command in WORK, returning its status and output instead of throwing. */
function run(command: string, args: string[]): { status: number | null; output: string } {
  try {
    execFileSync(command, args, { cwd: WORK, encoding: 'utf8', timeout: 120_000 });
    return { status: 0, output: '' };
  } catch (error) {
    const failed = error as { status: number | null; stdout?: string; stderr?: string };
    return { status: failed.status, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}
