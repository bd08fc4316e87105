import { describe, expect, it } from 'vitest';

import { FIRST_WORD_ID, PAD_ID, syntheticBatch } from '../../src/data/index.js';

describe('syntheticBatch', () => {
  it('makes batches a model accepts, by the documented rules', () => {
    const [b, l, p, vocab] = [9, 16, 3, 50];
    const batch = syntheticBatch(vocab, { batchSize: b, seqLen: l, numPreds: p, seed: 4 });
    expect([batch.batchSize, batch.seqLen, batch.numPreds]).toEqual([b, l, p]);
    for (let row = 0; row < b; row++) {
      const valid = batch.validLens[row];
      expect(valid).toBeGreaterThanOrEqual(p + 2);
      expect(valid).toBeLessThanOrEqual(l);
      const tokens = batch.tokens.subarray(row * l, (row + 1) * l);
      expect(tokens.subarray(0, valid).every((t) => t >= FIRST_WORD_ID && t < vocab)).toBe(true);
      expect(tokens.subarray(valid).every((t) => t === PAD_ID)).toBe(true);
      for (let k = 0; k < p; k++) {
        const i = row * p + k;
        const padded = k === p - 1 && row % 2 === 1;
        expect(batch.mlmWeights[i]).toBe(padded ? 0 : 1);
        if (!padded) expect(batch.predPositions[i]).toBeLessThan(valid);
      }
      expect(batch.nspLabels[row]).toBe(row % 2);
    }
  });

  it('is reproducible under a seed and pads predictions as the pipeline does by default', () => {
    const a = syntheticBatch(30, { batchSize: 4, seed: 1 });
    expect(syntheticBatch(30, { batchSize: 4, seed: 1 })).toEqual(a);
    expect(syntheticBatch(30, { batchSize: 4, seed: 2 }).tokens).not.toEqual(a.tokens);
    expect([a.seqLen, a.numPreds]).toEqual([64, 10]);
  });

  it('names an option that admits no batch', () => {
    expect(() => syntheticBatch(5, { batchSize: 1 })).toThrow(/^vocabSize:/);
    expect(() => syntheticBatch(30, { batchSize: 0 })).toThrow(/^batchSize:/);
    expect(() => syntheticBatch(30, { batchSize: 1, seqLen: 4, numPreds: 3 })).toThrow(/^numPreds:/);
  });
});
