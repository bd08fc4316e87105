/**
 * Two runs with the same seed, data and options give the same bits, even while other
 * processes keep every core busy (the compute threads then share the work differently each
 * time) and whatever the number of compute threads.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { tsbertWith } from '../api/cli-process.js';
import { corpusFolder } from '../api/corpus.js';

/** Processes spinning on every core while the runs train. */
let spinners: ChildProcess[] = [];
beforeAll(() => {
  spinners = Array.from({ length: availableParallelism() }, () =>
    spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }),
  );
});
afterAll(() => {
  for (const s of spinners) s.kill('SIGKILL');
});

describe('a run on a busy machine', () => {
  it('gives the same losses and weights, bit for bit, twice and with 1 or 3 compute threads', async () => {
    const data = await corpusFolder(300);
    const root = await mkdtemp(join(tmpdir(), 'tsbert-reproducible-'));
    // batches of 128 × 32 tokens (16 blocks of rows for every row reduction) and a hidden size of 64
    const run = async (name: string, threads: string) => {
      const out = join(root, name);
      const args = ['pretrain', '--data', data, '--steps', '4', '--no-valid', '--seed', '7', '--out', out];
      const sizes = [
        '--batch-size',
        '128',
        '--max-len',
        '32',
        '--hidden',
        '64',
        '--ffn-hidden',
        '128',
        '--min-freq',
        '1',
      ];
      const r = await tsbertWith({ RAYON_NUM_THREADS: threads }, ...args, ...sizes);
      expect(r.code, r.stderr).toBe(0);
      const manifest = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
      const history = (await readFile(join(out, 'history.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
        .map(({ pairsPerSec, ...line }) => line);
      return { weights: manifest.weights.sha256 as string, history };
    };
    const first = await run('first', '2');
    expect(first.history.length).toBeGreaterThanOrEqual(4);
    for (const [name, threads] of [
      ['second', '2'],
      ['one-thread', '1'],
      ['three-threads', '3'],
    ]) {
      const other = await run(name, threads);
      expect(other.history, name).toEqual(first.history);
      expect(other.weights, name).toBe(first.weights);
    }
  }, 120_000);
});
