import { describe, expect, it } from 'vitest';

import type { MaskedPairs } from '../../src/data/masking.js';
import type { SentencePairs } from '../../src/data/nsp.js';
import { paddedPredictions, padPairs } from '../../src/data/padding.js';
import { PAD_ID } from '../../src/data/vocab.js';

describe('padding', () => {
  it('pads predictions to round(0.15 · maxLen), halves to even', () => {
    // Python: [round(0.15 * n) for n in (5, 10, 20, 30, 50, 64, 128)]
    expect([5, 10, 20, 30, 50, 64, 128].map(paddedPredictions)).toEqual([1, 2, 3, 4, 8, 10, 19]);
  });

  it('pads tokens with <pad>, segments with 0 and predictions with 0 (weight 0)', () => {
    const pairs: SentencePairs = {
      count: 2,
      maxLen: 10,
      tokens: Int32Array.from([3, 10, 11, 4, 12, 4, 3, 13, 4, 14, 15, 16, 4]),
      starts: Int32Array.from([0, 6, 13]),
      firstSegmentLens: Int32Array.from([4, 3]),
      isNext: Int32Array.from([1, 0]),
    };
    const masked: MaskedPairs = {
      tokens: Int32Array.from([3, 2, 11, 4, 12, 4, 3, 13, 4, 2, 15, 99, 4]),
      predStarts: Int32Array.from([0, 1, 3]),
      predPositions: Int32Array.from([1, 3, 5]),
      predLabels: Int32Array.from([10, 14, 16]),
    };
    const padded = padPairs(pairs, masked, PAD_ID);
    expect(padded).toEqual({
      batchSize: 2,
      seqLen: 10,
      numPreds: 2,
      tokens: Int32Array.from([3, 2, 11, 4, 12, 4, 1, 1, 1, 1, 3, 13, 4, 2, 15, 99, 4, 1, 1, 1]),
      segments: Int32Array.from([0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0]),
      validLens: Int32Array.from([6, 7]),
      predPositions: Int32Array.from([1, 0, 3, 5]),
      mlmWeights: Float32Array.from([1, 0, 1, 1]),
      mlmLabels: Int32Array.from([10, 0, 14, 16]),
      nspLabels: Int32Array.from([1, 0]),
    });
  });
});
