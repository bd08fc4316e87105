/**
 * `npm run bench:compare [-- --threads N]`: tsbert against the PyTorch reference
 * (bench/reference/tsbert_ref.py, timed by bench/reference/bench_step.py) on this machine's
 * CPU, in the same run, with the same number of threads (default: every core; tsbert through
 * `RAYON_NUM_THREADS`, PyTorch through `torch.set_num_threads`). The textbook configuration
 * and batch size with identical initial weights (tsbert's, loaded in PyTorch by name) and the
 * identical batch (the first of WikiText-2's epoch 0 when the corpus is beside the
 * repository, else a synthetic one). Times a training step (forward, loss, backward, Adam)
 * and an encode (encoder forward, dropout off), 5 warm-ups (the first steps grow the
 * allocators' pools) then the median of 5 each, and prints sentence pairs/sec for both
 * implementations and their ratio. Files go to bench/out/compare/.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

import { Command } from 'commander';

import { PRETRAIN_DEFAULTS } from '../src/pretrain.js';
import {
  median,
  outDir,
  positiveInteger,
  runPython,
  startBoth,
  textbookBatches,
  textbookConfig,
  venvPython,
} from './support.js';

const WARMUP = 5;
const REPEATS = 5;

const { threads } = new Command('bench:compare')
  .option('--threads <n>', 'threads for both implementations', positiveInteger, availableParallelism())
  .parse()
  .opts<{ threads: number }>();
// Read by candle and its rayon pool when they first compute (loading the addon computes
// nothing): set before any model is made.
process.env.RAYON_NUM_THREADS = String(threads);

const python = venvPython();
const dir = outDir('compare');
const { batchSize: B, lr } = PRETRAIN_DEFAULTS;
const { vocabSize, batches, source } = await textbookBatches(B);
const [batch] = batches;
const config = textbookConfig(vocabSize);
const model = await startBoth(dir, config, lr, [batch], { warmup: WARMUP, repeats: REPEATS });

console.log(
  `bench:compare: tsbert against PyTorch (bench/reference/tsbert_ref.py), float32 on the CPU, ${threads} thread(s) each`,
);
console.log(
  `config: vocab ${vocabSize}, hidden ${config.hidden}, FFN ${config.ffnHidden}, ${config.heads} heads, ${config.layers} layers, dropout ${config.dropout}; B = ${B}, L = ${batch.seqLen}, P = ${batch.numPreds}; Adam lr ${lr}`,
);
console.log(`data: ${source}; identical initial weights; ${WARMUP} warm-up, median of ${REPEATS}`);

/** Milliseconds of each of REPEATS calls after WARMUP untimed ones. */
async function timed(fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const started = performance.now();
    await fn();
    ms.push(performance.now() - started);
  }
  return ms;
}

const ours = {
  train_ms: await timed(() => model.trainStep(batch)),
  encode_ms: await timed(async () => model.encode(batch)),
};
runPython(python, 'bench_step.py', ['--dir', dir, '--threads', String(threads)]);
const torch = JSON.parse(readFileSync(join(dir, 'torch.json'), 'utf8')) as typeof ours & {
  threads: number;
  torch: string;
};

const pairs = (ms: number) => (B * 1000) / ms;
console.log('');
console.log(
  `| ${threads} thread(s), median of ${REPEATS} | tsbert ms | PyTorch ${torch.torch} ms | tsbert pairs/s | PyTorch pairs/s | tsbert / PyTorch |`,
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const [label, key] of [
  ['train step', 'train_ms'],
  ['encode', 'encode_ms'],
] as const) {
  const [a, b] = [median(ours[key]), median(torch[key])];
  console.log(
    `| ${label} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${pairs(a).toFixed(1)} | ${pairs(b).toFixed(1)} | ${(b / a).toFixed(2)}× |`,
  );
}
