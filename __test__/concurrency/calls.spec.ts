/**
 * Calls on one model at once (issue 22, finding 5): `Promise.all` of many training steps, embeds,
 * or both, on one model, under CPU load, many times. They used to deadlock about one time in
 * five (a compute thread waiting for the model's lock held by the call it was helping) and,
 * when they finished, to give other results than the same calls one after another. Also a task
 * head's steps (one batch, or two accumulated) interleaved with `classify` calls.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CHILD = join(import.meta.dirname, 'calls.ts');
const RUNS = Number(process.env.TSBERT_CONCURRENCY_RUNS ?? 4);

describe('concurrent calls on one model', () => {
  let load: ChildProcess[] = [];
  beforeAll(() => {
    // two busy processes, so that the compute threads are preempted at any point
    load = [0, 1].map(() => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  });
  afterAll(() => {
    for (const child of load) child.kill('SIGKILL');
  });

  for (const [kind, calls] of [
    ['train', 200],
    ['embed', 120],
    ['mixed', 150],
    ['task', 120],
  ] as const) {
    it(`${kind}: ${calls} calls at once neither hang nor differ from the same calls one after another (${RUNS} runs)`, async () => {
      for (let i = 0; i < RUNS; i++) {
        const { stdout } = await run(process.execPath, ['--import', 'tsx', CHILD, kind, String(calls), '2'], {
          timeout: 60_000,
          killSignal: 'SIGKILL',
        }).catch((error: { killed?: boolean; stderr?: string }) => {
          throw new Error(error.killed ? `run ${i} hung (killed after 60 s)` : `run ${i} failed: ${error.stderr}`);
        });
        expect(JSON.parse(stdout.trim().split('\n').at(-1) as string)).toEqual({ rounds: 2, differing: 0 });
      }
    });
  }
});
