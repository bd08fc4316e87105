/**
 * Batching: padded examples served `batchSize` rows at a time in a given order, each batch in
 * fresh typed arrays (the native step may still read the previous one).
 *
 * @module
 */
import { type Batch, emptyBatch } from './batch.js';

/** Rows `rows` of `examples`, in that order, as one batch. */
export function takeRows(examples: Batch, rows: ArrayLike<number>): Batch {
  const { seqLen: l, numPreds: p } = examples;
  const b = rows.length;
  const batch = emptyBatch(b, l, p);
  for (let i = 0; i < b; i++) {
    const r = rows[i];
    batch.tokens.set(examples.tokens.subarray(r * l, (r + 1) * l), i * l);
    batch.segments.set(examples.segments.subarray(r * l, (r + 1) * l), i * l);
    batch.predPositions.set(examples.predPositions.subarray(r * p, (r + 1) * p), i * p);
    batch.mlmWeights.set(examples.mlmWeights.subarray(r * p, (r + 1) * p), i * p);
    batch.mlmLabels.set(examples.mlmLabels.subarray(r * p, (r + 1) * p), i * p);
    batch.validLens[i] = examples.validLens[r];
    batch.nspLabels[i] = examples.nspLabels[r];
  }
  return batch;
}

/**
 * The rows of `examples` in `order`, `batchSize` at a time; the last, shorter batch is served
 * unless `dropLast`.
 */
export function* batchesInOrder(
  examples: Batch,
  order: Int32Array,
  batchSize: number,
  dropLast: boolean,
): Generator<Batch> {
  for (let start = 0; start < order.length; start += batchSize) {
    if (dropLast && start + batchSize > order.length) return;
    yield takeRows(examples, order.subarray(start, start + batchSize));
  }
}
