/**
 * The q8 mode (`BertModel.load(dir, { dtype: 'q8' })`, `model.quantize()`, `--dtype q8`) on
 * Hugging Face's fixture models: sentence embeddings within cosine 0.99 of f32 and
 * classification scores within 0.01 (the bounds), every kernel the same bits as the
 * portable one (the int32 sums are exact, so forcing the fallback must change nothing), a
 * model quantised after an f32 load keeping and saving its f32 weights, one loaded in q8
 * holding no f32 copy (saving refused by name), training refused, and bad values named.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { BertModel, classify, embed, RESERVED_TOKENS, Vocab } from '../../src/index.js';
import { tsbert, tsbertWith } from './cli-process.js';

const FIXTURES = join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures');
const MODEL = join(FIXTURES, 'hf/model');
const TASKS = join(FIXTURES, 'hf-task');
const SENTENCES = [
  'the crane is flying over the river',
  'a crane driver came to the harbour early in the morning',
  'tokyo is a big city',
  'the dog slept while the cat ran around the garden',
  'prices rose by three percent in the last quarter of the year',
  'she wrote the letter',
  'rain',
  'the committee met on tuesday to discuss the new budget and the plans for the bridge',
];

/** Least cosine between the rows (`hidden` values each) of two sets of vectors. */
function leastCosine(a: Float32Array, b: Float32Array, hidden: number): number {
  let least = 1;
  for (let r = 0; r < a.length / hidden; r++) {
    let [dot, na, nb] = [0, 0, 0];
    for (let j = r * hidden; j < (r + 1) * hidden; j++) {
      dot += a[j] * b[j];
      na += a[j] * a[j];
      nb += b[j] * b[j];
    }
    least = Math.min(least, dot / Math.sqrt(na * nb));
  }
  return least;
}

const forced = process.env.TSBERT_Q8_KERNEL;
afterEach(() => {
  if (forced === undefined) delete process.env.TSBERT_Q8_KERNEL;
  else process.env.TSBERT_Q8_KERNEL = forced;
});

describe('q8', () => {
  it('embeds within cosine 0.99 of f32, and every kernel gives the portable kernel’s bits', async () => {
    const f32 = await BertModel.load(MODEL);
    const q8 = await BertModel.load(MODEL, { dtype: 'q8' });
    expect([f32.dtype, q8.dtype]).toEqual(['f32', 'q8']);
    const [a, b] = [await embed(f32, SENTENCES), await embed(q8, SENTENCES)];
    expect(b.data).not.toEqual(a.data); // the int8 products did run
    expect(leastCosine(a.data, b.data, a.shape[1])).toBeGreaterThanOrEqual(0.99);

    const quantizedAfter = await BertModel.load(MODEL);
    await quantizedAfter.quantize(); // the same int8 products, from the f32 weights it keeps
    const c = await embed(quantizedAfter, SENTENCES);
    expect(leastCosine(a.data, c.data, a.shape[1])).toBeGreaterThanOrEqual(0.99);

    process.env.TSBERT_Q8_KERNEL = 'portable';
    const portable = await BertModel.load(MODEL, { dtype: 'q8' });
    expect(await portable.quantize()).toBe('portable');
    expect((await embed(portable, SENTENCES)).data).toEqual(b.data);
    const portableAfter = await BertModel.load(MODEL);
    expect(await portableAfter.quantize()).toBe('portable');
    expect((await embed(portableAfter, SENTENCES)).data).toEqual(c.data);
    for (const kernel of ['avx2', 'avx512-vnni', 'neon-dot']) {
      process.env.TSBERT_Q8_KERNEL = kernel;
      const m = await BertModel.load(MODEL, { dtype: 'q8' });
      const used = await m.quantize(); // the kernel, or the portable one on a CPU without it
      expect([kernel, 'portable']).toContain(used);
      expect((await embed(m, SENTENCES)).data, used).toEqual(b.data);
    }
  });

  it('classifies within 0.01 of f32; quantised after an f32 load it saves f32, loaded in q8 it cannot save', async () => {
    const f32 = await BertModel.load(join(TASKS, 'single'));
    const q8 = await BertModel.load(join(TASKS, 'single'), { dtype: 'q8' });
    const quantizedAfter = await BertModel.load(join(TASKS, 'single'));
    await quantizedAfter.quantize();
    expect([q8.paramCount, quantizedAfter.paramCount]).toEqual([f32.paramCount, f32.paramCount]);
    const want = await classify(f32, SENTENCES, { topK: null });
    for (const model of [q8, quantizedAfter]) {
      const got = await classify(model, SENTENCES, { topK: null });
      for (const [row, ranked] of got.entries()) {
        for (const { label, score } of ranked) {
          const theirs = want[row].find((r) => r.label === label)?.score ?? Number.NaN;
          expect(Math.abs(score - theirs), `${row} ${label}`).toBeLessThan(0.01);
        }
      }
    }
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-q8-'));
    try {
      await quantizedAfter.save(dir);
      const reloaded = await BertModel.load(dir);
      expect(reloaded.dtype).toBe('f32');
      expect(await classify(reloaded, SENTENCES, { topK: null })).toEqual(want);
      const other = join(dir, 'from-q8');
      const refused = q8.save(other);
      await expect(refused).rejects.toThrow(RangeError);
      await expect(refused).rejects.toThrow(
        /^model: it was loaded with dtype 'q8' and holds some of its weights in int8 only: it cannot be saved; load it without dtype 'q8'/,
      );
      await expect(readFile(join(other, 'config.json'))).rejects.toThrow(/ENOENT/);
      expect(await classify(q8, SENTENCES, { topK: null })).toEqual(await classify(q8, SENTENCES, { topK: null }));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports its memory footprint: in q8 the int8 weights, not the f32 ones', async () => {
    // 4 blocks of hidden 256 (3.1 M dense weights: 12.6 MB in f32) and a token table of
    // 4000 × 256 (4.1 MB in f32); the footprint is also what V8 is told the model holds
    const tokens = [...RESERVED_TOKENS, ...Array.from({ length: 4000 - RESERVED_TOKENS.length }, (_, i) => `w${i}`)];
    const config = { hidden: 256, ffnHidden: 1024, heads: 4, layers: 4, maxPositions: 64 };
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-q8-memory-'));
    try {
      await BertModel.create(Vocab.fromJSON({ tokens }), { config: { ...config, mlmHead: false } }).save(dir);
      const [dense, table] = [4 * (4 * 256 * 256 + 2 * 256 * 1024), 4000 * 256];
      const extra = 4 * (5 * 256 + 1024) * 12 + 4000 * 4; // a scale, a sum and a bias a channel, a scale a row
      // the f32 pass reads the weights in place with a dot kernel (AVX2 with FMA, AVX-512), and
      // keeps a transposed f32 copy for gemm without one (forced here by TSBERT_F32_KERNEL)
      const cpu = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
      const dotKernel = process.arch === 'x64' && /\bavx2\b/.test(cpu) && /\bfma\b/.test(cpu);
      const forcedF32 = process.env.TSBERT_F32_KERNEL;
      process.env.TSBERT_F32_KERNEL = 'packed';
      const withCopy = await BertModel.load(dir);
      delete process.env.TSBERT_F32_KERNEL;
      const f32 = await BertModel.load(dir);
      if (forcedF32 !== undefined) process.env.TSBERT_F32_KERNEL = forcedF32;
      const q8 = await BertModel.load(dir, { dtype: 'q8' });
      const params = 4 * f32.paramCount;
      expect(withCopy.memoryFootprint).toBe(params + 4 * dense);
      expect(f32.memoryFootprint).toBe(params + (dotKernel ? 0 : 4 * dense));
      // the dense layers and the table at a byte a value, plus scales, sums and the biases'
      // copies
      const q8Bytes = params - 3 * (dense + table);
      expect(q8.memoryFootprint).toBeGreaterThanOrEqual(q8Bytes);
      expect(q8.memoryFootprint).toBeLessThanOrEqual(q8Bytes + extra);
      for (const model of [f32, withCopy]) {
        await model.quantize(); // the int8 copy beside the f32 weights (instead of an f32 copy)
        expect(model.memoryFootprint - params).toBeGreaterThanOrEqual(dense);
        expect(model.memoryFootprint - params).toBeLessThanOrEqual(dense + extra);
      }
      const before = q8.memoryFootprint;
      await q8.quantize(); // quantised already: nothing more
      expect(q8.memoryFootprint).toBe(before);
      f32.dispose();
      expect(f32.memoryFootprint).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses to train, and names a dtype that does not exist', async () => {
    const q8 = await BertModel.load(join(TASKS, 'single'), { dtype: 'q8' });
    const sequences = q8.tokenizer.pad(q8.tokenizer.encodeBatch(SENTENCES.slice(0, 3).map((t) => [t] as const)));
    await expect(q8.trainTaskStep(sequences, Int32Array.from([0, 1, 2]))).rejects.toThrow(
      /^model: it was loaded with dtype 'q8' and holds some of its weights in int8 only: it cannot train/,
    );
    expect(q8.stepsTaken).toBe(0);
    const quantizedAfter = await BertModel.load(join(TASKS, 'single'));
    await quantizedAfter.quantize();
    await expect(quantizedAfter.trainTaskStep(sequences, Int32Array.from([0, 1, 2]))).rejects.toThrow(
      /^model: it is quantised \(q8\): .*cannot train/,
    );
    await expect(BertModel.load(MODEL, { dtype: 'int4' as 'q8' })).rejects.toThrow(
      "dtype: expected 'f32' or 'q8', got int4",
    );
  });

  it('--dtype q8 on the command line, the same lines with the portable kernel forced', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-q8-cli-'));
    try {
      const input = join(dir, 'texts.txt');
      await writeFile(input, `${SENTENCES.join('\n')}\n`);
      const best = await tsbert('embed', '--model', MODEL, '--input', input, '--dtype', 'q8');
      const portable = await tsbertWith(
        { TSBERT_Q8_KERNEL: 'portable' },
        ...['embed', '--model', MODEL, '--input', input, '--dtype', 'q8'],
      );
      expect([best.code, portable.code], best.stderr + portable.stderr).toEqual([0, 0]);
      expect(best.stdout.trim().split('\n')).toHaveLength(SENTENCES.length);
      expect(portable.stdout).toBe(best.stdout);
      const f32 = await tsbert('embed', '--model', MODEL, '--input', input);
      expect(f32.stdout).not.toBe(best.stdout);
      const bad = await tsbert('embed', '--model', MODEL, '--input', input, '--dtype', 'int4');
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain('--dtype must be f32 or q8.');
      expect(await readFile(input, 'utf8')).toContain('crane'); // the input is left alone
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
