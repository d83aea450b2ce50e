// The compatibility table of docs/ecosystem.md, as the ecosystem spec measures it: rows, versions, and the check
// that the page says what was measured (KV_SESSION_WRITE_DOCS=1 writes the measured table into it instead).
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

export interface EcosystemRow {
  /** The part, as apps install it: "koa-passport + passport-local", "@keyv/redis (Keyv 5 instance)". */
  readonly part: string;
  /** The versions measured: "6.0.0 + 1.0.0". */
  readonly version: string;
  /** What was measured: "works", "works; warned at start-up: ...", "refused at kvSession(): ...". */
  readonly result: string;
}

const ROOT = join(import.meta.dirname, '..', '..');
export const ECOSYSTEM_PAGE = join(ROOT, 'docs', 'ecosystem.md');
const START = '<!-- measured by spec/ecosystem.spec.ts: start -->';
const END = '<!-- measured by spec/ecosystem.spec.ts: end -->';

/** The installed version of `pkg`, from the project (or from `folder`, such as spec/keyv6). */
export function versionOf(pkg: string, folder = ROOT): string {
  const require = createRequire(join(folder, 'package.json'));
  for (const candidate of [`${pkg}/package.json`]) {
    try {
      return (require(candidate) as { version: string }).version;
    } catch {
      // a package whose exports hide package.json: found through its entry point's folder below
    }
  }
  let dir = require.resolve(pkg);
  for (let depth = 0; depth < 6; depth++) {
    dir = join(dir, '..');
    try {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version: string;
      };
      if (manifest.name === pkg) return manifest.version;
    } catch {
      // not there: one folder up
    }
  }
  throw new Error(`no version found for ${pkg}`);
}

export function rowLine(row: EcosystemRow): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  return `| ${cell(row.part)} | ${cell(row.version)} | ${cell(row.result)} |`;
}

/** The rows of the table in the page now. */
export function documentedRows(): string[] {
  const page = readFileSync(ECOSYSTEM_PAGE, 'utf8');
  const start = page.indexOf(START);
  const end = page.indexOf(END);
  if (start === -1 || end === -1) throw new Error(`docs/ecosystem.md has no measured table (${START} ... ${END})`);
  return page
    .slice(start + START.length, end)
    .split('\n')
    .filter((line) => line.startsWith('| ') && !line.startsWith('| part ') && !line.startsWith('|---'));
}

/** Writes the measured rows into the page's table (KV_SESSION_WRITE_DOCS=1). */
export function writeRows(rows: readonly EcosystemRow[]): void {
  const page = readFileSync(ECOSYSTEM_PAGE, 'utf8');
  const start = page.indexOf(START);
  const end = page.indexOf(END);
  const table = ['| part | version | result |', '|---|---|---|', ...rows.map(rowLine)].join('\n');
  writeFileSync(ECOSYSTEM_PAGE, `${page.slice(0, start + START.length)}\n${table}\n${page.slice(end)}`);
}
