/**
 * A model loaded to infer only (`BertModel.load(dir, { inferenceOnly: true })`) on Hugging
 * Face's fixture models: where the CPU has a product by packed panels (AVX-512F, AVX2 with
 * FMA), its dense weights held packed in them, the same memory and the embeddings and scores of an f32 load (within
 * rounding: few rows take another kernel in f32), and training, saving and quantising refused
 * by name; a bad value named.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { BertModel, classify, embed } from '../../src/index.js';

const FIXTURES = join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures');
const MODEL = join(FIXTURES, 'hf/model');
const TASKS = join(FIXTURES, 'hf-task');
const SENTENCES = [
  'the crane is flying over the river',
  'a crane driver came to the harbour early in the morning',
  'tokyo is a big city',
  'rain',
];

/**
 * Whether an inference-only load holds its weights in panels here: on x86-64 with AVX-512F or
 * AVX2 and FMA, unless `TSBERT_F32_KERNEL` forces the `gemm` copy (or a kernel the CPU lacks).
 */
async function panels(): Promise<boolean> {
  const cpu = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const has = (flag: string) => new RegExp(`\\b${flag}\\b`).test(cpu);
  const avx512 = has('avx512f');
  const avx2 = has('avx2') && has('fma');
  const forced = process.env.TSBERT_F32_KERNEL;
  if (process.arch !== 'x64') return false;
  if (forced === 'packed') return false;
  if (forced === 'avx512') return avx512;
  if (forced === 'avx2') return avx2;
  return avx512 || avx2;
}

/** `f()` with `TSBERT_F32_KERNEL` set to `kernel`, then as it was. */
async function withF32Kernel<T>(kernel: string, f: () => Promise<T>): Promise<T> {
  const before = process.env.TSBERT_F32_KERNEL;
  process.env.TSBERT_F32_KERNEL = kernel;
  try {
    return await f();
  } finally {
    if (before === undefined) delete process.env.TSBERT_F32_KERNEL;
    else process.env.TSBERT_F32_KERNEL = before;
  }
}

describe('inferenceOnly', () => {
  it('embeds and classifies as an f32 load, in the same memory', async () => {
    const [f32, toInfer] = [await BertModel.load(MODEL), await BertModel.load(MODEL, { inferenceOnly: true })];
    expect(toInfer.dtype).toBe('f32');
    expect(toInfer.paramCount).toBe(f32.paramCount);
    const [a, b] = [await embed(f32, SENTENCES), await embed(toInfer, SENTENCES)];
    expect(b.shape).toEqual(a.shape);
    for (const [i, v] of b.data.entries()) expect(Math.abs(v - a.data[i]), `value ${i}`).toBeLessThan(1e-5);
    // hidden 32 and 64 inner values: whole panels, no padding; and the copies of the dense
    // layers' biases its pass holds (2 blocks of 3·32 + 32 + 64 + 32)
    const held = 4 * toInfer.paramCount + 4 * 2 * (3 * 32 + 32 + 64 + 32);
    expect(toInfer.memoryFootprint).toBe((await panels()) ? held : f32.memoryFootprint);
    // the AVX2 kernel (forced; where the CPU lacks AVX2, a plain f32 load): the same vectors
    const avx2 = await withF32Kernel('avx2', async () => {
      const model = await BertModel.load(MODEL, { inferenceOnly: true });
      return { model, held: await panels() };
    });
    const c = await embed(avx2.model, SENTENCES);
    for (const [i, v] of c.data.entries()) expect(Math.abs(v - a.data[i]), `AVX2, value ${i}`).toBeLessThan(1e-5);
    if (avx2.held) expect(avx2.model.memoryFootprint).toBe(held);
    // calls at once on the packed weights: the vectors of one call at a time
    const together = await Promise.all(SENTENCES.map((s) => embed(toInfer, [s])));
    for (const [i, s] of SENTENCES.entries()) expect(together[i].data).toEqual((await embed(toInfer, [s])).data);

    const [single, singleToInfer] = [
      await BertModel.load(join(TASKS, 'single')),
      await BertModel.load(join(TASKS, 'single'), { inferenceOnly: true }),
    ];
    const want = await classify(single, SENTENCES, { topK: null });
    for (const [row, ranked] of (await classify(singleToInfer, SENTENCES, { topK: null })).entries()) {
      for (const { label, score } of ranked) {
        const theirs = want[row].find((r) => r.label === label)?.score ?? Number.NaN;
        expect(Math.abs(score - theirs), `${row} ${label}`).toBeLessThan(1e-5);
      }
    }
  });

  it('refuses to train, save or quantise where it holds its weights in panels; names a bad value', async () => {
    const model = await BertModel.load(join(TASKS, 'single'), { inferenceOnly: true });
    const sequences = model.tokenizer.pad(model.tokenizer.encodeBatch(SENTENCES.slice(0, 3).map((t) => [t] as const)));
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-infer-'));
    try {
      if (await panels()) {
        const refusal = (what: string) =>
          new RegExp(`^model: it was loaded to infer only .*: it cannot ${what}; load it without inferenceOnly`);
        await expect(model.trainTaskStep(sequences, Int32Array.from([0, 1, 2]))).rejects.toThrow(refusal('train'));
        expect(model.stepsTaken).toBe(0);
        const saved = model.save(dir);
        await expect(saved).rejects.toThrow(RangeError);
        await expect(saved).rejects.toThrow(refusal('be saved'));
        await expect(readFile(join(dir, 'config.json'))).rejects.toThrow(/ENOENT/);
        await expect(model.quantize()).rejects.toThrow(refusal('be quantised'));
        expect(model.dtype).toBe('f32');
        expect((await classify(model, SENTENCES)).length).toBe(SENTENCES.length);
      } else {
        await model.save(dir); // no panels on this CPU: a plain f32 load
        expect((await BertModel.load(dir)).paramCount).toBe(model.paramCount);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await expect(BertModel.load(MODEL, { inferenceOnly: 'yes' as unknown as boolean })).rejects.toThrow(
      new TypeError('inferenceOnly: expected true or false, got yes'),
    );
    // q8 is a load to infer only already
    expect((await BertModel.load(MODEL, { dtype: 'q8', inferenceOnly: true })).dtype).toBe('q8');
  });
});
