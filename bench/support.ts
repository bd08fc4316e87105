/**
 * What the bench scripts share: where WikiText-2 and the outputs are, the textbook workload,
 * safetensors files and batches for the PyTorch reference, and running its Python.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { InvalidArgumentError } from 'commander';

import { type BertConfig, TEXTBOOK_SIZES } from '../src/config.js';
import { type Batch, PretrainingDataset, type Sequences, syntheticBatch } from '../src/data/index.js';
import { type NativeBert, native } from '../src/native.js';
import { PRETRAIN_DEFAULTS } from '../src/pretrain.js';

/** WikiText-2's training file, beside the repository (`../shared/data/wikitext-2`). */
export const WIKITEXT = join(import.meta.dirname, '../../shared/data/wikitext-2/wiki.train.tokens');

/** WikiText-2's validation split beside the repository. */
export const WIKITEXT_VALID = WIKITEXT.replace('wiki.train.tokens', 'wiki.valid.tokens');

/** The first `n` sentences of {@link WIKITEXT_VALID} of four words or more (headings left out). */
export function validationSentences(n: number): string[] {
  return readFileSync(WIKITEXT_VALID, 'utf8')
    .split('\n')
    .flatMap((line) => line.split(' . '))
    .map((s) => s.trim())
    .filter((s) => s.split(' ').length >= 4 && !s.startsWith('='))
    .slice(0, n);
}
/** Where the bench scripts write their files (git-ignored). */
export const OUT = join(import.meta.dirname, 'out');
/**
 * The vocabulary WikiText-2's training file gives with the textbook's `minFreq` (checked by
 * `__test__/data/wikitext.spec.ts`): the size of the textbook model where the corpus is absent
 * (the GPU machine, a synthetic batch).
 */
export const WIKITEXT2_VOCAB_SIZE = 20256;

/** `dir` under {@link OUT}, made if missing. */
export function outDir(name: string): string {
  const dir = join(OUT, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The textbook model's config for `vocabSize` ids, with `overrides` (e.g. dropout 0). */
export function textbookConfig(vocabSize: number, overrides: Partial<BertConfig> = {}): BertConfig {
  return { ...TEXTBOOK_SIZES, vocabSize, ...overrides };
}

/** Batches of the textbook workload and where they came from. */
export interface Workload {
  /** The vocabulary size the batches' ids come from. */
  vocabSize: number;
  /** The batches, all of `batchSize` rows. */
  batches: Batch[];
  /** One line saying what the batches are. */
  source: string;
}

/**
 * The first `count` batches of `batchSize` pairs of WikiText-2's epoch 0 (textbook maxLen and
 * seed) when the corpus is beside the repository, else synthetic batches of the same shape.
 */
export async function textbookBatches(batchSize: number, count = 1): Promise<Workload> {
  const { maxLen, seed } = PRETRAIN_DEFAULTS;
  if (existsSync(WIKITEXT)) {
    const ds = await PretrainingDataset.fromSource(WIKITEXT, { maxLen, seed });
    const batches: Batch[] = [];
    for (const b of ds.batches({ batchSize, epoch: 0, dropLast: true })) {
      batches.push(b);
      if (batches.length === count) break;
    }
    if (batches.length < count) throw new Error(`epoch 0 has only ${batches.length} batches of ${batchSize}`);
    const source = `WikiText-2, batches 0..${count - 1} of epoch 0 (seed ${seed}, maxLen ${maxLen}, minFreq ${PRETRAIN_DEFAULTS.minFreq})`;
    return { vocabSize: ds.vocab!.size, batches, source };
  }
  const batches = Array.from({ length: count }, (_, i) =>
    syntheticBatch(WIKITEXT2_VOCAB_SIZE, { batchSize, seqLen: maxLen, seed: 1000 + i }),
  );
  return { vocabSize: WIKITEXT2_VOCAB_SIZE, batches, source: `synthetic batches (no WikiText-2 at ${WIKITEXT})` };
}

/** A tensor for a safetensors file. */
export interface NamedTensor {
  dtype: 'F32' | 'I32';
  shape: number[];
  data: Float32Array | Int32Array;
}

/** Writes `tensors` as a safetensors file (little-endian, header padded to 8 bytes). */
export function writeSafetensors(path: string, tensors: Record<string, NamedTensor>): void {
  const header: Record<string, unknown> = { __metadata__: { generator: 'tsbert bench' } };
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length)
      throw new Error(`${name}: shape ${t.shape} holds ${count} values, got ${t.data.length}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const parts: Uint8Array[] = [size, Buffer.from(json)];
  for (const t of Object.values(tensors))
    parts.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  writeFileSync(path, Buffer.concat(parts));
}

/** The arrays of the dtypes {@link readSafetensors} reads. */
interface TypedArrays {
  F32: Float32Array;
  I32: Int32Array;
}

/** Reads the tensors of a safetensors file, by name, all of `dtype` (default F32; another dtype is an error). */
export function readSafetensors<D extends keyof TypedArrays = 'F32'>(
  path: string,
  dtype: D = 'F32' as D,
): Map<string, { shape: number[]; data: TypedArrays[D] }> {
  const file = readFileSync(path);
  const n = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const out = new Map<string, { shape: number[]; data: TypedArrays[D] }>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (t.dtype !== dtype) throw new Error(`${path}: ${name} is ${t.dtype}, expected ${dtype}`);
    const bytes = file.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]);
    const data = (
      dtype === 'F32' ? new Float32Array(bytes.length / 4) : new Int32Array(bytes.length / 4)
    ) as TypedArrays[D];
    new Uint8Array(data.buffer).set(bytes);
    out.set(name, { shape: t.shape, data });
  }
  return out;
}

/**
 * Writes batches of one shape as one safetensors file for Python (`load_batches` in
 * bench/reference/parity.py): tokens/segments [N,B,L], validLens/nspLabels [N,B],
 * predPositions/mlmWeights/mlmLabels [N,B,P].
 */
export function writeBatches(path: string, batches: Batch[]): void {
  const [{ batchSize: B, seqLen: L, numPreds: P }] = batches;
  if (batches.some((b) => b.batchSize !== B || b.seqLen !== L || b.numPreds !== P)) {
    throw new Error('writeBatches: batches differ in shape');
  }
  const N = batches.length;
  const ints = (
    key: 'tokens' | 'segments' | 'validLens' | 'predPositions' | 'mlmLabels' | 'nspLabels',
    shape: number[],
  ): NamedTensor => {
    const data = new Int32Array(shape.reduce((a, b) => a * b, 1));
    for (const [i, b] of batches.entries()) data.set(b[key], (i * data.length) / N);
    return { dtype: 'I32', shape, data };
  };
  const weights = new Float32Array(N * B * P);
  for (const [i, b] of batches.entries()) weights.set(b.mlmWeights, i * B * P);
  writeSafetensors(path, {
    tokens: ints('tokens', [N, B, L]),
    segments: ints('segments', [N, B, L]),
    valid_lens: ints('validLens', [N, B]),
    pred_positions: ints('predPositions', [N, B, P]),
    mlm_weights: { dtype: 'F32', shape: [N, B, P], data: weights },
    mlm_labels: ints('mlmLabels', [N, B, P]),
    nsp_labels: ints('nspLabels', [N, B]),
  });
}

/** The venv's python, or a message and exit 1 when the venv is not made. */
export function venvPython(): string {
  const python = join(import.meta.dirname, '.venv/bin/python');
  if (!existsSync(python)) {
    console.error(`no PyTorch venv at ${python}: run \`npm run bench:setup\` first`);
    process.exit(1);
  }
  return python;
}

/** Runs `bench/reference/<script>` with `python` (its output shown); throws on failure. */
export function runPython(python: string, script: string, args: string[]): void {
  const r = spawnSync(python, [join(import.meta.dirname, 'reference', script), ...args], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0)
    throw new Error(`${script} failed (${r.error?.message ?? `exit status ${r.status}, signal ${r.signal}`})`);
}

/**
 * The shared start of the PyTorch comparisons: a native model of `config` (seed 0, Adam `lr`,
 * on `device`, default the CPU) whose initial weights go to `dir`/initial.safetensors for
 * PyTorch to load by name, `batches` to `dir`/batches.safetensors and `{ config, lr, ...meta }`
 * to `dir`/config.json. The native model (not the public `BertModel`) because the comparisons
 * read every parameter and gradient.
 */
export async function startBoth(
  dir: string,
  config: BertConfig,
  lr: number,
  batches: Batch[],
  meta: Record<string, number>,
  devices: { cuda?: number }[] = [{}],
): Promise<NativeBert> {
  const model = new (native().NativeBert)(config, { seed: 0, lr, devices });
  writeFileSync(join(dir, 'initial.safetensors'), (await model.save('tsbert')).weights);
  writeBatches(join(dir, 'batches.safetensors'), batches);
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify({ config, lr, ...meta }, null, 1)}\n`);
  return model;
}

/**
 * The first `b` rows of `dir`/ids.json (written by reference/inference_ref.py: rows of token
 * ids, each `seqLen` long) as one batch: segments 0, every position valid.
 */
export function idSequences(dir: string, b: number): Sequences {
  const ids = JSON.parse(readFileSync(join(dir, 'ids.json'), 'utf8')) as { seqLen: number; rows: number[][] };
  if (ids.rows.length < b) throw new Error(`${dir}/ids.json has ${ids.rows.length} rows, fewer than ${b}`);
  const L = ids.seqLen;
  return {
    batchSize: b,
    seqLen: L,
    tokens: Int32Array.from(ids.rows.slice(0, b).flat()),
    segments: new Int32Array(b * L),
    validLens: new Int32Array(b).fill(L),
  };
}

/** Median of `xs`. */
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A flag's value as a positive integer (commander's one-line error otherwise). */
export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/**
 * A parser of a comma-separated flag whose items must all be among `choices` (commander's
 * one-line error naming the first that is not).
 */
export function listOf<T extends string>(choices: readonly T[]): (value: string) => T[] {
  return (value) => {
    const items = value.split(',');
    const bad = items.find((item) => !(choices as readonly string[]).includes(item));
    if (bad !== undefined) throw new InvalidArgumentError(`expected some of ${choices.join(',')}, got '${bad}'`);
    return items as T[];
  };
}

/** The dtypes the inference benchmarks run: f32, and int8 on both sides. */
export const BENCH_DTYPES = ['f32', 'q8'] as const;

/**
 * all-MiniLM-L6-v2's folder in bench/.cache, fetched first by reference/fetch-minilm.sh when
 * absent; an error naming `bench` when it cannot be.
 */
export function miniLMFolder(bench: string): string {
  const dir = join(import.meta.dirname, '.cache/all-MiniLM-L6-v2');
  if (!existsSync(join(dir, 'model.safetensors'))) {
    const fetched = spawnSync('bash', [join(import.meta.dirname, 'reference/fetch-minilm.sh')], { stdio: 'inherit' });
    if (fetched.status !== 0) throw new Error(`${bench}: could not fetch all-MiniLM-L6-v2 (see above)`);
  }
  return dir;
}
