/**
 * Padding, as the textbook's `_pad_bert_inputs` does it: tokens to `maxLen` with `<pad>`,
 * segments with 0, and the predictions to round(0.15 · maxLen) with 0 (weight 0 marking the
 * padding).
 *
 * @module
 */
import { type Batch, emptyBatch } from './batch.js';
import { type MaskedPairs, MLM_RATE } from './masking.js';
import type { SentencePairs } from './nsp.js';
import { roundHalfEven } from './random.js';

/** Predictions a row of `maxLen` tokens is padded to: round(0.15 · maxLen), Python's rounding. */
export function paddedPredictions(maxLen: number): number {
  return roundHalfEven(MLM_RATE * maxLen);
}

/** Every pair, masked and padded to `pairs.maxLen` tokens with `pad`: one {@link Batch} of `pairs.count` rows. */
export function padPairs(pairs: SentencePairs, masked: MaskedPairs, pad: number): Batch {
  const { count: b, maxLen: l } = pairs;
  const p = paddedPredictions(l);
  const padded = emptyBatch(b, l, p);
  padded.tokens.fill(pad);
  padded.nspLabels.set(pairs.isNext);
  for (let i = 0; i < b; i++) {
    const [start, end] = [pairs.starts[i], pairs.starts[i + 1]];
    const [from, to] = [masked.predStarts[i], masked.predStarts[i + 1]];
    padded.tokens.set(masked.tokens.subarray(start, end), i * l);
    padded.segments.fill(1, i * l + pairs.firstSegmentLens[i], i * l + end - start);
    padded.validLens[i] = end - start;
    padded.predPositions.set(masked.predPositions.subarray(from, to), i * p);
    padded.mlmWeights.fill(1, i * p, i * p + to - from);
    padded.mlmLabels.set(masked.predLabels.subarray(from, to), i * p);
  }
  return padded;
}
