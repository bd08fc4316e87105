/**
 * Masked-language-model targets: 15% of each pair's tokens (never `<cls>` or `<sep>`)
 * are chosen; each becomes `<mask>` (80%), stays (10%) or becomes a random word (10%).
 *
 * @module
 */
import type { SentencePairs } from './nsp.js';
import { roundHalfEven, type Rng } from './random.js';
import { CLS, MASK, RESERVED_TOKENS, SEP, type Vocab } from './vocab.js';

/** Masked token ids and padded prediction targets of every pair. */
export interface MaskedPairs {
  /** P: predictions a row, round(0.15 · maxLen). */
  numPreds: number;
  /** count×maxLen token ids after masking. */
  tokens: Int32Array;
  /** count×P positions (ascending within a row, 0 for padding). */
  predPositions: Int32Array;
  /** count×P: 1 for a real prediction, 0 for padding. */
  mlmWeights: Float32Array;
  /** count×P original ids (0 for padding). */
  mlmLabels: Int32Array;
}

/** Predictions a row of `maxLen` tokens is padded to: round(0.15 · maxLen). */
export function predictionsFor(maxLen: number): number {
  return roundHalfEven(0.15 * maxLen);
}

/**
 * Chooses max(1, round(0.15 · validLen)) positions of each pair among those that are not
 * `<cls>` or `<sep>` and masks them as the textbook does; labels are the original ids.
 * A random replacement is a vocabulary word (never a reserved token).
 */
export function maskPairs(pairs: SentencePairs, vocab: Vocab, rng: Rng): MaskedPairs {
  const { count, maxLen } = pairs;
  const p = predictionsFor(maxLen);
  const tokens = pairs.tokens.slice();
  const predPositions = new Int32Array(count * p);
  const mlmWeights = new Float32Array(count * p);
  const mlmLabels = new Int32Array(count * p);
  const [cls, sep, mask] = [vocab.idOf(CLS), vocab.idOf(SEP), vocab.idOf(MASK)];
  const firstWord = RESERVED_TOKENS.length;
  const words = vocab.size - firstWord;
  const candidates = new Int32Array(maxLen);
  for (let i = 0; i < count; i++) {
    const row = i * maxLen;
    const n = pairs.validLens[i];
    let c = 0;
    for (let j = 0; j < n; j++) {
      const t = pairs.tokens[row + j];
      if (t !== cls && t !== sep) candidates[c++] = j;
    }
    const k = Math.min(Math.max(1, roundHalfEven(0.15 * n)), c, p);
    for (let m = 0; m < k; m++) {
      const r = m + rng.below(c - m); // partial Fisher–Yates: k distinct positions
      [candidates[m], candidates[r]] = [candidates[r], candidates[m]];
    }
    const chosen = candidates.subarray(0, k).sort();
    for (let m = 0; m < k; m++) {
      const j = chosen[m];
      const original = pairs.tokens[row + j];
      if (rng.next() < 0.8) tokens[row + j] = mask;
      else if (rng.next() >= 0.5 && words > 0) tokens[row + j] = firstWord + rng.below(words);
      predPositions[i * p + m] = j;
      mlmWeights[i * p + m] = 1;
      mlmLabels[i * p + m] = original;
    }
  }
  return { numPreds: p, tokens, predPositions, mlmWeights, mlmLabels };
}
