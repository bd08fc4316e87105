/**
 * `npm run bench:data [-- PATH]`: preparing WikiText-2 (read + vocabulary + NSP + masking +
 * padding) with tsbert's data pipeline, beside the textbook's preprocessing in Python
 * (bench/reference/preprocess.py, run with the machine's python3) on the same file in the
 * same run, each the median of three runs; then batches/sec for B = 512. Then a 1 GB corpus
 * (WikiText-2's paragraphs over and over, in a seeded order; generated once into bench/.cache,
 * never by the tests): MB/s and peak RSS of its preparation with the default data memory and
 * a smaller one, each in a fresh process, beside the RSS of a process holding only the model.
 * `--no-large` skips that part.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { DATA_DEFAULTS, PretrainingDataset } from '../src/data/index.js';
import { rngFor, Stream, shuffle } from '../src/data/random.js';
import { PRETRAIN_DEFAULTS } from '../src/pretrain.js';
import { median, WIKITEXT } from './support.js';

const RUNS = 3;
const { batchSize: BATCH_SIZE, maxLen: MAX_LEN } = PRETRAIN_DEFAULTS;

const args = process.argv.slice(2);
const large = !args.includes('--no-large');
const file = args.find((a) => !a.startsWith('--')) ?? WIKITEXT;
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

/** The 1 GB corpus: WikiText-2's paragraph lines in seeded orders until it is 10^9 bytes. */
async function largeCorpus(): Promise<string> {
  const dir = join(import.meta.dirname, '.cache');
  const path = join(dir, 'corpus-1g.tokens');
  if (existsSync(path) && statSync(path).size >= 1e9) return path;
  mkdirSync(dir, { recursive: true });
  const lines = readFileSync(file, 'utf8').split('\n');
  const out = createWriteStream(path);
  let written = 0;
  for (let round = 0; written < 1e9; round++) {
    const order = shuffle(
      Int32Array.from({ length: lines.length }, (_, i) => i),
      rngFor(round, Stream.Synthetic),
    );
    for (const i of order) {
      const line = `${lines[i]}\n`;
      written += Buffer.byteLength(line);
      if (!out.write(line)) await once(out, 'drain');
    }
  }
  out.end();
  await once(out, 'finish');
  return path;
}

/** What `bench/data-prepare.ts` printed, run in a fresh process. */
function measure(...argv: string[]): Record<string, number> {
  const script = join(import.meta.dirname, 'data-prepare.ts');
  const text = execFileSync(process.execPath, ['--import', 'tsx', script, ...argv], { encoding: 'utf8' });
  return JSON.parse(text.trim().split('\n').at(-1) as string);
}

if (large) {
  console.log('');
  const corpus = await largeCorpus();
  const model = measure('--model');
  console.log(`1 GB corpus ${corpus} (${(statSync(corpus).size / 1e6).toFixed(0)} MB)`);
  console.log(
    `a process holding only the textbook model (${model.params} parameters): peak RSS ${model.peakMiB.toFixed(0)} MiB`,
  );
  console.log('');
  console.log(
    '| data memory | preparation | MB/s | first 20 batches | peak RSS | above the model | blocks | examples |',
  );
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const memory of [DATA_DEFAULTS.memory / 2 ** 20, 128]) {
    const r = measure(corpus, String(memory));
    console.log(
      `| ${memory} MiB | ${r.seconds.toFixed(1)} s | ${(r.bytes / 1e6 / r.seconds).toFixed(1)} | ${r.firstBatchesSeconds.toFixed(2)} s | ${r.peakMiB.toFixed(0)} MiB | ${(r.peakMiB - model.peakMiB).toFixed(0)} MiB | ${r.blocks} | ${r.examples} |`,
    );
  }
}
