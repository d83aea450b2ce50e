#!/usr/bin/env node
// The operator command: `npx koa-kv-session <command>`, configured by the same SESSION_* environment as the app.
import { kvSession } from './index.js';
import { SessionError } from './errors.js';
import { maskPassword, resolveSettings } from './options.js';

const USAGE = `Usage: koa-kv-session <command>

Commands:
  purge     delete expired session records and print how many were removed
  help      show this text

The store and key prefix come from the same environment as your app: SESSION_STORE,
SESSION_KEY_PREFIX, SESSION_STORE_TIMEOUT, ... (see the README).

Exit codes: 0 done, 1 the store failed or cannot purge, 2 bad usage or configuration.`;

const PURGE_USAGE = `Usage: koa-kv-session purge

Deletes the expired session records under SESSION_KEY_PREFIX in SESSION_STORE: one statement per
batch of rows on SQL backends (bounded memory), nothing to do on Redis (it expires keys itself).
Prints the number of records removed.`;

async function purge(): Promise<number> {
  const settings = resolveSettings({});
  const where = settings.store.kind === 'url' ? maskPassword(settings.store.url) : 'the configured store';
  const middleware = kvSession({ onError: () => {} });
  try {
    const removed = await middleware.purge();
    process.stdout.write(`removed ${removed} expired session record${removed === 1 ? '' : 's'} under "${settings.keyPrefix}" from ${where}\n`);
    return 0;
  } finally {
    await middleware.close();
  }
}

async function main(args: readonly string[]): Promise<number> {
  const [command, ...rest] = args;
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  switch (command) {
    case 'purge':
      if (wantsHelp) {
        process.stdout.write(`${PURGE_USAGE}\n`);
        return 0;
      }
      return purge();
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`koa-kv-session: unknown command "${command}"\n\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${message}\n`);
    process.exitCode = error instanceof SessionError && error.code === 'SESSION_INVALID_OPTION' ? 2 : 1;
  },
);
