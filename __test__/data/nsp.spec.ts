import { describe, expect, it } from 'vitest';

import { Corpus, type TokenizedCorpus, Vocab, vocabPieces } from '../../src/data/index.js';
import { nextSentencePairs } from '../../src/data/nsp.js';
import { type Rng, rngFor, Stream } from '../../src/data/random.js';
import { textbookIds } from '../../src/data/token-ids.js';
import { MemoryTokens } from '../../src/data/token-store.js';
import { withinBounds } from './stats.js';

/** An Rng that always says isNext (next() < 0.5). */
const alwaysNext: Rng = { next: () => 0.25, below: () => 0, clone: () => alwaysNext };

const ids = Int32Array.from({ length: 10 }, (_, i) => 10 + i);
/** Sentences (token offsets) and paragraphs (sentence offsets) over `ids`, in stored order. */
const corpusOf = (sentenceStarts: number[], paragraphStarts: number[]): TokenizedCorpus => ({
  tokens: new MemoryTokens(ids),
  sentenceStarts: Float64Array.from(sentenceStarts),
  paragraphStarts: Float64Array.from(paragraphStarts),
  order: Int32Array.from({ length: paragraphStarts.length - 1 }, (_, p) => p),
});
/** One paragraph of four sentences of 2, 3, 1 and 4 words, ids 10… in order. */
const oneParagraph = corpusOf([0, 2, 5, 6, 10], [0, 4]);
const all = (c: TokenizedCorpus) => ({ from: 0, to: c.order.length });

/** Pair `i` of `pairs` as [tokens, first segment length, isNext]. */
const pair = (pairs: ReturnType<typeof nextSentencePairs>, i: number) => [
  Array.from(pairs.tokens.subarray(pairs.starts[i], pairs.starts[i + 1])),
  pairs.firstSegmentLens[i],
  pairs.isNext[i],
];

describe('next-sentence pairs', () => {
  it('lays out <cls> a <sep> b <sep> for each consecutive pair', () => {
    const pairs = nextSentencePairs(oneParagraph, all(oneParagraph), 8, alwaysNext, textbookIds(0));
    expect(pairs.count).toBe(3);
    expect(pair(pairs, 0)).toEqual([[3, 10, 11, 4, 12, 13, 14, 4], 4, 1]);
    expect(pair(pairs, 1)).toEqual([[3, 12, 13, 14, 4, 15, 4], 5, 1]);
    expect(pair(pairs, 2)).toEqual([[3, 15, 4, 16, 17, 18, 19, 4], 3, 1]);
  });

  it('skips the pairs with len(a) + len(b) + 3 > maxLen', () => {
    // lengths 2 + 3 + 3 = 8, 3 + 1 + 3 = 7, 1 + 4 + 3 = 8
    const pairs = nextSentencePairs(oneParagraph, all(oneParagraph), 7, alwaysNext, textbookIds(0));
    expect(pairs.count).toBe(1);
    expect(pair(pairs, 0)).toEqual([[3, 12, 13, 14, 4, 15, 4], 5, 1]);
    expect(nextSentencePairs(oneParagraph, all(oneParagraph), 6, alwaysNext, textbookIds(0)).count).toBe(0);
  });

  it('replaces b by the sentence drawn from the paragraph drawn when notNext', () => {
    // two paragraphs, [s0 s1] and [s2 s3]; the draws pick paragraph 1, sentence 1 (s3), then paragraph 0, sentence 0 (s0)
    const corpus = corpusOf([0, 2, 5, 6, 10], [0, 2, 4]);
    const draws = [1, 1, 0, 0];
    const notNext: Rng = { next: () => 0.75, below: () => draws.shift()!, clone: () => notNext };
    const pairs = nextSentencePairs(corpus, all(corpus), 64, notNext, textbookIds(0));
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
    const tokenized = corpus.tokenize(vocabPieces(corpus.words, vocab));
    const pairs = nextSentencePairs(tokenized, all(tokenized), 64, rngFor(1, Stream.NextSentence), textbookIds(0));
    const sentence = (s: number) =>
      Array.from(tokenized.tokens.read(corpus.sentenceStarts[s], corpus.sentenceStarts[s + 1])).join(',');

    it('keeps the true next sentence half of the time', () => {
      expect(pairs.count).toBe(400 * 5);
      const rate = pairs.isNext.reduce((a, b) => a + b, 0) / pairs.count;
      expect(withinBounds(rate, 0.5, pairs.count), `isNext rate ${rate}`).toBe(true);
    });

    it('takes b from the next sentence when isNext, from any sentence of the corpus when notNext', () => {
      const allSentences = new Set(Array.from({ length: corpus.numSentences }, (_, s) => sentence(s)));
      let i = 0;
      for (const p of corpus.order) {
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
