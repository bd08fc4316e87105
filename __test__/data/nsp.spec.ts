import { describe, expect, it } from 'vitest';

import { Corpus, Vocab } from '../../src/data/index.js';
import { nextSentencePairs } from '../../src/data/nsp.js';
import { type Rng, rngFor, Stream } from '../../src/data/random.js';
import { withinBounds } from './stats.js';

/** An Rng that always says isNext (next() < 0.5). */
const alwaysNext: Rng = { next: () => 0.25, below: () => 0 };

/** One paragraph of four sentences of 2, 3, 1 and 4 words, ids 10… in order. */
const oneParagraph = {
  sentenceStarts: Int32Array.from([0, 2, 5, 6, 10]),
  paragraphStarts: Int32Array.from([0, 4]),
};
const ids = Int32Array.from({ length: 10 }, (_, i) => 10 + i);

/** Pair `i` of `pairs` as [tokens, first segment length, isNext]. */
const pair = (pairs: ReturnType<typeof nextSentencePairs>, i: number) => [
  Array.from(pairs.tokens.subarray(pairs.starts[i], pairs.starts[i + 1])),
  pairs.firstSegmentLens[i],
  pairs.isNext[i],
];

describe('next-sentence pairs', () => {
  it('lays out <cls> a <sep> b <sep> for each consecutive pair', () => {
    const pairs = nextSentencePairs(oneParagraph, ids, 8, alwaysNext);
    expect(pairs.count).toBe(3);
    expect(pair(pairs, 0)).toEqual([[3, 10, 11, 4, 12, 13, 14, 4], 4, 1]);
    expect(pair(pairs, 1)).toEqual([[3, 12, 13, 14, 4, 15, 4], 5, 1]);
    expect(pair(pairs, 2)).toEqual([[3, 15, 4, 16, 17, 18, 19, 4], 3, 1]);
  });

  it('skips the pairs with len(a) + len(b) + 3 > maxLen', () => {
    // lengths 2 + 3 + 3 = 8, 3 + 1 + 3 = 7, 1 + 4 + 3 = 8
    const pairs = nextSentencePairs(oneParagraph, ids, 7, alwaysNext);
    expect(pairs.count).toBe(1);
    expect(pair(pairs, 0)).toEqual([[3, 12, 13, 14, 4, 15, 4], 5, 1]);
    expect(nextSentencePairs(oneParagraph, ids, 6, alwaysNext).count).toBe(0);
  });

  it('replaces b by the sentence drawn from the paragraph drawn when notNext', () => {
    // two paragraphs, [s0 s1] and [s2 s3]; the draws pick paragraph 1, sentence 1 (s3), then paragraph 0, sentence 0 (s0)
    const corpus = { sentenceStarts: Int32Array.from([0, 2, 5, 6, 10]), paragraphStarts: Int32Array.from([0, 2, 4]) };
    const draws = [1, 1, 0, 0];
    const notNext: Rng = { next: () => 0.75, below: () => draws.shift()! };
    const pairs = nextSentencePairs(corpus, ids, 64, notNext);
    expect(pairs.count).toBe(2);
    expect(pair(pairs, 0)).toEqual([[3, 10, 11, 4, 16, 17, 18, 19, 4], 4, 0]); // (s0, s3)
    expect(pair(pairs, 1)).toEqual([[3, 15, 4, 10, 11, 4], 3, 0]); // (s2, s0): paragraph 0, sentence 0
  });

  describe('over many draws', () => {
    const lines = Array.from({ length: 400 }, (_, k) =>
      Array.from({ length: 6 }, (_, j) =>
        Array.from({ length: 2 + ((j + k) % 5) }, (_, i) => `w${k}_${j}_${i}`).join(' '),
      ).join(' . '),
    );
    const corpus = Corpus.fromLines(lines, 1);
    const vocab = Vocab.build(corpus.wordCounts(), { minFreq: 1 });
    const corpusIds = corpus.idsIn(vocab);
    const pairs = nextSentencePairs(corpus, corpusIds, 64, rngFor(1, Stream.NextSentence));
    const sentence = (s: number) =>
      Array.from(corpusIds.subarray(corpus.sentenceStarts[s], corpus.sentenceStarts[s + 1])).join(',');

    it('keeps the true next sentence half of the time', () => {
      expect(pairs.count).toBe(400 * 5);
      const rate = pairs.isNext.reduce((a, b) => a + b, 0) / pairs.count;
      expect(withinBounds(rate, 0.5, pairs.count), `isNext rate ${rate}`).toBe(true);
    });

    it('takes b from the next sentence when isNext, from any sentence of the corpus when notNext', () => {
      const allSentences = new Set(Array.from({ length: corpus.numSentences }, (_, s) => sentence(s)));
      let i = 0;
      for (let p = 0; p < corpus.numParagraphs; p++) {
        for (let a = corpus.paragraphStarts[p]; a + 1 < corpus.paragraphStarts[p + 1]; a++, i++) {
          const tokens = Array.from(pairs.tokens.subarray(pairs.starts[i], pairs.starts[i + 1]));
          const first = pairs.firstSegmentLens[i];
          expect(tokens.slice(1, first - 1).join(',')).toBe(sentence(a));
          const b = tokens.slice(first, -1).join(',');
          if (pairs.isNext[i]) expect(b).toBe(sentence(a + 1));
          else expect(allSentences.has(b)).toBe(true);
        }
      }
    });
  });
});
