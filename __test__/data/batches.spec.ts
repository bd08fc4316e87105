import { describe, expect, it } from 'vitest';
import { batchesInOrder, takeRows } from '../../src/data/batches.js';
import type { Batch } from '../../src/data/index.js';

/** Three rows of L = 3, P = 1, each value naming its row (10 + row, or the row itself). */
const examples: Batch = {
  batchSize: 3,
  seqLen: 3,
  numPreds: 1,
  tokens: Int32Array.from([10, 10, 10, 11, 11, 11, 12, 12, 12]),
  segments: Int32Array.from([0, 0, 1, 0, 1, 1, 1, 1, 1]),
  validLens: Int32Array.from([1, 2, 3]),
  predPositions: Int32Array.from([0, 1, 2]),
  mlmWeights: Float32Array.from([1, 0, 1]),
  mlmLabels: Int32Array.from([20, 21, 22]),
  nspLabels: Int32Array.from([1, 0, 1]),
};

describe('batching', () => {
  it('copies the rows asked for, in order, into a batch of their own', () => {
    const batch = takeRows(examples, [2, 0]);
    expect(batch).toEqual({
      batchSize: 2,
      seqLen: 3,
      numPreds: 1,
      tokens: Int32Array.from([12, 12, 12, 10, 10, 10]),
      segments: Int32Array.from([1, 1, 1, 0, 0, 1]),
      validLens: Int32Array.from([3, 1]),
      predPositions: Int32Array.from([2, 0]),
      mlmWeights: Float32Array.from([1, 1]),
      mlmLabels: Int32Array.from([22, 20]),
      nspLabels: Int32Array.from([1, 1]),
    });
    batch.tokens[0] = 0;
    expect(examples.tokens[6]).toBe(12);
  });

  it('serves the order batchSize rows at a time, keeping the last short batch unless dropLast', () => {
    const order = Int32Array.from([2, 0, 1]);
    expect([...batchesInOrder(examples, order, 2, false)].map((b) => Array.from(b.validLens))).toEqual([[3, 1], [2]]);
    expect([...batchesInOrder(examples, order, 2, true)].map((b) => Array.from(b.validLens))).toEqual([[3, 1]]);
    expect([...batchesInOrder(examples, order, 3, true)].map((b) => Array.from(b.validLens))).toEqual([[3, 1, 2]]);
    expect([...batchesInOrder(examples, order, 4, true)]).toEqual([]);
  });
});
