/** The `tsbert` command run from the sources, as the CLI tests run it. */
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../src/cli.ts');

/** The flags of a model small enough for quick runs. */
export const SMALL = [
  '--batch-size',
  '16',
  '--max-len',
  '24',
  '--hidden',
  '16',
  '--ffn-hidden',
  '32',
  '--min-freq',
  '1',
];

/** Runs `tsbert ARGS` with `env` added to the environment; resolves to { code, stdout, stderr }. */
export async function tsbertWith(env: Record<string, string>, ...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', CLI, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 100_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Runs `tsbert ARGS`. */
export const tsbert = (...args: string[]) => tsbertWith({}, ...args);

/** Starts `tsbert ARGS` as a child process (to signal it), its stderr collected. */
export function spawnTsbert(...args: string[]): { child: ChildProcessWithoutNullStreams; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args]);
  let text = '';
  child.stderr.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  return { child, stderr: () => text };
}
