/**
 * Next-sentence-prediction pairs, as the textbook's `_get_nsp_data_from_paragraph` makes
 * them: `<cls>` a `<sep>` b `<sep>`, b the true next sentence or a random one, each with
 * probability ½.
 *
 * @module
 */
import type { Corpus } from './corpus.js';
import type { Rng } from './random.js';
import { CLS_ID, SEP_ID } from './vocab.js';

/** Sentence pairs end to end in flat typed arrays (not yet padded). */
export interface SentencePairs {
  /** Number of pairs. */
  count: number;
  /** The longest a pair may be, `<cls>` and `<sep>`s included. */
  maxLen: number;
  /** Token ids of `<cls>` a `<sep>` b `<sep>` of every pair, end to end. */
  tokens: Int32Array;
  /** Pair `i` is `tokens[starts[i], starts[i + 1])`; `count + 1` entries. */
  starts: Int32Array;
  /** Length of each pair's first segment, `<cls>` a `<sep>`: where segment 1 begins. */
  firstSegmentLens: Int32Array;
  /** Each pair's label: 1 when b follows a in the corpus (isNext), 0 when b is random (notNext). */
  isNext: Int32Array;
}

/**
 * For each consecutive pair (a, b) of every paragraph of `corpus`, keeps b with probability ½
 * (isNext) or replaces it by a random sentence of a random paragraph (notNext); pairs with
 * `len(a) + len(b) + 3 > maxLen` are skipped. `ids` are the corpus's tokens as vocabulary ids.
 */
export function nextSentencePairs(
  corpus: Pick<Corpus, 'sentenceStarts' | 'paragraphStarts'>,
  ids: Int32Array,
  maxLen: number,
  rng: Rng,
): SentencePairs {
  const { sentenceStarts, paragraphStarts } = corpus;
  const numParagraphs = paragraphStarts.length - 1;
  const bound = sentenceStarts.length - 1 - numParagraphs; // pairs when none is skipped
  const tokens = new Int32Array(bound * maxLen);
  const starts = new Int32Array(bound + 1);
  const firstSegmentLens = new Int32Array(bound);
  const isNext = new Int32Array(bound);
  let count = 0;
  let end = 0;
  for (let p = 0; p < numParagraphs; p++) {
    for (let a = paragraphStarts[p]; a + 1 < paragraphStarts[p + 1]; a++) {
      let b = a + 1;
      const next = rng.next() < 0.5;
      if (!next) {
        const q = rng.below(numParagraphs);
        b = paragraphStarts[q] + rng.below(paragraphStarts[q + 1] - paragraphStarts[q]);
      }
      const a0 = sentenceStarts[a];
      const a1 = sentenceStarts[a + 1];
      const b0 = sentenceStarts[b];
      const b1 = sentenceStarts[b + 1];
      if (a1 - a0 + (b1 - b0) + 3 > maxLen) continue;
      tokens[end++] = CLS_ID;
      tokens.set(ids.subarray(a0, a1), end);
      end += a1 - a0;
      tokens[end++] = SEP_ID;
      tokens.set(ids.subarray(b0, b1), end);
      end += b1 - b0;
      tokens[end++] = SEP_ID;
      firstSegmentLens[count] = a1 - a0 + 2;
      isNext[count] = next ? 1 : 0;
      starts[++count] = end;
    }
  }
  return {
    count,
    maxLen,
    tokens: tokens.slice(0, end),
    starts: starts.slice(0, count + 1),
    firstSegmentLens: firstSegmentLens.slice(0, count),
    isNext: isNext.slice(0, count),
  };
}
