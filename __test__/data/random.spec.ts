import { describe, expect, it } from 'vitest';

import { checkSeed, rngFor, roundHalfEven, Stream, shuffle } from '../../src/data/random.js';

describe('seeded randomness', () => {
  it("rounds halves to even like Python's round", () => {
    // Python: [round(x) for x in (0.45, 0.5, 1.5, 2.5, 4.5, 7.5, 9.6, 0.15 * 10, 0.15 * 30, 0.15 * 50)]
    const xs = [0.45, 0.5, 1.5, 2.5, 4.5, 7.5, 9.6, 0.15 * 10, 0.15 * 30, 0.15 * 50];
    expect(xs.map(roundHalfEven)).toEqual([0, 0, 2, 2, 4, 8, 10, 2, 4, 8]);
  });

  it('repeats a stream for the same seed, stream and epoch, and differs otherwise', () => {
    const draw = (seed: number, stream: Stream, epoch = 0) => {
      const rng = rngFor(seed, stream, epoch);
      return Array.from({ length: 8 }, () => rng.next());
    };
    expect(draw(7, Stream.Masking, 2)).toEqual(draw(7, Stream.Masking, 2));
    expect(draw(8, Stream.Masking, 2)).not.toEqual(draw(7, Stream.Masking, 2));
    expect(draw(7, Stream.BatchOrder, 2)).not.toEqual(draw(7, Stream.Masking, 2));
    expect(draw(7, Stream.Masking, 3)).not.toEqual(draw(7, Stream.Masking, 2));
  });

  it('draws floats in [0, 1) and integers in [0, n)', () => {
    const rng = rngFor(1, Stream.NextSentence);
    const floats = Array.from({ length: 1000 }, () => rng.next());
    const ints = Array.from({ length: 1000 }, () => rng.below(3));
    expect(floats.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(new Set(ints)).toEqual(new Set([0, 1, 2]));
  });

  it('shuffles into a permutation', () => {
    const items = Int32Array.from({ length: 50 }, (_, i) => i);
    const shuffled = shuffle(items.slice(), rngFor(3, Stream.BatchOrder));
    expect(Array.from(shuffled).sort((a, b) => a - b)).toEqual(Array.from(items));
    expect(shuffled).not.toEqual(items);
  });

  it('refuses a seed outside [0, 2^32)', () => {
    expect(checkSeed(0xffffffff)).toBe(0xffffffff);
    for (const bad of [-1, 2 ** 32, 1.5, Number.NaN]) expect(() => checkSeed(bad)).toThrow(/^seed:/);
  });
});
