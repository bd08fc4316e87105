import { describe, expect, it } from 'vitest';

import { Vocab } from '../../src/data/index.js';
import { maskPairs, predictionsOf } from '../../src/data/masking.js';
import type { SentencePairs } from '../../src/data/nsp.js';
import { rngFor, Stream } from '../../src/data/random.js';
import { textbookIds } from '../../src/data/token-ids.js';
import { withinBounds } from './stats.js';

/** Pairs of the given lengths: <cls>, words 5, 6, … (a <sep> in the middle), <sep>. */
function pairsOfLengths(lengths: number[], maxLen: number): SentencePairs {
  const rows = lengths.map((n) => {
    const mid = Math.floor(n / 2);
    return Array.from({ length: n }, (_, j) => (j === 0 ? 3 : j === mid || j === n - 1 ? 4 : 4 + j));
  });
  const starts = [0];
  for (const r of rows) starts.push(starts.at(-1)! + r.length);
  return {
    count: rows.length,
    maxLen,
    tokens: Int32Array.from(rows.flat()),
    starts: Int32Array.from(starts),
    firstSegmentLens: Int32Array.from(lengths, (n) => Math.floor(n / 2) + 1),
    isNext: new Int32Array(rows.length),
  };
}

const vocab = Vocab.build([Array.from({ length: 1000 }, (_, i) => `w${i}`)], { minFreq: 1 }); // words: ids 5–1004

describe('MLM masking', () => {
  it('predicts max(1, round(0.15 · tokens)) positions, rounding halves to even', () => {
    // Python: [max(1, round(0.15 * n)) for n in (3, 5, 7, 10, 16, 17, 24, 30, 50)]
    const lengths = [3, 5, 7, 10, 16, 17, 24, 30, 50];
    expect(lengths.map(predictionsOf)).toEqual([1, 1, 1, 2, 2, 3, 4, 4, 8]);
    const pairs = pairsOfLengths(lengths.slice(1), 50);
    const masked = maskPairs(pairs, textbookIds(vocab.size), rngFor(0, Stream.Masking));
    expect(Array.from(masked.predStarts.subarray(1), (end, i) => end - masked.predStarts[i])).toEqual([
      1, 1, 2, 2, 3, 4, 4, 8,
    ]);
  });

  it('never predicts <cls> or <sep>, and predicts nothing when there is nothing else', () => {
    const pairs: SentencePairs = {
      count: 2,
      maxLen: 5,
      tokens: Int32Array.from([3, 4, 4, 3, 4, 9, 4]),
      starts: Int32Array.from([0, 3, 7]),
      firstSegmentLens: Int32Array.from([2, 2]),
      isNext: Int32Array.from([0, 1]),
    };
    for (let seed = 0; seed < 20; seed++) {
      const masked = maskPairs(pairs, textbookIds(vocab.size), rngFor(seed, Stream.Masking));
      expect(Array.from(masked.predStarts)).toEqual([0, 0, 1]);
      expect([masked.predPositions[0], masked.predLabels[0]]).toEqual([2, 9]);
    }
  });

  describe('over many draws', () => {
    const lengths = Array.from({ length: 6000 }, (_, i) => 5 + (i % 26));
    const pairs = pairsOfLengths(lengths, 30);
    const masked = maskPairs(pairs, textbookIds(vocab.size), rngFor(2, Stream.Masking));

    it('chooses distinct positions in ascending order, labelled with the original ids, never <cls> or <sep>', () => {
      for (let i = 0; i < pairs.count; i++) {
        const positions = Array.from(masked.predPositions.subarray(masked.predStarts[i], masked.predStarts[i + 1]));
        const labels = Array.from(masked.predLabels.subarray(masked.predStarts[i], masked.predStarts[i + 1]));
        expect(positions).toEqual([...new Set(positions)].sort((x, y) => x - y));
        expect(labels).toEqual(positions.map((j) => pairs.tokens[pairs.starts[i] + j]));
        expect(labels.every((t) => t !== 3 && t !== 4)).toBe(true);
      }
    });

    it('changes only the predicted positions', () => {
      const predicted = new Set<number>();
      for (let i = 0; i < pairs.count; i++) {
        for (let m = masked.predStarts[i]; m < masked.predStarts[i + 1]; m++)
          predicted.add(pairs.starts[i] + masked.predPositions[m]);
      }
      const changed = Array.from(pairs.tokens.keys()).filter((k) => masked.tokens[k] !== pairs.tokens[k]);
      expect(changed.length).toBeGreaterThan(0);
      expect(changed.every((k) => predicted.has(k))).toBe(true);
    });

    it('turns 80% of predictions into <mask>, keeps 10%, replaces 10% by a random word', () => {
      const counts = { mask: 0, kept: 0, replaced: 0 };
      let total = 0;
      for (let i = 0; i < pairs.count; i++) {
        for (let m = masked.predStarts[i]; m < masked.predStarts[i + 1]; m++) {
          const now = masked.tokens[pairs.starts[i] + masked.predPositions[m]];
          total++;
          if (now === 2) counts.mask++;
          else if (now === masked.predLabels[m]) counts.kept++;
          else {
            counts.replaced++;
            expect(now).toBeGreaterThanOrEqual(5); // a word, never a reserved token
            expect(now).toBeLessThan(vocab.size);
          }
        }
      }
      expect(total).toBeGreaterThan(15000);
      // a random word equals the original one time in 1000: kept ≈ 0.1 + 0.1 / 1000
      expect(withinBounds(counts.mask / total, 0.8, total), `mask rate ${counts.mask / total}`).toBe(true);
      expect(withinBounds(counts.kept / total, 0.1 + 0.1 / 1000, total), `kept rate ${counts.kept / total}`).toBe(true);
      expect(
        withinBounds(counts.replaced / total, 0.1 - 0.1 / 1000, total),
        `replaced rate ${counts.replaced / total}`,
      ).toBe(true);
    });

    it('gives the same masks for the same stream and others for another', () => {
      expect(maskPairs(pairs, textbookIds(vocab.size), rngFor(2, Stream.Masking))).toEqual(masked);
      expect(maskPairs(pairs, textbookIds(vocab.size), rngFor(3, Stream.Masking)).tokens).not.toEqual(masked.tokens);
    });
  });
});
