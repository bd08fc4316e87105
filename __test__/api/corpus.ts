/** A small WikiText-style corpus for API tests, written by the tests themselves. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { rngFor, Stream } from '../../src/data/random.js';

/** Sentences with structure a model can learn (words predictable from their context). */
const SENTENCES = [
  'a crane is flying over the river',
  'the crane driver came to work',
  'he just left the house',
  'the big dog sat on the mat',
  'a small bird flew over the tree',
  'the red house is by the river',
  'the cat ran over the mat',
  'a crane driver came home late',
];

/** `count` paragraph lines of 2–5 of the sentences above, ending in ` . ` like WikiText. */
export function paragraphs(count: number, seed = 1): string[] {
  const rng = rngFor(seed, Stream.Synthetic);
  const next = (lo: number, hi: number) => lo + rng.below(hi - lo);
  return Array.from({ length: count }, () => {
    const sentences = Array.from({ length: next(2, 6) }, () => SENTENCES[next(0, SENTENCES.length)]);
    return ` ${sentences.join(' . ')} . `;
  });
}

/** A folder holding `wiki.train.tokens` with `count` paragraphs. */
export async function corpusFolder(count = 300): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbert-corpus-'));
  await writeFile(join(dir, 'wiki.train.tokens'), paragraphs(count).join('\n'));
  return dir;
}

/** Options of a model small enough for quick tests. */
export const TINY = {
  batchSize: 32,
  maxLen: 24,
  minFreq: 1,
  config: { hidden: 32, ffnHidden: 64, heads: 2, layers: 2 },
} as const;
