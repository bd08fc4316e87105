import { describe, expect, it } from 'vitest';

import { maskPairs, nextSentencePairs, rngFor, roundHalfEven, Stream, toIds, Vocab } from '../../src/data/index.js';

/** Paragraphs of `sentences` sentences of 3–6 distinct words each (word i of sentence j of paragraph k). */
function corpus(paragraphs: number, sentences: number) {
  return Array.from({ length: paragraphs }, (_, k) =>
    Array.from({ length: sentences }, (_, j) => Array.from({ length: 3 + ((j + k) % 4) }, (_, i) => `w${(k * 7 + j * 3 + i) % 50}`)),
  );
}

const within = (rate: number, p: number, n: number) => Math.abs(rate - p) < 4 * Math.sqrt((p * (1 - p)) / n);

describe('next-sentence pairs', () => {
  const paragraphs = corpus(300, 6);
  const vocab = Vocab.build(paragraphs.flat(), { minFreq: 1 });
  const ids = toIds(paragraphs, vocab);
  const pairs = nextSentencePairs(ids, vocab, 20, rngFor(1, Stream.NextSentence));

  it('keeps the true next sentence half of the time', () => {
    expect(pairs.count).toBe(300 * 5);
    const rate = pairs.isNext.reduce((a, b) => a + b, 0) / pairs.count;
    expect(within(rate, 0.5, pairs.count), `isNext rate ${rate}`).toBe(true);
  });

  it('lays out <cls> a <sep> b <sep> with segments 0 then 1, padded with <pad>', () => {
    const [cls, sep, pad] = [vocab.idOf('<cls>'), vocab.idOf('<sep>'), vocab.idOf('<pad>')];
    let checkedNext = 0;
    let pairIndex = 0;
    for (let k = 0; k < ids.length; k++) {
      for (let i = 0; i + 1 < ids[k].length; i++, pairIndex++) {
        const row = Array.from(pairs.tokens.subarray(pairIndex * 20, (pairIndex + 1) * 20));
        const seg = Array.from(pairs.segments.subarray(pairIndex * 20, (pairIndex + 1) * 20));
        const a = Array.from(ids[k][i]);
        const n = pairs.validLens[pairIndex];
        const bLen = n - a.length - 3;
        expect(row.slice(0, a.length + 2)).toEqual([cls, ...a, sep]);
        expect(row[n - 1]).toBe(sep);
        expect(row.slice(n)).toEqual(Array(20 - n).fill(pad));
        expect(seg).toEqual([...Array(a.length + 2).fill(0), ...Array(bLen + 1).fill(1), ...Array(20 - n).fill(0)]);
        if (pairs.isNext[pairIndex]) {
          expect(row.slice(a.length + 2, n - 1)).toEqual(Array.from(ids[k][i + 1]));
          checkedNext++;
        }
      }
    }
    expect(checkedNext).toBeGreaterThan(0);
  });

  it('skips pairs with len(a) + len(b) + 3 > maxLen', () => {
    const tight = nextSentencePairs(ids, vocab, 10, rngFor(1, Stream.NextSentence));
    expect(tight.count).toBeGreaterThan(0);
    expect(tight.count).toBeLessThan(pairs.count);
    expect(Math.max(...tight.validLens)).toBeLessThanOrEqual(10);
    const none = nextSentencePairs(ids, vocab, 8, rngFor(1, Stream.NextSentence));
    expect(none.count).toBe(0); // every sentence has ≥ 3 words: 3 + 3 + 3 > 8
  });
});

describe('MLM masking', () => {
  const paragraphs = corpus(400, 5);
  const vocab = Vocab.build(paragraphs.flat(), { minFreq: 1 });
  const pairs = nextSentencePairs(toIds(paragraphs, vocab), vocab, 24, rngFor(2, Stream.NextSentence));
  const masked = maskPairs(pairs, vocab, rngFor(2, Stream.Masking));
  const p = masked.numPreds;

  it('predicts max(1, round(0.15 · tokens)) positions, never <cls> or <sep>, padded to round(0.15 · maxLen)', () => {
    expect(p).toBe(roundHalfEven(0.15 * 24));
    const [cls, sep] = [vocab.idOf('<cls>'), vocab.idOf('<sep>')];
    for (let i = 0; i < pairs.count; i++) {
      const n = pairs.validLens[i];
      const weights = Array.from(masked.mlmWeights.subarray(i * p, (i + 1) * p));
      const real = weights.filter((w) => w === 1).length;
      expect(real).toBe(Math.max(1, roundHalfEven(0.15 * n)));
      expect(weights).toEqual([...Array(real).fill(1), ...Array(p - real).fill(0)]);
      const positions = Array.from(masked.predPositions.subarray(i * p, i * p + real));
      expect(positions).toEqual([...positions].sort((x, y) => x - y));
      expect(new Set(positions).size).toBe(real);
      for (const j of positions) {
        expect(j).toBeLessThan(n);
        expect([cls, sep]).not.toContain(pairs.tokens[i * 24 + j]);
      }
      for (let m = 0; m < p; m++) {
        const label = masked.mlmLabels[i * p + m];
        if (m < real) expect(label).toBe(pairs.tokens[i * 24 + positions[m]]);
        else expect([label, masked.predPositions[i * p + m]]).toEqual([0, 0]);
      }
    }
  });

  it('turns 80% of predictions into <mask>, keeps 10%, replaces 10% by a random word', () => {
    const mask = vocab.idOf('<mask>');
    let total = 0;
    let masks = 0;
    let kept = 0;
    let replaced = 0;
    for (let i = 0; i < pairs.count; i++) {
      for (let m = 0; m < p; m++) {
        if (masked.mlmWeights[i * p + m] === 0) continue;
        const j = masked.predPositions[i * p + m];
        const now = masked.tokens[i * 24 + j];
        total++;
        if (now === mask) masks++;
        else if (now === pairs.tokens[i * 24 + j]) kept++;
        else {
          replaced++;
          expect(now).toBeGreaterThanOrEqual(5); // a word, not a reserved token
        }
      }
    }
    expect(total).toBeGreaterThan(3000);
    expect(within(masks / total, 0.8, total), `mask rate ${masks / total}`).toBe(true);
    // a random word equals the original 1 time in 50 here: kept ≈ 0.1 + 0.1/50
    expect(within(kept / total, 0.1 + 0.1 / 50, total), `kept rate ${kept / total}`).toBe(true);
    expect(within(replaced / total, 0.1 - 0.1 / 50, total), `replaced rate ${replaced / total}`).toBe(true);
  });

  it('changes only the predicted positions', () => {
    for (let i = 0; i < pairs.count; i++) {
      const chosen = new Set(Array.from(masked.predPositions.subarray(i * p, (i + 1) * p)).filter((_, m) => masked.mlmWeights[i * p + m] === 1));
      for (let j = 0; j < 24; j++) {
        if (!chosen.has(j)) expect(masked.tokens[i * 24 + j]).toBe(pairs.tokens[i * 24 + j]);
      }
    }
  });
});
