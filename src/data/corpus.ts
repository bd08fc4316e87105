/**
 * Reading a WikiText-format corpus into paragraphs of sentences of words.
 *
 * @module
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { rngFor, shuffle, Stream } from './random.js';

/** A WikiText-format file, a folder holding `wiki.train.tokens`, or paragraph lines. */
export type CorpusSource = string | readonly string[];

/** Paragraphs → sentences → words. */
export type Paragraphs = string[][][];

/** The file read when a folder is given. */
export const TRAIN_FILE = 'wiki.train.tokens';

/**
 * Whitespace as Python's `str.split()` and `str.strip()` see it (the textbook splits words
 * with them): unlike JavaScript's `\s`, it includes U+001C–U+001F and U+0085 and excludes
 * U+FEFF, which WikiText-2 holds as a word.
 */
const WHITESPACE = '\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000';
const RUNS = new RegExp(`[${WHITESPACE}]+`);
const EDGES = new RegExp(`^[${WHITESPACE}]+|[${WHITESPACE}]+$`, 'g');

/**
 * Keeps the lines that split on `' . '` into at least two sentences; each is trimmed,
 * lowercased, split into sentences on `' . '` and into words on runs of (Python's) whitespace (the
 * last sentence keeps its final `.` as a word, as in the textbook).
 */
export function paragraphsOf(lines: readonly string[]): Paragraphs {
  const paragraphs: Paragraphs = [];
  for (const line of lines) {
    if (typeof line !== 'string') throw new TypeError('data: paragraphs must be strings');
    if (line.split(' . ').length < 2) continue;
    paragraphs.push(line.replace(EDGES, '').toLowerCase().split(' . ').map((s) => s.split(RUNS).filter(Boolean)));
  }
  return paragraphs;
}

/** The lines of `source`: its own lines, or those of the file (or the folder's train file). */
export async function readLines(source: CorpusSource): Promise<readonly string[]> {
  if (typeof source !== 'string') {
    if (!Array.isArray(source)) throw new TypeError('data: expected a path or an array of paragraph strings');
    return source;
  }
  let path = source;
  try {
    if ((await stat(path)).isDirectory()) path = join(path, TRAIN_FILE);
    return (await readFile(path, 'utf8')).split('\n');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'no such file or folder' : `cannot read it (${code ?? String(cause)})`;
    throw new Error(`data: '${path}': ${what}`, { cause });
  }
}

/** Reads `source` into paragraphs, shuffled with `seed` like the textbook's `random.shuffle`. */
export async function readParagraphs(source: CorpusSource, seed = 0): Promise<Paragraphs> {
  return shuffle(paragraphsOf(await readLines(source)), rngFor(seed, Stream.Paragraphs));
}
