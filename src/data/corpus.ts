/**
 * Reading a corpus, a line at a time, into compact arrays: paragraphs of sentences of words,
 * every word an index into the corpus's distinct words, the word indices held in a
 * {@link TokenStore} (in memory up to a budget, in a temporary file past it). The paragraphs
 * keep the file's order; a seeded permutation gives the order the textbook's `random.shuffle`
 * would.
 *
 * @module
 */
import { DATA_DEFAULTS } from './defaults.js';
import { type CorpusFormat, MAX_PARAGRAPH_CHARS, type Paragraph, paragraphReader } from './formats.js';
import { checkSeed, rngFor, Stream, shuffle } from './random.js';
import { type CorpusSource, corpusFiles, fileLines } from './sources.js';
import type { WordPieces } from './token-ids.js';
import { type TokenStore, TokenWriter } from './token-store.js';

/** Float64 values appended one at a time. */
class Float64Growable {
  #values = new Float64Array(1024);
  #length = 0;

  push(value: number): void {
    if (this.#length === this.#values.length) {
      const bigger = new Float64Array(this.#values.length * 2);
      bigger.set(this.#values);
      this.#values = bigger;
    }
    this.#values[this.#length++] = value;
  }

  get length(): number {
    return this.#length;
  }

  finish(): Float64Array {
    return this.#values.slice(0, this.#length);
  }
}

/**
 * Text as token ids, in paragraphs of sentences: the shape the NSP pairs are made from. Held as
 * a {@link Corpus}'s words, or as a model's ids ({@link Corpus.tokenize}).
 */
export interface TokenizedCorpus {
  /** The ids of every sentence end to end, paragraphs in the file's order. */
  readonly tokens: TokenStore;
  /** Sentence `s` is `tokens[sentenceStarts[s], sentenceStarts[s + 1])`; one entry more than sentences. */
  readonly sentenceStarts: Float64Array;
  /** Stored paragraph `p` is sentences `[paragraphStarts[p], paragraphStarts[p + 1])`; one entry more than paragraphs. */
  readonly paragraphStarts: Float64Array;
  /** The seeded paragraph order: the `q`-th paragraph is stored paragraph `order[q]`. */
  readonly order: Int32Array;
}

/** How a corpus is read. */
export interface ReadOptions {
  /** Seeds the paragraph order (an integer in [0, 2^32)); default `DATA_DEFAULTS.seed`. */
  seed?: number;
  /** Each file's layout; default `'auto'` (by extension: `.jsonl`/`.ndjson` are JSON Lines, else WikiText). */
  format?: CorpusFormat | 'auto';
  /** JSON Lines: the field holding the text; default `'text'`. */
  textField?: string;
  /** Lowercase the text (the textbook vocabulary's reading); default `true`. */
  lowercase?: boolean;
  /** Bytes of word indices held in memory before they go to a temporary file; default 128 MiB. */
  memoryBytes?: number;
  /** Called every so many lines read with the bytes read so far (of the files' total). */
  onProgress?: (bytesRead: number, totalBytes: number) => void;
  /** Stops the reading (between chunks of a file): the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** A held-out corpus: a folder gives its `wiki.valid.tokens` (see `corpusFiles`). */
  heldOut?: boolean;
}

/** Word indices held in memory by default before they go to a file. */
export const DEFAULT_TOKEN_MEMORY = 128 << 20;

/** Collects paragraphs into a {@link Corpus}. */
class CorpusBuilder {
  readonly #index = new Map<string, number>();
  readonly #words: string[] = [];
  #counts = new Int32Array(1024);
  readonly #tokens: TokenWriter;
  readonly #sentenceStarts = new Float64Growable();
  readonly #paragraphStarts = new Float64Growable();

  constructor(memoryBytes: number) {
    this.#tokens = new TokenWriter(memoryBytes);
  }

  add(paragraph: Paragraph): void {
    this.#paragraphStarts.push(this.#sentenceStarts.length);
    for (const sentence of paragraph) {
      this.#sentenceStarts.push(this.#tokens.length);
      for (const word of sentence) {
        let id = this.#index.get(word);
        if (id === undefined) {
          id = this.#words.length;
          this.#index.set(word, id);
          this.#words.push(word);
          if (id === this.#counts.length) {
            const bigger = new Int32Array(id * 2);
            bigger.set(this.#counts);
            this.#counts = bigger;
          }
        }
        this.#counts[id]++;
        this.#tokens.push(id);
      }
    }
  }

  finish(seed: number, origin: string): Corpus {
    if (this.#paragraphStarts.length === 0) throw new Error(`data: ${origin}: no paragraph of at least two sentences`);
    this.#paragraphStarts.push(this.#sentenceStarts.length);
    this.#sentenceStarts.push(this.#tokens.length);
    const paragraphStarts = this.#paragraphStarts.finish();
    const order = shuffle(
      Int32Array.from({ length: paragraphStarts.length - 1 }, (_, p) => p),
      rngFor(seed, Stream.Paragraphs),
    );
    return new Corpus(
      this.#words,
      this.#counts.slice(0, this.#words.length),
      this.#tokens.finish(),
      this.#sentenceStarts.finish(),
      paragraphStarts,
      order,
    );
  }
}

/**
 * Paragraphs of sentences of words, with the corpus's distinct words and their counts. A
 * paragraph is what the file's format makes one (see `formats.ts`); WikiText's is a line that
 * splits on `' . '` into at least two sentences, trimmed, lowercased, split into sentences on
 * `' . '` and each sentence into words on runs of (Python's) whitespace.
 */
export class Corpus implements TokenizedCorpus {
  /** The distinct words, in order of first appearance. */
  readonly words: readonly string[];
  /** How many times each of {@link Corpus.words} appears. */
  readonly counts: Int32Array;
  /** The words of every sentence end to end, as indices into {@link Corpus.words}. */
  readonly tokens: TokenStore;
  readonly sentenceStarts: Float64Array;
  readonly paragraphStarts: Float64Array;
  readonly order: Int32Array;

  /** @internal */
  constructor(
    words: string[],
    counts: Int32Array,
    tokens: TokenStore,
    sentenceStarts: Float64Array,
    paragraphStarts: Float64Array,
    order: Int32Array,
  ) {
    this.words = words;
    this.counts = counts;
    this.tokens = tokens;
    this.sentenceStarts = sentenceStarts;
    this.paragraphStarts = paragraphStarts;
    this.order = order;
  }

  /**
   * Reads WikiText paragraph `lines`, ordering the paragraphs with `seed` like the textbook's
   * `random.shuffle`. An `Error` naming `origin` when no line is a paragraph; a `TypeError`
   * when a line is not a string; a `RangeError` naming the line when it is longer than
   * {@link MAX_PARAGRAPH_CHARS}.
   */
  static fromLines(lines: readonly string[], seed: number = DATA_DEFAULTS.seed, origin = 'the given lines'): Corpus {
    const builder = new CorpusBuilder(DEFAULT_TOKEN_MEMORY);
    const reader = paragraphReader('wikitext', origin, { lowercase: true });
    for (const [i, line] of lines.entries()) {
      if (typeof line !== 'string') throw new TypeError(`data: ${origin}: every paragraph must be a string`);
      const paragraph = reader.line(line, i + 1);
      if (paragraph) builder.add(paragraph);
    }
    return builder.finish(checkSeed(seed), origin);
  }

  /** Number of paragraphs. */
  get numParagraphs(): number {
    return this.paragraphStarts.length - 1;
  }

  /** Number of sentences. */
  get numSentences(): number {
    return this.sentenceStarts.length - 1;
  }

  /** The `p`-th paragraph in the seeded order, as sentences of words. */
  paragraph(p: number): string[][] {
    if (!Number.isInteger(p) || p < 0 || p >= this.numParagraphs)
      throw new RangeError(`paragraph: ${p} is outside [0, ${this.numParagraphs})`);
    const stored = this.order[p];
    const sentences: string[][] = [];
    for (let s = this.paragraphStarts[stored]; s < this.paragraphStarts[stored + 1]; s++) {
      const ids = this.tokens.read(this.sentenceStarts[s], this.sentenceStarts[s + 1]);
      sentences.push(Array.from(ids, (w) => this.words[w]));
    }
    return sentences;
  }

  /** Every distinct word with its count, e.g. for `Vocab.build`. */
  wordCounts(): Map<string, number> {
    return new Map(this.words.map((w, i) => [w, this.counts[i]]));
  }

  /**
   * The corpus as a model's token ids: each word replaced by its `pieces` (one id for a
   * vocabulary's word, one or more for a tokenizer's sub-words). The ids are held in memory up
   * to `memoryBytes`, in a temporary file past it; the words' store is left as it is.
   */
  tokenize(pieces: WordPieces, memoryBytes = DEFAULT_TOKEN_MEMORY): TokenizedCorpus {
    const { ids, starts } = pieces;
    const out = new TokenWriter(memoryBytes);
    const sentenceStarts = new Float64Array(this.sentenceStarts.length);
    const chunk = 1 << 20;
    let s = 0;
    for (let at = 0; at < this.tokens.length; at += chunk) {
      const words = this.tokens.read(at, Math.min(at + chunk, this.tokens.length));
      for (let k = 0; k < words.length; k++) {
        while (s < sentenceStarts.length && this.sentenceStarts[s] === at + k) sentenceStarts[s++] = out.length;
        const w = words[k];
        for (let j = starts[w]; j < starts[w + 1]; j++) out.push(ids[j]);
      }
    }
    while (s < sentenceStarts.length) sentenceStarts[s++] = out.length;
    return { tokens: out.finish(), sentenceStarts, paragraphStarts: this.paragraphStarts, order: this.order };
  }
}

/**
 * Reads `source` — a file, a folder (its `wiki.train.tokens`, or every file in it), a glob
 * pattern, or WikiText paragraph lines — a line at a time into a {@link Corpus} whose
 * paragraphs are ordered with `seed`. An `Error` naming the path when it cannot be read or
 * holds no paragraph.
 */
export async function readCorpus(source: CorpusSource, options: ReadOptions | number = {}): Promise<Corpus> {
  const o = typeof options === 'number' ? { seed: options } : options;
  const seed = checkSeed(o.seed ?? DATA_DEFAULTS.seed);
  if (typeof source !== 'string') {
    if (!Array.isArray(source)) throw new TypeError('data: expected a path or an array of paragraph strings');
    return Corpus.fromLines(source, seed);
  }
  o.signal?.throwIfAborted();
  const files = await corpusFiles(source, o.format, o.heldOut);
  const total = files.reduce((n, f) => n + f.bytes, 0);
  const builder = new CorpusBuilder(o.memoryBytes ?? DEFAULT_TOKEN_MEMORY);
  let done = 0;
  for (const file of files) {
    const reader = paragraphReader(file.format, `'${file.path}'`, {
      lowercase: o.lowercase ?? true,
      textField: o.textField,
    });
    let line = 0;
    let chars = 0;
    for await (const text of fileLines(file.path, MAX_PARAGRAPH_CHARS, o.signal)) {
      const paragraph = reader.line(text, ++line);
      if (paragraph) builder.add(paragraph);
      chars += text.length + 1;
      if (o.onProgress && (line & 0x3fff) === 0) o.onProgress(done + Math.min(chars, file.bytes), total);
    }
    const last = reader.end();
    if (last) builder.add(last);
    done += file.bytes;
    o.onProgress?.(done, total);
  }
  return builder.finish(seed, files.length === 1 ? `'${files[0].path}'` : `'${source}' (${files.length} files)`);
}
