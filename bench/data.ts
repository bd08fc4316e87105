/**
 * `npm run bench:data [-- PATH]`: preparing WikiText-2 (read + vocabulary + NSP + masking +
 * padding) with tsbert's data pipeline, beside the textbook's preprocessing in Python
 * (bench/reference/preprocess.py, run with the machine's python3) on the same file in the
 * same run, each the median of three runs; then batches/sec for B = 512.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { PretrainingDataset } from '../src/data/index.js';
import { PRETRAIN_DEFAULTS } from '../src/pretrain.js';
import { median, WIKITEXT } from './support.js';

const RUNS = 3;
const { batchSize: BATCH_SIZE, maxLen: MAX_LEN } = PRETRAIN_DEFAULTS;

const file = process.argv[2] ?? WIKITEXT;
if (!existsSync(file)) {
  console.log(`bench:data: ${file} is absent (no WikiText-2 beside the repository); nothing to measure`);
  process.exit(0);
}

const seconds = (since: number) => (performance.now() - since) / 1000;

/** One preparation of the file by tsbert; the dataset and its seconds. */
async function prepare(): Promise<[PretrainingDataset, number]> {
  const started = performance.now();
  const dataset = await PretrainingDataset.fromSource(file, { maxLen: MAX_LEN, seed: PRETRAIN_DEFAULTS.seed });
  return [dataset, seconds(started)];
}

interface PythonRun {
  paragraphs: number;
  vocab: number;
  examples: number;
  seconds: { total: number };
}

/** One preparation of the file by the Python reference. */
function preparePython(): PythonRun {
  const script = join(import.meta.dirname, 'reference/preprocess.py');
  return JSON.parse(execFileSync('python3', [script, file, String(MAX_LEN)], { encoding: 'utf8' })) as PythonRun;
}

const tsRuns: number[] = [];
let dataset: PretrainingDataset | undefined;
for (let i = 0; i < RUNS; i++) {
  const [made, s] = await prepare();
  dataset = made;
  tsRuns.push(s);
}
const ds = dataset!;
const pyRuns = Array.from({ length: RUNS }, preparePython);

let batches = 0;
const serving = performance.now();
for (let epoch = 0; epoch < RUNS; epoch++) for (const _ of ds.batches({ batchSize: BATCH_SIZE, epoch })) batches++;
const perSec = batches / seconds(serving);

const remasking = performance.now();
ds.batches({ batchSize: BATCH_SIZE, epoch: 1, remask: true }).next();
const remask = seconds(remasking);

const [ts, py] = [median(tsRuns), median(pyRuns.map((r) => r.seconds.total))];
console.log(
  `WikiText-2 ${file}, maxLen ${MAX_LEN}, minFreq ${PRETRAIN_DEFAULTS.minFreq}, seed ${PRETRAIN_DEFAULTS.seed}`,
);
console.log(`tsbert: ${ds.numParagraphs} paragraphs, vocabulary ${ds.vocab!.size}, ${ds.numExamples} examples`);
console.log(
  `Python: ${pyRuns[0].paragraphs} paragraphs, vocabulary ${pyRuns[0].vocab}, ${pyRuns[0].examples} examples`,
);
console.log('');
console.log(`| median of ${RUNS} runs | tsbert | textbook Python | Python / tsbert |`);
console.log('| --- | ---: | ---: | ---: |');
console.log(
  `| preparation: read + vocab + NSP + masking + padding | ${ts.toFixed(2)} s | ${py.toFixed(2)} s | ${(py / ts).toFixed(1)}× |`,
);
console.log('');
console.log(
  `batches of ${BATCH_SIZE}: ${perSec.toFixed(0)} batches/sec (${(1000 / perSec).toFixed(2)} ms a batch, ${batches / RUNS} an epoch)`,
);
console.log(`re-masking an epoch (remask: true): ${(remask * 1000).toFixed(0)} ms`);
