/**
 * `npm run bench:native [-- --batch-size B --steps N --threads T]`: one training step and one
 * encode of the textbook configuration on the CPU, through the public `BertModel` and the
 * addon (the path `pretrain` and `encode` run), on the first WikiText-2 batch when the corpus
 * is beside the repository, else a synthetic one. Five warm-up steps (the first steps grow the
 * allocator's pools), then the median of N.
 */
import { availableParallelism } from 'node:os';

import { Command, InvalidArgumentError } from 'commander';

import { BertModel, PRETRAIN_DEFAULTS, RESERVED_TOKENS, Vocab } from '../src/index.js';
import { median, textbookBatches } from './support.js';

const WARMUP = 5;

const positive = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
};
const flags = new Command('bench:native')
  .option('--batch-size <n>', 'sentence pairs a step', positive, PRETRAIN_DEFAULTS.batchSize)
  .option('--steps <n>', 'timed steps (the median is reported)', positive, 5)
  .option('--threads <n>', 'CPU threads', positive, availableParallelism())
  .parse()
  .opts<{ batchSize: number; steps: number; threads: number }>();
process.env.RAYON_NUM_THREADS = String(flags.threads); // read when the core first computes

const { vocabSize, batches, source } = await textbookBatches(flags.batchSize);
const [batch] = batches;
const words = Array.from({ length: vocabSize - RESERVED_TOKENS.length }, (_, i) => `w${i}`);
const model = BertModel.create(Vocab.fromJSON({ tokens: [...RESERVED_TOKENS, ...words] }), { device: 'cpu' });
const { config } = model;
console.log(
  `tsbert native benchmark: CPU (${flags.threads} threads), vocab ${vocabSize}, B = ${batch.batchSize}, L = ${batch.seqLen}, P = ${batch.numPreds}, hidden ${config.hidden}, ${config.layers} layers`,
);
console.log(`data: ${source}; ${WARMUP} warm-up steps, median of ${flags.steps}`);

/** Milliseconds of each of `steps` calls after WARMUP untimed ones. */
async function timed(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < WARMUP; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < flags.steps; i++) {
    const started = performance.now();
    await fn();
    ms.push(performance.now() - started);
  }
  return median(ms);
}

const train = await timed(() => model.trainStep(batch));
const encode = await timed(() => model.encodeSequences(batch));
console.log(`| what | ms (median of ${flags.steps}) | sentence pairs/sec |`);
console.log('| --- | ---: | ---: |');
for (const [what, ms] of [
  ['train step', train],
  ['encode', encode],
] as const) {
  console.log(`| ${what} | ${ms.toFixed(1)} | ${((batch.batchSize / ms) * 1000).toFixed(1)} |`);
}
