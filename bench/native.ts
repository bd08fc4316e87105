/**
 * `npm run bench:native [-- --batch-size B --steps N --warmup W --threads T --job train|encode --json]`:
 * a training step and an encode of the textbook configuration on the CPU, through the public
 * `BertModel` and the addon (the path `pretrain` and `encode` run), on the first WikiText-2
 * batch when the corpus is beside the repository, else a synthetic one. W warm-up runs (the
 * first steps grow the allocator's pools), then the median of N, and the process's peak RSS.
 * `--job` runs one job only (its peak RSS is then that job's); `--json` prints one JSON line
 * instead of the table (what `bench:peers` reads).
 */
import { availableParallelism } from 'node:os';

import { Command } from 'commander';

import { BertModel, PRETRAIN_DEFAULTS, RESERVED_TOKENS, Vocab } from '../src/index.js';
import { median, positiveInteger, textbookBatches } from './support.js';

const flags = new Command('bench:native')
  .option('--batch-size <n>', 'sentence pairs a step', positiveInteger, PRETRAIN_DEFAULTS.batchSize)
  .option('--steps <n>', 'timed steps (the median is reported)', positiveInteger, 5)
  .option('--warmup <n>', 'untimed runs first', positiveInteger, 5)
  .option('--threads <n>', 'CPU threads', positiveInteger, availableParallelism())
  .option('--job <job>', "'train' or 'encode' only")
  .option('--json', 'one JSON line: { job: { ms, pairsPerSec }, peakRssMiB }')
  .parse()
  .opts<{ batchSize: number; steps: number; warmup: number; threads: number; job?: string; json?: boolean }>();
if (flags.job !== undefined && flags.job !== 'train' && flags.job !== 'encode') {
  console.error(`--job: expected 'train' or 'encode', got '${flags.job}'`);
  process.exit(1);
}
process.env.RAYON_NUM_THREADS = String(flags.threads); // read when the core first computes

const { vocabSize, batches, source } = await textbookBatches(flags.batchSize);
const [batch] = batches;
const words = Array.from({ length: vocabSize - RESERVED_TOKENS.length }, (_, i) => `w${i}`);
const model = BertModel.create(Vocab.fromJSON({ tokens: [...RESERVED_TOKENS, ...words] }), { device: 'cpu' });
const { config } = model;

/** Milliseconds of each of `steps` calls after `warmup` untimed ones. */
async function timed(fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < flags.warmup; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < flags.steps; i++) {
    const started = performance.now();
    await fn();
    ms.push(performance.now() - started);
  }
  return ms;
}

const jobs = {
  train: () => model.trainStep(batch),
  encode: () => model.encodeSequences(batch),
};
const results: Record<string, { ms: number[]; pairsPerSec: number }> = {};
for (const [job, fn] of Object.entries(jobs)) {
  if (flags.job !== undefined && job !== flags.job) continue;
  const ms = await timed(fn);
  results[job] = { ms, pairsPerSec: (batch.batchSize / median(ms)) * 1000 };
}
const peakRssMiB = process.resourceUsage().maxRSS / 1024;
if (flags.json) {
  console.log(JSON.stringify({ ...results, peakRssMiB }));
} else {
  console.log(
    `tsbert native benchmark: CPU (${flags.threads} threads), vocab ${vocabSize}, B = ${batch.batchSize}, L = ${batch.seqLen}, P = ${batch.numPreds}, hidden ${config.hidden}, ${config.layers} layers`,
  );
  console.log(`data: ${source}; ${flags.warmup} warm-up runs, median of ${flags.steps}`);
  console.log(`| what | ms (median of ${flags.steps}) | sentence pairs/sec |`);
  console.log('| --- | ---: | ---: |');
  for (const [job, r] of Object.entries(results)) {
    console.log(
      `| ${job === 'train' ? 'train step' : job} | ${median(r.ms).toFixed(1)} | ${r.pairsPerSec.toFixed(1)} |`,
    );
  }
  console.log(`peak RSS of the process: ${peakRssMiB.toFixed(0)} MiB`);
}
