/**
 * Seeded random streams for the data pipeline (xoroshiro128+ from `pure-rand`). Each use —
 * paragraph order, NSP pairs, masking, batch order — draws from its own stream derived from
 * the run's seed, so changing one never shifts another.
 *
 * @module
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

/** The independent random streams of one run. */
export enum Stream {
  /** Paragraph order. */
  Paragraphs = 1,
  /** Next-sentence pairs. */
  NextSentence = 2,
  /** MLM masking (one stream an epoch when re-masking). */
  Masking = 3,
  /** Batch order (one stream an epoch). */
  BatchOrder = 4,
  /** Synthetic batches. */
  Synthetic = 5,
}

/** A seeded source of floats in [0, 1) and of integers in a range. */
export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n), for a positive integer `n`. */
  below(n: number): number;
}

/** 32-bit mix of the seed, the stream and the epoch (murmur3's finaliser). */
function mix(seed: number, stream: number, epoch: number): number {
  let h = (seed ^ Math.imul(stream, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca77)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

/** Checks a run's seed: an integer in [0, 2^32); a `RangeError` naming `seed` otherwise. */
export function checkSeed(seed: number): number {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`seed: expected an integer in [0, 2^32), got ${String(seed)}`);
  }
  return seed;
}

/** The random stream `stream` (of `epoch`) of a run seeded with `seed`. */
export function rngFor(seed: number, stream: Stream, epoch = 0): Rng {
  const generator = xoroshiro128plus(mix(checkSeed(seed), stream, epoch));
  return {
    next: () => uniformFloat64(generator),
    below: (n: number) => uniformInt(generator, 0, n - 1),
  };
}

/** Shuffles `items` in place (Fisher–Yates) and returns it. */
export function shuffle<A extends { length: number; [i: number]: unknown }>(items: A, rng: Rng): A {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = items[i];
    items[i] = items[j];
    items[j] = t;
  }
  return items;
}

/**
 * Python's `round` of a non-negative number: halves go to the even neighbour
 * (`round(4.5) == 4`), as the textbook's code rounds.
 */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
