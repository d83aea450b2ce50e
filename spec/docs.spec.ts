// The pages for people switching from koa-session, express-session and Flask-Session: every option of theirs is mapped,
// and every name of ours they cite exists.
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SessionOptions as KoaSessionOptions } from 'koa-session';
import { describe, expect, it } from 'vitest';
import { COOKIE_OPTIONS } from '../src/cookie-options.js';
import { KNOWN_OPTIONS, resolveSettings } from '../src/options.js';
import { OPTIONS } from '../src/option-table.js';
import { CONTROL_MEMBERS } from '../src/session-types.js';
import { startApp } from './support/app.js';

const ROOT = resolve(import.meta.dirname, '..');
const page = (name: string) => readFileSync(join(ROOT, 'docs', name), 'utf8');

/** The cells of the first table under `heading`, row by row (header and separator left out). */
function tableUnder(markdown: string, heading: string): string[][] {
  const start = markdown.indexOf(`\n${heading}\n`);
  expect(start, heading).toBeGreaterThan(-1);
  const lines = markdown.slice(start).split('\n');
  const first = lines.findIndex((line) => line.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .slice(1, -1)
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim()),
    );
  }
  return rows;
}

/** The `code` spans of some cells. */
const codeIn = (cells: string[]): string[] =>
  cells.flatMap((cell) => [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1] as string));

/** The option names docs/options.md lists (`cookie.name` and the like included). */
const OUR_OPTIONS = new Set(
  tableUnder(readFileSync(join(ROOT, 'docs', 'options.md'), 'utf8'), '## Options').map((row) =>
    (row[0] as string).replace(/`/g, ''),
  ),
);
/** The SESSION_* variables our options table names. */
const OUR_VARIABLES = new Set(
  codeIn(
    tableUnder(readFileSync(join(ROOT, 'docs', 'options.md'), 'utf8'), '## Options').map((row) => row[1] as string),
  ).flatMap((cell) => cell.match(/[A-Z_]{6,}/g) ?? []),
);

/** Our option names a row of a switching page cites (`permanent: false` counts as `permanent`). */
function ourOptionsIn(cell: string): string[] {
  return codeIn([cell])
    .filter((code) => !code.includes('://') && !/^(app|ctx)\./.test(code))
    .map((code) => code.split(/[:\s(]/)[0] as string)
    .filter(
      (name) =>
        /^[a-z][A-Za-z]+(\.[a-z][A-Za-z]+)?$/.test(name) && !['store', 'null', 'false', 'true', 'ctx'].includes(name),
    );
}

describe('docs/from-koa-session.md', () => {
  const rows = tableUnder(page('from-koa-session.md'), '## Options');

  it('maps every option koa-session 7 accepts (read from its own schema)', () => {
    const mapped = new Set(codeIn(rows.map((row) => row[0] as string)).flatMap((code) => code.split(/[\s:+(]/)));
    const theirs = Object.keys(KoaSessionOptions.shape);
    expect(theirs.length).toBeGreaterThan(15);
    expect(theirs.filter((option) => !mapped.has(option))).toEqual([]);
  });

  it('cites only options we have', () => {
    const cited = rows.flatMap((row) => ourOptionsIn(row[1] as string)).filter((name) => name !== 'cookie.*');
    expect(cited.length).toBeGreaterThan(5);
    expect(cited.filter((name) => !OUR_OPTIONS.has(name))).toEqual([]);
  });
});

describe('docs/from-express-session.md', () => {
  const rows = tableUnder(page('from-express-session.md'), '## Options');
  // express-session 1.19's options and cookie options (@types/express-session, SessionOptions and CookieOptions).
  const THEIRS = ['secret', 'name', 'store', 'genid', 'rolling', 'resave', 'proxy', 'saveUninitialized', 'unset'];
  const THEIR_COOKIE = [
    'maxAge',
    'expires',
    'httpOnly',
    'secure',
    'sameSite',
    'domain',
    'path',
    'partitioned',
    'priority',
    'signed',
    'encode',
  ];

  it('maps every option and cookie option of express-session', () => {
    const first = rows.map((row) => row[0] as string).join(' ');
    expect(THEIRS.filter((option) => !new RegExp(`\`(${option})\\b`).test(first))).toEqual([]);
    expect(
      THEIR_COOKIE.filter((option) => !new RegExp(`(\`cookie\\.${option}\\b|\\b${option}\\b)`).test(first)),
    ).toEqual([]);
  });

  it('cites only options we have', () => {
    const cited = rows.flatMap((row) => ourOptionsIn(row[1] as string)).filter((name) => name !== 'cookie.*');
    expect(cited.length).toBeGreaterThan(5);
    expect(cited.filter((name) => !OUR_OPTIONS.has(name))).toEqual([]);
  });
});

describe('docs/from-flask-session.md', () => {
  const rows = tableUnder(page('from-flask-session.md'), '## Settings');
  // Flask-Session 0.8's settings, and Flask's own that it honours.
  const THEIRS = [
    'SESSION_TYPE',
    'SESSION_PERMANENT',
    'PERMANENT_SESSION_LIFETIME',
    'SESSION_REFRESH_EACH_REQUEST',
    'SESSION_KEY_PREFIX',
    'SESSION_ID_LENGTH',
    'SESSION_SERIALIZATION_FORMAT',
    'SESSION_USE_SIGNER',
    'SESSION_CLEANUP_N_REQUESTS',
    'SESSION_COOKIE_NAME',
    'SESSION_COOKIE_DOMAIN',
    'SESSION_COOKIE_PATH',
    'SESSION_COOKIE_HTTPONLY',
    'SESSION_COOKIE_SECURE',
    'SESSION_COOKIE_SAMESITE',
    'SESSION_COOKIE_PARTITIONED',
    'SESSION_SQLALCHEMY_TABLE',
    'SECRET_KEY',
  ];

  it('maps every Flask-Session setting', () => {
    const mapped = new Set(codeIn(rows.map((row) => row[0] as string)));
    expect(THEIRS.filter((setting) => !mapped.has(setting))).toEqual([]);
  });

  it('every variable it says we read is one our options table lists', () => {
    const cited = codeIn(rows.map((row) => row[2] as string)).flatMap((code) => code.match(/^[A-Z_]{6,}$/) ?? []);
    expect(cited.length).toBeGreaterThan(10);
    expect(cited.filter((variable) => !OUR_VARIABLES.has(variable))).toEqual([]);
  });

  it('cites only options we have', () => {
    const cited = rows.flatMap((row) => ourOptionsIn(row[1] as string));
    expect(cited.length).toBeGreaterThan(10);
    expect(cited.filter((name) => !OUR_OPTIONS.has(name))).toEqual([]);
  });
});

/** Each switching guide: its options table (and the column of ours) and its `ctx.session` table. */
const GUIDES = [
  { file: 'from-koa-session.md', options: '## Options', ours: 1, session: '## `ctx.session`' },
  { file: 'from-express-session.md', options: '## Options', ours: 1, session: '## `req.session` and `ctx.session`' },
  { file: 'from-flask-session.md', options: '## Settings', ours: 1, session: '## `session` and `ctx.session`' },
];

/**
 * `cookie.sameSite: 'lax'` -> { cookie: { sameSite: 'lax' } }; undefined for a span that is not one setting with a
 * value.
 */
function optionOf(code: string): Record<string, unknown> | undefined {
  const match = /^([a-z][A-Za-z]*)(?:\.([a-z][A-Za-z]*))?: (.+)$/.exec(code);
  // A choice (`'cbor' | 'json'`) is not one value.
  if (match === null || (match[3] as string).includes('|')) return undefined;
  const value: unknown = new Function(`return (${match[3]});`)();
  return match[2] === undefined ? { [match[1] as string]: value } : { [match[1] as string]: { [match[2]]: value } };
}

describe.each(GUIDES)('every row of docs/$file holds against the code', (guide) => {
  const markdown = page(guide.file);

  it("every setting of ours it shows with a value (`refreshInterval: 0`, `cookie.secure: 'auto'`...) is accepted by kvSession()", () => {
    // Our column, and the notes beside it, where they name one of our options (theirs are theirs to check).
    const spans = codeIn(tableUnder(markdown, guide.options).flatMap((row) => row.slice(guide.ours)));
    const ours = spans.filter((code) => OUR_OPTIONS.has(code.split(':')[0] as string));
    const settings = ours.map(optionOf).filter((option): option is Record<string, unknown> => option !== undefined);
    expect(settings.length).toBeGreaterThan(0);
    for (const option of settings)
      expect(() => resolveSettings({ store: 'memory://', env: {}, ...option }), JSON.stringify(option)).not.toThrow();
  });

  it('every ctx.session statement of ours it shows runs in a handler', async () => {
    const statements = codeIn(tableUnder(markdown, guide.session).map((row) => row[1] as string)).filter((code) =>
      /^(await )?ctx\.session\b/.test(code),
    );
    expect(statements.length).toBeGreaterThan(2);
    const failures: string[] = [];
    const app = await startApp({ store: 'memory://' }, async (ctx) => {
      for (const statement of statements) {
        ctx.session.cart = [];
        const run = new Function(
          'ctx',
          'x',
          'ms',
          `return (async () => { ${statement.replace(/\(cb\)/, '()')}; })();`,
        ) as (ctx: unknown, x: number, ms: number) => Promise<void>;
        await run(ctx, 1, 60_000).catch((error: Error) => failures.push(`${statement}: ${error.message}`));
      }
      return 'ok';
    });
    try {
      expect((await app.request('/')).status).toBe(200);
    } finally {
      await app.close();
    }
    expect(failures).toEqual([]);
  });
});

describe('docs/from-koa-session.md: the cookie attributes it maps to cookie.*', () => {
  const SAMPLES: Record<string, unknown> = {
    overwrite: true,
    httpOnly: true,
    signed: true,
    secure: true,
    sameSite: 'strict',
    domain: 'example.test',
    path: '/app',
  };
  it('are each accepted by kvSession() under cookie, with the value koa-session takes', () => {
    const row = tableUnder(page('from-koa-session.md'), '## Options').find((cells) =>
      (cells[1] as string).includes('`cookie.*`'),
    ) as string[];
    const names = codeIn([row[0] as string]);
    expect(names.sort()).toEqual(Object.keys(SAMPLES).sort());
    for (const name of names) {
      const settings = resolveSettings({ store: 'memory://', env: {}, cookie: { [name]: SAMPLES[name] } });
      expect((settings.cookie as unknown as Record<string, unknown>)[name]).toBe(SAMPLES[name]);
    }
  });
});

describe('README.md', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

  it('stays short enough to read before the first example matters: at most 350 lines', () => {
    expect(readme.split('\n').length - (readme.endsWith('\n') ? 1 : 0)).toBeLessThanOrEqual(350);
  });

  it('lists exactly the control members of ctx.session', () => {
    const members = tableUnder(readme, 'Control members are not enumerable and never stored:').map((row) =>
      (row[0] as string).replace(/`|\(.*\)/g, ''),
    );
    expect(members.sort()).toEqual([...CONTROL_MEMBERS].sort());
  });
});

describe('docs/options.md agrees with the code', () => {
  const rows = tableUnder(page('options.md'), '## Options');

  it('lists exactly the options kvSession() takes, cookie attributes included', () => {
    const listed = rows.map((row) => (row[0] as string).replace(/`/g, '')).sort();
    expect(listed).toEqual(
      [...KNOWN_OPTIONS.filter((name) => name !== 'cookie'), ...COOKIE_OPTIONS.map((name) => `cookie.${name}`)].sort(),
    );
  });

  it('names, for each option of the table in src/options.ts, exactly the variables that table reads', () => {
    const documented = new Map(
      rows.map((cells) => [
        (cells[0] as string).replace(/`/g, ''),
        codeIn([cells[1] as string]).filter((code) => /^[A-Z_]{6,}$/.test(code)),
      ]),
    );
    for (const option of OPTIONS) expect(documented.get(option.name), option.name).toEqual([...option.variables]);
  });

  it('every variable it names is read by kvSession(): a bad value there is refused, naming that variable', () => {
    const variables = rows.flatMap((row) => codeIn([row[1] as string]).filter((code) => /^[A-Z_]{6,}$/.test(code)));
    expect(variables.length).toBeGreaterThan(25);
    const unread: string[] = [];
    for (const variable of variables) {
      const named = ['not a valid value;', ',', ' ', '-1'].some((bad) => {
        try {
          resolveSettings({ env: { SESSION_USER_KEY: 'u', [variable]: bad } });
          return false;
        } catch (error) {
          return (error as Error).message.includes(variable);
        }
      });
      if (!named) unread.push(variable);
    }
    expect(unread).toEqual([]);
  });
});

describe('docs/contributing.md', () => {
  it("names every file of src/ in its map of where things are, so that a newcomer finds each file's job", () => {
    const map = tableUnder(page('contributing.md'), '## Where things are').flat().join(' ');
    const files = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((name) =>
      name.endsWith('.ts'),
    );
    expect(files.length).toBeGreaterThan(50);
    const unnamed = files.filter(
      (file) => !map.includes(`\`src/${file}\``) && !map.includes(`\`${file.split('/').pop()}\``),
    );
    expect(unnamed).toEqual([]);
  });
});
