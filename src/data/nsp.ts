/**
 * Next-sentence-prediction pairs, as the textbook's `_get_nsp_data_from_paragraph` makes
 * them: `<cls>` a `<sep>` b `<sep>`, b the true next sentence or a random one, each with
 * probability ½.
 *
 * @module
 */
import type { TokenizedCorpus } from './corpus.js';
import type { Rng } from './random.js';
import type { TokenIds } from './token-ids.js';

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

/** Which of a corpus's paragraphs (in its seeded order) to make pairs of: `[from, to)`. */
export interface ParagraphRange {
  /** The first. */
  from: number;
  /** One past the last. */
  to: number;
}

/**
 * Draws the pairs of the paragraphs `range` of `corpus` (in its seeded order) and calls
 * `keep(a, b, next, p)` with the sentences of each one that fits `maxLen` (`len(a) + len(b) + 3`)
 * and a's stored paragraph; returns how many fit. Only sentence lengths are looked at: counting
 * the pairs reads no token.
 */
export function drawPairs(
  corpus: Pick<TokenizedCorpus, 'sentenceStarts' | 'paragraphStarts' | 'order'>,
  range: ParagraphRange,
  maxLen: number,
  rng: Rng,
  keep?: (a: number, b: number, next: boolean, p: number) => void,
): number {
  const { sentenceStarts, paragraphStarts, order } = corpus;
  const numParagraphs = order.length;
  let count = 0;
  for (let q = range.from; q < range.to; q++) {
    const p = order[q];
    for (let a = paragraphStarts[p]; a + 1 < paragraphStarts[p + 1]; a++) {
      let b = a + 1;
      const next = rng.next() < 0.5;
      if (!next) {
        const r = order[rng.below(numParagraphs)];
        b = paragraphStarts[r] + rng.below(paragraphStarts[r + 1] - paragraphStarts[r]);
      }
      const length = sentenceStarts[a + 1] - sentenceStarts[a] + sentenceStarts[b + 1] - sentenceStarts[b] + 3;
      if (length > maxLen) continue;
      keep?.(a, b, next, p);
      count++;
    }
  }
  return count;
}

/**
 * For each consecutive pair (a, b) of the paragraphs `range` of `corpus` (in its seeded order),
 * keeps b with probability ½ (isNext) or replaces it by a random sentence of a random paragraph
 * of the whole corpus (notNext), as the textbook does; pairs with `len(a) + len(b) + 3 > maxLen`
 * are skipped. Framed with `special`'s `cls` and `sep`. Each paragraph is read once, each
 * random sentence alone.
 */
export function nextSentencePairs(
  corpus: TokenizedCorpus,
  range: ParagraphRange,
  maxLen: number,
  rng: Rng,
  special: Pick<TokenIds, 'cls' | 'sep'>,
): SentencePairs {
  const { sentenceStarts, paragraphStarts, order } = corpus;
  let bound = 0; // pairs when none is skipped
  for (let q = range.from; q < range.to; q++) bound += paragraphStarts[order[q] + 1] - paragraphStarts[order[q]] - 1;
  const tokens = new Int32Array(bound * maxLen);
  const starts = new Int32Array(bound + 1);
  const firstSegmentLens = new Int32Array(bound);
  const isNext = new Int32Array(bound);
  let count = 0;
  let end = 0;
  let held: { p: number; first: number; last: number; ids: Int32Array } = {
    p: -1,
    first: 0,
    last: 0,
    ids: new Int32Array(0),
  }; // a's paragraph, read once
  const sentence = (s: number) => {
    if (s < held.first || s >= held.last) return corpus.tokens.read(sentenceStarts[s], sentenceStarts[s + 1]);
    const base = sentenceStarts[held.first];
    return held.ids.subarray(sentenceStarts[s] - base, sentenceStarts[s + 1] - base);
  };
  const append = (ids: Int32Array) => {
    tokens.set(ids, end);
    end += ids.length;
  };
  drawPairs(corpus, range, maxLen, rng, (a, b, next, p) => {
    if (p !== held.p) {
      const [first, last] = [paragraphStarts[p], paragraphStarts[p + 1]];
      held = { p, first, last, ids: corpus.tokens.read(sentenceStarts[first], sentenceStarts[last]) };
    }
    tokens[end++] = special.cls;
    append(sentence(a));
    tokens[end++] = special.sep;
    firstSegmentLens[count] = end - starts[count];
    append(sentence(b));
    tokens[end++] = special.sep;
    isNext[count] = next ? 1 : 0;
    starts[++count] = end;
  });
  return {
    count,
    maxLen,
    tokens: tokens.slice(0, end),
    starts: starts.slice(0, count + 1),
    firstSegmentLens: firstSegmentLens.slice(0, count),
    isNext: isNext.slice(0, count),
  };
}
