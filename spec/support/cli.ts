// The built operator command, run as a user runs it: a child process with SESSION_* variables.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const CLI = join(import.meta.dirname, '..', '..', 'dist', 'esm', 'cli', 'main.js');

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI with SESSION_* variables; `onProgress` sees each stderr chunk (and may signal the process). */
export function cli(
  args: string[],
  env: Record<string, string>,
  onProgress?: (chunk: string, child: ReturnType<typeof spawn>) => void,
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      onProgress?.(chunk.toString(), child);
    });
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}
