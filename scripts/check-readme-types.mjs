// `npm run lint` part: every ```ts block of the README type-checks under the strictest TypeScript settings, as users
// paste it: once with SessionData left open and once with it declared (the fields the README uses);
// a block that declares SessionData itself is checked on its own. What a block uses but does not
// define (app, router, user, ...) comes from a prelude; a line marked "// type error" must be one.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const OUT = join(ROOT, '.test-output', 'readme-types');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

// [what it provides, its code, a pattern that means the block defines or imports it itself]
const PRELUDE = [
  ['Koa', "import Koa from 'koa';", /import Koa\b/],
  ['kvSession', "import { kvSession } from 'koa-kv-session';", /import \{[^}]*kvSession/],
  ['isSessionError', "import { isSessionError } from 'koa-kv-session';", /import \{[^}]*isSessionError/],
  ['app', 'declare const app: Koa;', /const app\b/],
  [
    'router',
    'declare const router: { get(path: string, handler: (ctx: Koa.Context) => unknown): void; post(path: string, handler: (ctx: Koa.Context) => unknown): void };',
    /const router\b/,
  ],
  ['user', 'declare const user: { id: string; isAdmin: boolean };', /const user\b/],
  [
    'checkPassword',
    'declare function checkPassword(body: unknown): Promise<{ id: string }>;',
    /function checkPassword\b/,
  ],
  ['exchangeCode', 'declare function exchangeCode(code: unknown): Promise<string>;', /function exchangeCode\b/],
  ['userId', 'declare const userId: string;', /const userId\b/],
  ['id', 'declare const id: string;', /const id\b/],
  ['sid', 'declare const sid: string;', /const sid\b/],
  ['req', 'declare const req: { headers: { cookie?: string } };', /const req\b/],
];

// A body parser's field, as @koa/bodyparser declares it.
const BODY = "declare module 'koa' {\n  interface Request {\n    body?: any;\n  }\n}\n";
// The fields the README's blocks use, declared as an app would.
const DECLARED =
  "declare module 'koa-kv-session' {\n  interface SessionData {\n    userId: string;\n    views: number;\n    cart: string[];\n    oauthState: string;\n    role: string;\n  }\n}\nexport {};\n";

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]);

/** A block as a module of its own: the prelude it needs, "// type error" lines expected to fail. */
function moduleOf(block) {
  const uses = (name) => new RegExp(`\\b${name}\\b`).test(block);
  const prelude = PRELUDE.filter(([name, , defines]) => uses(name) && !defines.test(block)).map(([, code]) => code);
  // Declarations that name Koa's types need Koa imported.
  if (prelude.some((line) => /\bKoa\b/.test(line)) && !prelude.includes(PRELUDE[0][1]) && !PRELUDE[0][2].test(block))
    prelude.unshift(PRELUDE[0][1]);
  const body = block
    .split('\n')
    .map((line) =>
      /\/\/ type error\s*$/.test(line)
        ? `// @ts-expect-error the README says this line is a type error\n${line}`
        : line,
    )
    .join('\n');
  return `${prelude.join('\n')}\n${body}\nexport {};\n`;
}

// The strictest settings in common use: @tsconfig/strictest's type checks. Not its
// noPropertyAccessFromIndexSignature, a style rule that would have every Koa app write ctx.query['state'].
const STRICTEST = {
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  noImplicitOverride: true,
  noImplicitReturns: true,
  noFallthroughCasesInSwitch: true,
  allowUnreachableCode: false,
};

// What an installed package gives a user: declarations (checked against the README, not as sources: a user's
// compiler options never apply to a library's own code).
const TYPES = join(OUT, 'types');

/** Type-checks `files` (names under `dir`) under the strictest options; the compiler's report, or '' when clean. */
function check(dir, files) {
  const config = {
    extends: join(ROOT, 'tsconfig.json'),
    compilerOptions: {
      ...STRICTEST,
      noEmit: true,
      rootDir: ROOT,
      noUnusedLocals: false,
      skipLibCheck: true,
      types: ['node'],
      paths: { 'koa-kv-session': [join(TYPES, 'index.d.ts')] },
    },
    // The package's declarations are in an app's program (it imports kvSession somewhere), even for a block that only
    // augments them.
    files: [...files.map((file) => join(dir, file)), join(OUT, 'body.ts'), join(TYPES, 'index.d.ts')],
    include: [],
  };
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(config, null, 2));
  try {
    execFileSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8', stdio: 'pipe' });
    return '';
  } catch (error) {
    return `${error.stdout}${error.stderr}`;
  }
}

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
execFileSync(
  process.execPath,
  [tsc, '-p', join(ROOT, 'tsconfig.json'), '--emitDeclarationOnly', '--declarationMap', 'false', '--outDir', TYPES],
  { stdio: 'inherit' },
);
writeFileSync(join(OUT, 'body.ts'), `${BODY}export {};\n`);
const shared = [];
const alone = [];
blocks.forEach((block, i) => {
  const file = `block-${i + 1}.ts`;
  (/declare module 'koa-kv-session'/.test(block) ? alone : shared).push(file);
  for (const mode of ['open', 'declared', 'alone']) {
    mkdirSync(join(OUT, mode), { recursive: true });
    writeFileSync(join(OUT, mode, file), moduleOf(block));
  }
});
writeFileSync(join(OUT, 'declared', 'session-data.ts'), DECLARED);

const reports = [
  ['with SessionData left open', check(join(OUT, 'open'), shared)],
  ['with SessionData declared', check(join(OUT, 'declared'), [...shared, 'session-data.ts'])],
  ...alone.map((file) => [`${file}, which declares SessionData itself`, check(join(OUT, 'alone'), [file])]),
];
const failed = reports.filter(([, report]) => report !== '');
for (const [label, report] of failed)
  process.stderr.write(`README ts blocks ${label} (files under ${OUT}):\n${report}\n`);
if (failed.length > 0) process.exit(1);
process.stdout.write(
  `readme types: ${blocks.length} ts blocks of README.md type-check under the strictest settings (SessionData open, declared, and as a block declares it)\n`,
);
