/**
 * `npm run bench:real-run [-- STEPS]` (200 by default): the README's "Pretraining for real" run on WikiText-2,
 * through the `tsbert` command as a user runs it: the textbook model with BERT's schedule
 * (warmup, then linear decay), clipping and AdamW, evaluated on `wiki.valid.tokens` every
 * STEPS/8 steps and checkpointed as often. Once uninterrupted; once stopped by SIGTERM at
 * about half way (as a preempted job is) and resumed with `--resume`. Reports the held-out
 * curve, whether both runs' histories (losses, learning rates, evaluations) and final weights
 * are identical, and copies the interrupted run's plot to bench/real-run.svg. Exits 0 with a
 * message when WikiText-2 is absent; 1 when the runs differ.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';

import type { HistoryLine } from '../src/training/history.js';
import { outDir, WIKITEXT } from './support.js';

const STEPS = Number(process.argv[2] ?? 200);
const EVERY = Math.max(1, Math.round(STEPS / 8));
const CLI = join(import.meta.dirname, '../src/cli.ts');

if (!existsSync(WIKITEXT)) {
  console.log(`bench:real-run: ${WIKITEXT} is absent (no WikiText-2 beside the repository); nothing to run`);
  process.exit(0);
}

/** The flags of the run (the output folder apart). */
const FLAGS = [
  ...['--data', dirname(WIKITEXT), '--steps', String(STEPS), '--batch-size', '128'],
  ...['--warmup-steps', String(Math.round(STEPS / 10)), '--schedule', 'linear', '--lr', '0.002'],
  ...['--clip-norm', '1', '--optimizer', 'adamw', '--eval-every', String(EVERY), '--save-every', String(EVERY)],
];

/** Runs `tsbert ARGS`; with `stopAt`, sends SIGTERM once that step is reported. Resolves to the exit code and seconds. */
function tsbert(args: string[], stopAt?: number): Promise<{ code: number | null; seconds: number; stderr: string }> {
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { env: { ...process.env, CI: '1' } });
  let stderr = '';
  let stopped = false;
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    const steps = [...stderr.matchAll(/step (\d+)\//g)].map((m) => Number(m[1]));
    if (stopAt !== undefined && !stopped && steps.some((s) => s >= stopAt)) {
      stopped = true;
      child.kill('SIGTERM');
    }
  });
  child.stdout.pipe(process.stdout);
  return new Promise((done) =>
    child.on('close', (code) => {
      if (code !== 0) console.log(stderr.split('\n').slice(-3).join('\n'));
      done({ code, seconds: (performance.now() - started) / 1000, stderr });
    }),
  );
}

const history = (dir: string) =>
  readFileSync(join(dir, 'history.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as HistoryLine);
const weights = (dir: string) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).weights.sha256;

const root = outDir('real-run');
const [whole, split] = [join(root, 'whole'), join(root, 'interrupted')];
rmSync(root, { recursive: true, force: true });

console.log(`tsbert pretrain ${FLAGS.join(' ')}`);
console.log('\n# uninterrupted');
const one = await tsbert(['pretrain', ...FLAGS, '--out', whole]);
console.log('\n# stopped by SIGTERM at about half way');
const first = await tsbert(['pretrain', ...FLAGS, '--out', split], Math.round(STEPS / 2));
console.log(`exit code ${first.code}`);
console.log('\n# resumed: tsbert pretrain --resume DIR --steps N --out DIR');
const second = await tsbert(['pretrain', '--resume', split, '--steps', String(STEPS), '--out', split]);

const timeless = (l: HistoryLine) => JSON.stringify({ ...l, pairsPerSec: undefined });
const [a, b] = [history(whole), history(split)];
const same = a.length === b.length && a.every((l, i) => timeless(l) === timeless(b[i]));
const sameWeights = weights(whole) === weights(split);
console.log('');
console.log(
  `| step | MLM loss (train) | NSP loss (train) | held-out MLM loss | MLM accuracy | held-out NSP loss | NSP accuracy |`,
);
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const e of b) {
  if (e.kind !== 'eval') continue;
  const near = b.filter((l) => l.kind === 'step' && l.step > e.step - EVERY && l.step <= e.step);
  const mean = (f: (l: HistoryLine) => number) => near.reduce((s, l) => s + f(l), 0) / near.length;
  console.log(
    `| ${e.step} | ${mean((l) => (l.kind === 'step' ? l.mlmLoss : 0)).toFixed(3)} | ${mean((l) => (l.kind === 'step' ? l.nspLoss : 0)).toFixed(3)} | ${e.mlmLoss.toFixed(3)} | ${(100 * e.mlmAccuracy).toFixed(1)}% | ${e.nspLoss.toFixed(3)} | ${(100 * e.nspAccuracy).toFixed(1)}% |`,
  );
}
console.log('');
console.log(
  `uninterrupted: ${one.seconds.toFixed(0)} s; interrupted at step ${
    (history(split).filter((l) => l.kind === 'step').length && first.stderr.match(/at step (\d+)/)?.[1]) ?? '?'
  } (exit ${first.code}) + resumed: ${(first.seconds + second.seconds).toFixed(0)} s`,
);
console.log(
  `histories (losses, learning rates, evaluations) identical: ${same ? 'yes' : 'NO'}; final weights identical: ${sameWeights ? 'yes' : 'NO'}`,
);
copyFileSync(join(split, 'loss.svg'), join(import.meta.dirname, 'real-run.svg'));
console.log('curves: bench/real-run.svg');
process.exitCode = same && sameWeights && one.code === 0 && second.code === 0 ? 0 : 1;
