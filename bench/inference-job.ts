/**
 * tsbert's side of `npm run bench:inference` (bench/inference.ts): one job in this (fresh)
 * process, so that the peak RSS it prints is the job's own.
 *
 *     npx tsx bench/inference-job.ts --row minilm --batch-size 32 --threads 2
 *     npx tsx bench/inference-job.ts --row bert-base --batch-size 1 --dtype q8
 *
 * The model is loaded to infer only, as onnxruntime holds one (`BertModel.load(dir, { dtype,
 * inferenceOnly: true })`: in f32 on an AVX-512 or AVX2 CPU, the dense weights packed for
 * the panel kernel as they are read; `--no-inference-only` loads a trainable f32 model instead).
 * `--dtype q8` loads it with `dtype: 'q8'` (int8 products in the
 * encoder's dense layers) and reports the kernel (`model.quantize()`'s name; quantising again
 * only re-reads it, the packed weights are made at the first pass either way).
 * - `--row minilm`: `embed` (mean pooling, L2 normalisation, cut at the model's 512 positions;
 *   tokenization included: `embed` tokenizes natively and sorts the texts by token length) of
 *   all-MiniLM-L6-v2 (bench/.cache/) over DIR/sentences.json's texts (all at batch 32, the
 *   first 200 at batch 1): a warm-up pass over the first 32 texts, then `--repeats` timed
 *   passes (default 3), the best one counted.
 * - `--row bert-base`: `encodeSequences` (the last hidden states; the lowest public call that
 *   takes ids) of the BERT-base-sized model in DIR/bert-base/ (made by
 *   bench/reference/inference_ref.py) on the first B rows of its ids.json (128 tokens, segments
 *   0, every position valid): `--warmup` untimed calls (default 1 at B ≥ 8, else 3), then
 *   `--repeats` timed ones (default 3 at B ≥ 8, else 20), the best one counted.
 *
 * Prints one JSON line: { perSec, seconds, peakRssMiB, threads, count, dtype, kernel (q8), rssMiB }
 * — rssMiB: the resident memory after loading the model (`loaded`; with `arrayBuffers`, what
 * JavaScript's buffers hold then, the weights file's among them until collected), after the
 * first pass (`firstPass`: the packed weights made) and at the end. `--save FILE` writes
 * the last timed result as little-endian float32 (the embeddings in the texts' order, or the
 * B×128×768 states).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

import { Command, Option } from 'commander';

import { BertModel, embed, type ModelDtype, type Tensor } from '../src/index.js';
import { idSequences, OUT, positiveInteger } from './support.js';

const flags = new Command('bench:inference job')
  .addOption(new Option('--row <row>', 'what to run').choices(['minilm', 'bert-base']).makeOptionMandatory())
  .addOption(new Option('--dtype <dtype>', 'how the model computes').choices(['f32', 'q8']).default('f32'))
  .option('--batch-size <n>', 'texts or sequences a pass', positiveInteger, 32)
  .option('--threads <n>', 'CPU threads', positiveInteger, availableParallelism())
  .option('--warmup <n>', 'bert-base: untimed calls first', positiveInteger)
  .option('--repeats <n>', 'timed passes or calls (the best is counted)', positiveInteger)
  .option('--dir <dir>', "the benchmark's folder", join(OUT, 'inference'))
  .option('--minilm <dir>', 'all-MiniLM-L6-v2', join(import.meta.dirname, '.cache/all-MiniLM-L6-v2'))
  .option('--save <file>', 'write the last timed result (float32, little-endian)')
  .option('--no-inference-only', 'load a model that can train (f32: its weights as parameters)')
  .parse()
  .opts<{
    row: 'minilm' | 'bert-base';
    dtype: ModelDtype;
    batchSize: number;
    threads: number;
    warmup?: number;
    repeats?: number;
    dir: string;
    minilm: string;
    save?: string;
    inferenceOnly: boolean;
  }>();
process.env.RAYON_NUM_THREADS = String(flags.threads); // read when the core first computes

const b = flags.batchSize;
const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
const rssMiB: Record<string, number> = {};
let kernel: string | undefined;
/** The model, loaded in `flags.dtype`; its q8 kernel noted, the memory then measured. */
async function load(dir: string): Promise<BertModel> {
  const model = await BertModel.load(dir, { dtype: flags.dtype, inferenceOnly: flags.inferenceOnly });
  if (model.dtype !== flags.dtype) throw new Error(`loaded as ${model.dtype}, not ${flags.dtype}`);
  if (flags.dtype === 'q8') kernel = await model.quantize();
  const { rss, arrayBuffers } = process.memoryUsage();
  Object.assign(rssMiB, { loaded: mib(rss), arrayBuffers: mib(arrayBuffers) });
  return model;
}
let job: () => Promise<Tensor>;
let count: number;
let warmup: number;
let repeats: number;
if (flags.row === 'minilm') {
  const bert = await load(flags.minilm);
  const all = JSON.parse(readFileSync(join(flags.dir, 'sentences.json'), 'utf8')) as string[];
  const texts = b === 1 ? all.slice(0, 200) : all;
  const options = { maxLength: bert.config.maxPositions, batchSize: b, pooling: 'mean', normalize: true } as const;
  await embed(bert, texts.slice(0, 32), options); // warm-up, as the onnxruntime job
  rssMiB.firstPass = mib(process.memoryUsage().rss);
  job = () => embed(bert, texts, options);
  [count, warmup, repeats] = [texts.length, 0, flags.repeats ?? 3];
} else {
  const dir = join(flags.dir, 'bert-base');
  const bert = await load(dir);
  const sequences = idSequences(dir, b);
  job = () => bert.encodeSequences(sequences);
  [count, warmup, repeats] = [b, flags.warmup ?? (b >= 8 ? 1 : 3), flags.repeats ?? (b >= 8 ? 3 : 20)];
}

for (let i = 0; i < warmup; i++) {
  await job();
  rssMiB.firstPass ??= mib(process.memoryUsage().rss);
}
const seconds: number[] = [];
let last: Tensor | undefined;
for (let i = 0; i < repeats; i++) {
  const started = performance.now();
  last = await job();
  seconds.push((performance.now() - started) / 1000);
}
if (flags.save && last) {
  const { data } = last;
  writeFileSync(flags.save, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}
const peakRssMiB = process.resourceUsage().maxRSS / 1024;
rssMiB.end = mib(process.memoryUsage().rss);
const { dtype, threads } = flags;
console.log(
  JSON.stringify({ perSec: count / Math.min(...seconds), seconds, peakRssMiB, threads, count, dtype, kernel, rssMiB }),
);
