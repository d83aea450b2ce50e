// The pages for people switching from koa-session, express-session and Flask-Session: every option of theirs is mapped, and every name of ours they cite exists.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SessionOptions as KoaSessionOptions } from 'koa-session';
import { describe, expect, it } from 'vitest';

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
const codeIn = (cells: string[]): string[] => cells.flatMap((cell) => [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1] as string));

/** The option names our README's options table lists (`cookie.name` and the like included). */
const OUR_OPTIONS = new Set(tableUnder(readFileSync(join(ROOT, 'README.md'), 'utf8'), '## Options').map((row) => (row[0] as string).replace(/`/g, '')));
/** The SESSION_* variables our options table names. */
const OUR_VARIABLES = new Set(codeIn(tableUnder(readFileSync(join(ROOT, 'README.md'), 'utf8'), '## Options').map((row) => row[1] as string)).flatMap((cell) => cell.match(/[A-Z_]{6,}/g) ?? []));

/** Our option names a row of a switching page cites (`permanent: false` counts as `permanent`). */
function ourOptionsIn(cell: string): string[] {
  return codeIn([cell])
    .filter((code) => !code.includes('://') && !/^(app|ctx)\./.test(code))
    .map((code) => code.split(/[:\s(]/)[0] as string)
    .filter((name) => /^[a-z][A-Za-z]+(\.[a-z][A-Za-z]+)?$/.test(name) && !['store', 'null', 'false', 'true', 'ctx'].includes(name));
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
  const THEIR_COOKIE = ['maxAge', 'expires', 'httpOnly', 'secure', 'sameSite', 'domain', 'path', 'partitioned', 'priority', 'signed', 'encode'];

  it('maps every option and cookie option of express-session', () => {
    const first = rows.map((row) => row[0] as string).join(' ');
    expect(THEIRS.filter((option) => !new RegExp(`\`(${option})\\b`).test(first))).toEqual([]);
    expect(THEIR_COOKIE.filter((option) => !new RegExp(`(\`cookie\\.${option}\\b|\\b${option}\\b)`).test(first))).toEqual([]);
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
