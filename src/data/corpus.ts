/**
 * Reading a WikiText-format corpus, as the textbook's `_read_wiki` does, into compact arrays:
 * paragraphs (in a seeded order) of sentences of words, every word an index into the
 * corpus's distinct words.
 *
 * @module
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { rngFor, Stream, shuffle } from './random.js';
import type { Vocab } from './vocab.js';

/** A WikiText-format file, a folder holding {@link TRAIN_FILE}, or paragraph lines. */
export type CorpusSource = string | readonly string[];

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
/** What separates sentences. */
const SENTENCE_BREAK = ' . ';
/**
 * The longest line read as a paragraph, in characters: 270 times WikiText-2's longest (3847).
 * A longer line is not WikiText-format text, and splitting it into words would take about 100
 * times its size in memory.
 */
export const MAX_PARAGRAPH_CHARS = 1 << 20;

/**
 * Paragraphs of sentences of words. A paragraph is a line that splits on `' . '` into at
 * least two sentences; it is trimmed and lowercased, split into sentences on `' . '` and each
 * sentence into words on runs of (Python's) whitespace. The last sentence keeps its final
 * `.` as a word, as in the textbook.
 */
export class Corpus {
  /** The distinct words, in order of first appearance. */
  readonly words: readonly string[];
  /** How many times each of {@link Corpus.words} appears. */
  readonly counts: Int32Array;
  /** The words of every sentence end to end, as indices into {@link Corpus.words}. */
  readonly tokens: Int32Array;
  /** Sentence `s` is `tokens[sentenceStarts[s], sentenceStarts[s + 1])`; one entry more than sentences. */
  readonly sentenceStarts: Int32Array;
  /** Paragraph `p` is sentences `[paragraphStarts[p], paragraphStarts[p + 1])`; one entry more than paragraphs. */
  readonly paragraphStarts: Int32Array;

  private constructor(
    words: string[],
    counts: number[],
    tokens: number[],
    sentenceStarts: number[],
    paragraphStarts: number[],
  ) {
    this.words = words;
    this.counts = Int32Array.from(counts);
    this.tokens = Int32Array.from(tokens);
    this.sentenceStarts = Int32Array.from(sentenceStarts);
    this.paragraphStarts = Int32Array.from(paragraphStarts);
  }

  /**
   * Reads paragraph `lines`, shuffling the paragraphs with `seed` like the textbook's
   * `random.shuffle`. An `Error` naming `origin` when no line is a paragraph; a `TypeError`
   * when a line is not a string; a `RangeError` naming the line when it is longer than
   * {@link MAX_PARAGRAPH_CHARS}.
   */
  static fromLines(lines: readonly string[], seed = 0, origin = 'the given lines'): Corpus {
    const kept: string[] = [];
    for (const [i, line] of lines.entries()) {
      if (typeof line !== 'string') throw new TypeError(`data: ${origin}: every paragraph must be a string`);
      if (line.length > MAX_PARAGRAPH_CHARS) {
        throw new RangeError(
          `data: ${origin}: line ${i + 1} is ${line.length} characters long, over the ${MAX_PARAGRAPH_CHARS} a paragraph may have (a WikiText-format file has one paragraph a line)`,
        );
      }
      if (line.includes(SENTENCE_BREAK)) kept.push(line);
    }
    if (kept.length === 0) throw new Error(`data: ${origin}: no paragraph of at least two sentences (' . ')`);
    shuffle(kept, rngFor(seed, Stream.Paragraphs));
    const index = new Map<string, number>();
    const [words, counts, tokens, sentenceStarts, paragraphStarts]: [string[], number[], number[], number[], number[]] =
      [[], [], [], [], []];
    for (const line of kept) {
      paragraphStarts.push(sentenceStarts.length);
      for (const sentence of line.replace(EDGES, '').toLowerCase().split(SENTENCE_BREAK)) {
        sentenceStarts.push(tokens.length);
        for (const word of sentence.split(RUNS)) {
          if (word === '') continue;
          let id = index.get(word);
          if (id === undefined) {
            id = words.length;
            index.set(word, id);
            words.push(word);
            counts.push(0);
          }
          counts[id]++;
          tokens.push(id);
        }
      }
    }
    paragraphStarts.push(sentenceStarts.length);
    sentenceStarts.push(tokens.length);
    return new Corpus(words, counts, tokens, sentenceStarts, paragraphStarts);
  }

  /** Number of paragraphs. */
  get numParagraphs(): number {
    return this.paragraphStarts.length - 1;
  }

  /** Number of sentences. */
  get numSentences(): number {
    return this.sentenceStarts.length - 1;
  }

  /** Paragraph `p` as sentences of words. */
  paragraph(p: number): string[][] {
    if (!Number.isInteger(p) || p < 0 || p >= this.numParagraphs)
      throw new RangeError(`paragraph: ${p} is outside [0, ${this.numParagraphs})`);
    const sentences: string[][] = [];
    for (let s = this.paragraphStarts[p]; s < this.paragraphStarts[p + 1]; s++) {
      sentences.push(
        Array.from(this.tokens.subarray(this.sentenceStarts[s], this.sentenceStarts[s + 1]), (w) => this.words[w]),
      );
    }
    return sentences;
  }

  /** Every distinct word with its count, e.g. for {@link Vocab.build}. */
  wordCounts(): Map<string, number> {
    return new Map(this.words.map((w, i) => [w, this.counts[i]]));
  }

  /** {@link Corpus.tokens} as ids of `vocab` (0, `<unk>`, for the words it lacks). */
  idsIn(vocab: Vocab): Int32Array {
    const idOf = Int32Array.from(this.words, (w) => vocab.idOf(w));
    return this.tokens.map((w) => idOf[w]);
  }
}

/**
 * Reads `source` — a WikiText-format file, a folder holding {@link TRAIN_FILE}, or paragraph
 * lines — into a {@link Corpus} whose paragraphs are shuffled with `seed`. An `Error` naming
 * the path when it cannot be read or holds no paragraph.
 */
export async function readCorpus(source: CorpusSource, seed = 0): Promise<Corpus> {
  if (typeof source !== 'string') {
    if (!Array.isArray(source)) throw new TypeError('data: expected a path or an array of paragraph strings');
    return Corpus.fromLines(source, seed);
  }
  let path = source;
  let text: string;
  try {
    if ((await stat(path)).isDirectory()) path = join(path, TRAIN_FILE);
    text = await readFile(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'no such file or folder' : `cannot be read (${code ?? String(cause)})`;
    throw new Error(`data: '${path}': ${what}`, { cause });
  }
  // Lines end as Python's universal newlines see them: \n, \r\n or \r.
  return Corpus.fromLines(text.split(/\r\n?|\n/), seed, `'${path}'`);
}
