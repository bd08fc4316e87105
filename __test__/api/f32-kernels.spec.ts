/**
 * The f32 inference pass's kernels (`TSBERT_F32_KERNEL=avx512|avx2|packed`; a kernel this CPU
 * lacks falls back to `packed`, the `[in, out]` copy that `gemm` multiplies by): forcing each
 * gives the default kernel's embeddings and hidden states within f32 rounding (the kernels sum
 * in different orders, so not the same bits).
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { BertModel, embed } from '../../src/index.js';

const MODEL = join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures/hf/model');
const SENTENCES = [
  'the crane is flying over the river',
  'a crane driver came to the harbour early in the morning',
  'rain',
  'the committee met on tuesday to discuss the new budget and the plans for the bridge',
];

/** Largest absolute difference between two arrays of the same length. */
function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

const forced = process.env.TSBERT_F32_KERNEL;
afterEach(() => {
  if (forced === undefined) delete process.env.TSBERT_F32_KERNEL;
  else process.env.TSBERT_F32_KERNEL = forced;
});

describe('f32 kernels', () => {
  it('every forced kernel (or its fallback) gives the default one’s outputs within rounding', async () => {
    delete process.env.TSBERT_F32_KERNEL;
    const model = await BertModel.load(MODEL);
    const texts = model.tokenizer.encodeBatch(
      SENTENCES.map((t) => [t] as const),
      { maxLength: model.config.maxPositions },
    );
    const sequences = model.tokenizer.pad(texts);
    const want = {
      embeddings: (await embed(model, SENTENCES)).data,
      states: (await model.encodeSequences(sequences)).data,
    };
    for (const kernel of ['packed', 'avx2', 'avx512', 'no-such-kernel']) {
      process.env.TSBERT_F32_KERNEL = kernel;
      const m = await BertModel.load(MODEL);
      expect(maxAbsDiff((await embed(m, SENTENCES)).data, want.embeddings), kernel).toBeLessThan(1e-5);
      expect(maxAbsDiff((await m.encodeSequences(sequences)).data, want.states), kernel).toBeLessThan(1e-4);
    }
  });
});
