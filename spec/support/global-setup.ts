// Before the run: build dist/ once (whatever the number of projects) (the package and demo specs use it), and say which
// backends this run can reach and why the others' tests will be skipped.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { BACKENDS, mustRun } from './servers.js';

export default async function setup(): Promise<void> {
  // Each project of vitest.config.ts (the specs, then the timing specs) runs the global setup: once is enough.
  const state = globalThis as { kvSessionSetupDone?: boolean };
  if (state.kvSessionSetupDone === true) return;
  state.kvSessionSetupDone = true;
  execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  const lines: string[] = [];
  for (const backend of BACKENDS) {
    const reason = await backend.unavailable();
    if (reason === undefined) lines.push(`  ${backend.name.padEnd(14)} reachable`);
    else
      lines.push(
        `  ${backend.name.padEnd(14)} ${mustRun(backend) ? 'REQUIRED but unreachable' : 'skipped'}: ${reason}`,
      );
  }
  const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  lines.push(
    `  ${'chromium'.padEnd(14)} ${existsSync(chromium) ? 'found' : `skipped: no ${chromium} (apt-get install chromium; browser tests of the demo)`}`,
  );
  process.stdout.write(`koa-kv-session backends for this run:\n${lines.join('\n')}\n`);
}
