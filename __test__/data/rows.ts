/** Views of served batches that the data tests compare. */
import { BATCH_ARRAYS, type Batch } from '../../src/data/batch.js';

/** Every array of the batches, as hex. */
export const bytes = (batches: Batch[]) =>
  batches.map((b) => BATCH_ARRAYS.map((key) => Buffer.from(b[key].buffer).toString('hex')).join('|'));

/** Each row of the batches with its masks undone (the labels put back), sorted: the examples regardless of order and masks. */
export function unmaskedRows(batches: Batch[]): string[] {
  const rows: string[] = [];
  for (const b of batches) {
    for (let i = 0; i < b.batchSize; i++) {
      const tokens = Array.from(b.tokens.subarray(i * b.seqLen, (i + 1) * b.seqLen));
      for (let m = 0; m < b.numPreds; m++)
        if (b.mlmWeights[i * b.numPreds + m] === 1)
          tokens[b.predPositions[i * b.numPreds + m]] = b.mlmLabels[i * b.numPreds + m];
      const segments = Array.from(b.segments.subarray(i * b.seqLen, (i + 1) * b.seqLen));
      rows.push(JSON.stringify([tokens, segments, b.validLens[i], b.nspLabels[i]]));
    }
  }
  return rows.sort();
}
