/**
 * Masked-language-model targets, as the textbook's `_get_mlm_data_from_tokens` makes them:
 * 15% of each pair's tokens (never `<cls>` or `<sep>`) are chosen; each becomes `<mask>`
 * (80%), stays itself (10%) or becomes a random word (10%).
 *
 * @module
 */
import type { SentencePairs } from './nsp.js';
import { type Rng, roundHalfEven } from './random.js';
import type { TokenIds } from './token-ids.js';

/** Share of a pair's tokens that are predicted. */
export const MLM_RATE = 0.15;

/** Masked token ids and the prediction targets of every pair (not yet padded). */
export interface MaskedPairs {
  /** Token ids of every pair after masking, laid out as {@link SentencePairs.tokens}. */
  tokens: Int32Array;
  /** Pair `i` predicts entries `[predStarts[i], predStarts[i + 1])` of the two arrays below; `count + 1` entries. */
  predStarts: Int32Array;
  /** Positions predicted within their pair, ascending within a pair. */
  predPositions: Int32Array;
  /** The original ids at those positions. */
  predLabels: Int32Array;
}

/** Predictions of a pair of `numTokens` tokens: max(1, round(0.15 · numTokens)), Python's rounding. */
export function predictionsOf(numTokens: number): number {
  return Math.max(1, roundHalfEven(MLM_RATE * numTokens));
}

/**
 * Chooses {@link predictionsOf}(length) positions of each pair at random among those that are
 * not `<cls>` or `<sep>` (fewer if it has fewer), and masks them; the labels are the original
 * ids. A random replacement is a word id (`[ids.firstWord, ids.size)`), never a reserved token.
 */
export function maskPairs(pairs: SentencePairs, ids: TokenIds, rng: Rng): MaskedPairs {
  const { count, starts } = pairs;
  const source = pairs.tokens;
  const tokens = source.slice();
  const predStarts = new Int32Array(count + 1);
  const predPositions = new Int32Array(source.length); // at most one prediction a token
  const predLabels = new Int32Array(source.length);
  const words = ids.size - ids.firstWord;
  const candidates = new Int32Array(pairs.maxLen);
  let end = 0;
  for (let i = 0; i < count; i++) {
    const start = starts[i];
    const n = starts[i + 1] - start;
    let c = 0;
    for (let j = 0; j < n; j++) {
      const t = source[start + j];
      if (t !== ids.cls && t !== ids.sep) candidates[c++] = j;
    }
    const k = Math.min(predictionsOf(n), c);
    for (let m = 0; m < k; m++) {
      const r = m + rng.below(c - m); // partial Fisher–Yates: k distinct positions
      const t = candidates[m];
      candidates[m] = candidates[r];
      candidates[r] = t;
    }
    const chosen = candidates.subarray(0, k).sort();
    for (let m = 0; m < k; m++) {
      const at = start + chosen[m];
      if (rng.next() < 0.8) tokens[at] = ids.mask;
      else if (rng.next() >= 0.5 && words > 0) tokens[at] = ids.firstWord + rng.below(words);
      predPositions[end] = chosen[m];
      predLabels[end++] = source[at];
    }
    predStarts[i + 1] = end;
  }
  return { tokens, predStarts, predPositions: predPositions.slice(0, end), predLabels: predLabels.slice(0, end) };
}
