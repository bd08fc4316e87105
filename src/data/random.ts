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
  /** Order of a large corpus's blocks (one stream an epoch). */
  BlockOrder = 6,
  /** Which labelled examples are held out (`validSplit`). */
  ValidSplit = 7,
}

/** A seeded source of floats in [0, 1) and of integers in a range. */
export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n), for a positive integer `n`. */
  below(n: number): number;
  /** An independent copy that draws what this one would from now on. */
  clone(): Rng;
}

/** 32-bit mix of the seed, the stream, the epoch and the part (murmur3's finaliser). */
function mix(seed: number, stream: number, epoch: number, part: number): number {
  let h = (seed ^ Math.imul(stream, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca77) ^ Math.imul(part, 0x27d4eb2f)) >>> 0;
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

/** A {@link Rng} drawing from `generator`. */
function rngOf(generator: ReturnType<typeof xoroshiro128plus>): Rng {
  return {
    next: () => uniformFloat64(generator),
    below: (n: number) => uniformInt(generator, 0, n - 1),
    clone: () => rngOf(generator.clone()),
  };
}

/**
 * The random stream `stream` (of `epoch`, and of `part` for a stream split into parts, e.g. a
 * large corpus's blocks) of a run seeded with `seed`. Part 0 is the whole stream of a small corpus.
 */
export function rngFor(seed: number, stream: Stream, epoch = 0, part = 0): Rng {
  return rngOf(xoroshiro128plus(mix(checkSeed(seed), stream, epoch, part)));
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
