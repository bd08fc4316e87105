/**
 * {@link syntheticBatch}: random but valid batches, to benchmark or smoke-test a model without
 * a corpus (the tests, the benchmarks and the GPU check all use it).
 *
 * @module
 */
import { type Batch, emptyBatch } from './batch.js';
import { DATA_DEFAULTS } from './defaults.js';
import { paddedPredictions } from './padding.js';
import { rngFor, Stream } from './random.js';
import { FIRST_WORD_ID, PAD_ID } from './vocab.js';

/** The shape and seed of a synthetic batch. */
export interface SyntheticBatchOptions {
  /** B: rows. */
  batchSize: number;
  /** L: tokens a row; default `DATA_DEFAULTS.maxLen`. */
  seqLen?: number;
  /** P: predictions a row; default round(0.15 · L), as the data pipeline pads them. */
  numPreds?: number;
  /** Seeds every value (an integer in [0, 2^32)); default 0. */
  seed?: number;
}

/**
 * A random batch that a model of `vocabSize` ids accepts: each row has a random valid length
 * in `[max(P + 2, 3), L]` filled with word ids (≥ {@link FIRST_WORD_ID}) and `<pad>` after it,
 * a random split into two segments, P predictions at random positions inside it with random
 * word labels, the last prediction of every odd row padded (weight 0), and NSP labels
 * alternating 0, 1. The same options give the same batch. A `RangeError` names an option that
 * admits no such batch.
 */
export function syntheticBatch(vocabSize: number, options: SyntheticBatchOptions): Batch {
  const { batchSize: b, seqLen: l = DATA_DEFAULTS.maxLen, seed = 0 } = options;
  const p = options.numPreds ?? paddedPredictions(l);
  if (!Number.isInteger(vocabSize) || vocabSize <= FIRST_WORD_ID) {
    throw new RangeError(`vocabSize: expected an integer > ${FIRST_WORD_ID}, got ${String(vocabSize)}`);
  }
  if (!Number.isInteger(b) || b < 1) throw new RangeError(`batchSize: expected a positive integer, got ${String(b)}`);
  if (!Number.isInteger(l) || l < 3) throw new RangeError(`seqLen: expected an integer ≥ 3, got ${String(l)}`);
  if (!Number.isInteger(p) || p < 1 || p + 2 > l) {
    throw new RangeError(`numPreds: expected an integer in [1, seqLen - 2], got ${String(p)}`);
  }
  const rng = rngFor(seed, Stream.Synthetic);
  const between = (lo: number, hi: number) => lo + rng.below(hi - lo); // [lo, hi)
  const batch = emptyBatch(b, l, p);
  batch.tokens.fill(PAD_ID);
  for (let row = 0; row < b; row++) {
    const valid = between(Math.max(p + 2, 3), l + 1);
    const split = between(1, valid);
    batch.validLens[row] = valid;
    for (let j = 0; j < valid; j++) {
      batch.tokens[row * l + j] = between(FIRST_WORD_ID, vocabSize);
      batch.segments[row * l + j] = j >= split ? 1 : 0;
    }
    for (let k = 0; k < p; k++) {
      if (k === p - 1 && row % 2 === 1) continue; // padded: position 0, weight 0, label 0
      batch.predPositions[row * p + k] = between(1, valid);
      batch.mlmWeights[row * p + k] = 1;
      batch.mlmLabels[row * p + k] = between(FIRST_WORD_ID, vocabSize);
    }
    batch.nspLabels[row] = row % 2;
  }
  return batch;
}
