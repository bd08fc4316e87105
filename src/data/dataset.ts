/**
 * {@link PretrainingDataset}: a corpus made into masked, padded NSP examples, served as batches
 * in a seeded order every epoch, within a bounded amount of memory.
 *
 * The examples are made a block at a time: a block is a run of paragraphs (in the seeded
 * order) whose pairs fit the memory given to examples. A corpus of one block (WikiText-2 and
 * anything up to ~100 MB, by default) is made once and shuffled whole each epoch, as the
 * textbook does. A larger one is served block after block, in an order shuffled each epoch,
 * each block's examples shuffled and made afresh from the random states recorded when it was
 * planned; an NSP "random next" sentence still comes from the whole corpus (a random paragraph,
 * then a random sentence of it, read from the token store).
 *
 * @module
 */
import { BATCH_ARRAYS, type Batch, emptyBatch } from './batch.js';
import { batchesInOrder, takeRows } from './batches.js';
import { type Corpus, type ReadOptions, readCorpus, type TokenizedCorpus } from './corpus.js';
import { DATA_DEFAULTS } from './defaults.js';
import type { CorpusFormat } from './formats.js';
import { maskPairs } from './masking.js';
import { drawPairs, nextSentencePairs, type ParagraphRange, type SentencePairs } from './nsp.js';
import { paddedPredictions, padPairs } from './padding.js';
import { checkSeed, type Rng, rngFor, Stream, shuffle } from './random.js';
import type { CorpusSource } from './sources.js';
import { type Subwords, type TokenIds, textbookIds, vocabPieces } from './token-ids.js';
import { RESERVED_TOKENS, Vocab } from './vocab.js';

/** How examples are made. */
export interface DatasetOptions {
  /** Tokens per pair, `<cls>` and `<sep>`s included (an integer ≥ 5); default `DATA_DEFAULTS.maxLen`. */
  maxLen?: number;
  /** Seeds paragraph order, pairs, masking and batch order (an integer in [0, 2^32)); default `DATA_DEFAULTS.seed`. */
  seed?: number;
  /** Least count of a vocabulary word; default `DATA_DEFAULTS.minFreq` (unused when `vocab` is given). */
  minFreq?: number;
  /** A vocabulary to use instead of building one (e.g. a trained model's). */
  vocab?: Vocab;
  /**
   * A tokenizer's sub-words instead of a word vocabulary (a BERT being continued: its WordPiece
   * and special tokens; `Tokenizer.subwords()`). The text is then not lowercased here (the
   * tokenizer normalises it).
   */
  subwords?: Subwords;
  /** Each file's layout; default `'auto'` (`.jsonl`/`.ndjson`: JSON Lines, else WikiText). */
  format?: CorpusFormat | 'auto';
  /** JSON Lines: the field holding the text; default `'text'`. */
  textField?: string;
  /**
   * Bytes the data may hold in memory (≥ 1 MiB): half for token ids (the rest go to a
   * temporary file), half for the examples of a block. Default `DATA_DEFAULTS.memory` (512 MiB).
   */
  memory?: number;
  /** Called while the corpus is read, with the bytes read and the total. */
  onProgress?: (bytesRead: number, totalBytes: number) => void;
  /** Stops the reading (between chunks of a file): the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** A held-out corpus: a folder gives its `wiki.valid.tokens`, not its training file. */
  heldOut?: boolean;
}

/** How an epoch is served. */
export interface BatchOptions {
  /** Pairs a batch (a positive integer). */
  batchSize: number;
  /** Epoch number (an integer ≥ 0): seeds the order, and the masks when re-masking; default 0. */
  epoch?: number;
  /** Drop the last, shorter batch; default false. */
  dropLast?: boolean;
  /** Mask the pairs afresh for this epoch (epoch 0 keeps the masks made once); default false. */
  remask?: boolean;
}

/** A run of paragraphs whose examples are made together, and the NSP stream's state at its start. */
interface Block {
  range: ParagraphRange;
  rng: Rng;
  count: number;
}

/** Bytes one example takes while its block is made (pairs, masks, padded rows, order). */
function exampleBytes(maxLen: number): number {
  return 4 * (5 * maxLen + 5 * paddedPredictions(maxLen) + 6);
}

function checkMemory(memory: number): number {
  if (!Number.isFinite(memory) || memory < 1 << 20) {
    throw new RangeError(`memory: expected a number of bytes ≥ 1 MiB, got ${String(memory)}`);
  }
  return memory;
}

/** Rows of `a` then rows of `b`, as one batch. */
function concatRows(a: Batch, b: Batch): Batch {
  const out = emptyBatch(a.batchSize + b.batchSize, a.seqLen, a.numPreds);
  for (const key of BATCH_ARRAYS) {
    (out[key] as Int32Array).set(a[key] as Int32Array);
    (out[key] as Int32Array).set(b[key] as Int32Array, a[key].length);
  }
  return out;
}

/** Masked next-sentence examples of a corpus, made and padded a block at a time. */
export class PretrainingDataset {
  /** The vocabulary the ids come from (absent when they are a tokenizer's sub-words). */
  readonly vocab: Vocab | undefined;
  /** The special ids and the range of word ids. */
  readonly ids: TokenIds;
  /** Paragraphs the examples come from. */
  readonly numParagraphs: number;
  /** Number of examples (sentence pairs) an epoch. */
  readonly numExamples: number;
  /** Tokens per example, padding included. */
  readonly maxLen: number;
  private readonly seed: number;
  private readonly corpus: TokenizedCorpus;
  private readonly blocks: Block[];
  /** The examples of a one-block corpus, masked once and padded (made at the first epoch served). */
  private examples: Batch | undefined;

  private constructor(
    vocab: Vocab | undefined,
    ids: TokenIds,
    corpus: TokenizedCorpus,
    seed: number,
    maxLen: number,
    examplesMemory: number,
  ) {
    this.vocab = vocab;
    this.ids = ids;
    this.corpus = corpus;
    this.numParagraphs = corpus.order.length;
    this.seed = seed;
    this.maxLen = maxLen;
    this.blocks = PretrainingDataset.plan(
      corpus,
      maxLen,
      seed,
      Math.max(1, Math.floor(examplesMemory / exampleBytes(maxLen))),
    );
    this.numExamples = this.blocks.reduce((n, b) => n + b.count, 0);
  }

  /**
   * Splits the paragraphs into blocks of at most `capacity` examples (a paragraph is never
   * split; one that alone makes more is a block of its own), drawing the NSP pairs once to
   * count them and record the stream's state at each block's start.
   */
  private static plan(corpus: TokenizedCorpus, maxLen: number, seed: number, capacity: number): Block[] {
    const rng = rngFor(seed, Stream.NextSentence);
    const blocks: Block[] = [];
    let block: Block = { range: { from: 0, to: 0 }, rng: rng.clone(), count: 0 };
    for (let q = 0; q < corpus.order.length; q++) {
      const state = rng.clone();
      const n = drawPairs(corpus, { from: q, to: q + 1 }, maxLen, rng);
      if (block.count > 0 && block.count + n > capacity) {
        blocks.push(block);
        block = { range: { from: q, to: q }, rng: state, count: 0 };
      }
      block.range.to = q + 1;
      block.count += n;
    }
    blocks.push(block);
    return blocks;
  }

  /**
   * Reads `source` (a file, a folder or a glob pattern of WikiText, BERT-layout or JSON Lines
   * files, or WikiText paragraph lines) a line at a time and makes its examples. An `Error`
   * naming the path when it is missing or holds no paragraph.
   */
  static async fromSource(source: CorpusSource, options: DatasetOptions = {}): Promise<PretrainingDataset> {
    const memory = checkMemory(options.memory ?? DATA_DEFAULTS.memory);
    const read: ReadOptions = {
      seed: checkSeed(options.seed ?? DATA_DEFAULTS.seed),
      format: options.format,
      textField: options.textField,
      lowercase: !options.subwords,
      memoryBytes: memory / 4,
      onProgress: options.onProgress,
      signal: options.signal,
      heldOut: options.heldOut,
    };
    const corpus = await readCorpus(source, read);
    try {
      return PretrainingDataset.fromCorpus(corpus, options);
    } finally {
      corpus.tokens.close(); // the words' ids: the dataset holds the model's
    }
  }

  /**
   * Makes the examples of a corpus already read: vocabulary, NSP pairs (counted now, made when
   * served), masks and padding. A `RangeError` naming the option for a bad one; an `Error` when
   * no pair fits `maxLen`.
   */
  static fromCorpus(corpus: Corpus, options: DatasetOptions = {}): PretrainingDataset {
    const maxLen = options.maxLen ?? DATA_DEFAULTS.maxLen;
    if (!Number.isInteger(maxLen) || maxLen < 5)
      throw new RangeError(`maxLen: expected an integer ≥ 5, got ${String(maxLen)}`);
    const seed = checkSeed(options.seed ?? DATA_DEFAULTS.seed);
    const memory = checkMemory(options.memory ?? DATA_DEFAULTS.memory);
    let vocab: Vocab | undefined;
    let ids: TokenIds;
    let tokenized: TokenizedCorpus;
    if (options.subwords) {
      ids = options.subwords.ids;
      tokenized = corpus.tokenize(options.subwords.split(corpus.words), memory / 4);
    } else {
      vocab = options.vocab ?? Vocab.build(corpus.wordCounts(), { minFreq: options.minFreq });
      if (vocab.size <= RESERVED_TOKENS.length) {
        const minFreq = options.minFreq ?? DATA_DEFAULTS.minFreq;
        throw new Error(
          `data: no word occurs at least ${minFreq} times (minFreq) in the ${corpus.numParagraphs} paragraph(s): the vocabulary would hold only the reserved tokens`,
        );
      }
      ids = textbookIds(vocab.size);
      tokenized = corpus.tokenize(vocabPieces(corpus.words, vocab), memory / 4);
    }
    const dataset = new PretrainingDataset(vocab, ids, tokenized, seed, maxLen, memory / 2);
    if (dataset.numExamples === 0) {
      tokenized.tokens.close();
      throw new Error(`data: no sentence pair fits maxLen = ${maxLen} (len(a) + len(b) + 3 ≤ maxLen)`);
    }
    return dataset;
  }

  /** Predictions per example, padding included: round(0.15 · maxLen). */
  get numPreds(): number {
    return paddedPredictions(this.maxLen);
  }

  /** Blocks the examples are made in (1 for a corpus whose examples fit the memory at once). */
  get numBlocks(): number {
    return this.blocks.length;
  }

  /** Batches an epoch serves. */
  numBatches(batchSize: number, dropLast = false): number {
    return dropLast ? Math.floor(this.numExamples / batchSize) : Math.ceil(this.numExamples / batchSize);
  }

  /**
   * The examples of `epoch` in a seeded order, `batchSize` at a time, as the typed arrays the
   * native `trainStep` takes. The same seed and epoch give the same batches, byte for byte.
   * Options are checked at the call (a `RangeError` naming the option), not at the first batch.
   */
  batches(options: BatchOptions): Generator<Batch> {
    const { batchSize, epoch = 0, dropLast = false, remask = false } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new RangeError(`batchSize: expected a positive integer, got ${String(batchSize)}`);
    if (!Number.isInteger(epoch) || epoch < 0)
      throw new RangeError(`epoch: expected an integer ≥ 0, got ${String(epoch)}`);
    const masking = remask ? epoch : 0;
    if (this.blocks.length === 1) {
      if (masking === 0) this.examples ??= this.blockExamples(0, 0);
      const examples = masking === 0 ? (this.examples as Batch) : this.blockExamples(0, masking);
      const order = shuffle(identity(examples.batchSize), rngFor(this.seed, Stream.BatchOrder, epoch));
      return batchesInOrder(examples, order, batchSize, dropLast);
    }
    return this.blockBatches(batchSize, epoch, masking, dropLast);
  }

  /** Releases the token store (its temporary file, for a large corpus). */
  close(): void {
    this.corpus.tokens.close();
  }

  /** A large corpus's epoch: its blocks in a seeded order, each shuffled; rows left over carried to the next. */
  private *blockBatches(batchSize: number, epoch: number, masking: number, dropLast: boolean): Generator<Batch> {
    const blockOrder = shuffle(identity(this.blocks.length), rngFor(this.seed, Stream.BlockOrder, epoch));
    const rowOrder = rngFor(this.seed, Stream.BatchOrder, epoch);
    let carry: Batch | undefined;
    for (const k of blockOrder) {
      const examples = this.blockExamples(k, masking);
      let rows = takeRows(examples, shuffle(identity(examples.batchSize), rowOrder));
      if (carry) rows = concatRows(carry, rows);
      const full = rows.batchSize - (rows.batchSize % batchSize);
      yield* batchesInOrder(rows, identity(full), batchSize, false);
      carry =
        full < rows.batchSize
          ? takeRows(
              rows,
              identity(rows.batchSize - full).map((i) => i + full),
            )
          : undefined;
    }
    if (carry && !dropLast) yield carry;
  }

  /** The examples of block `k`, masked with the masking stream of epoch `masking`, padded. */
  private blockExamples(k: number, masking: number): Batch {
    const block = this.blocks[k];
    const pairs: SentencePairs = nextSentencePairs(this.corpus, block.range, this.maxLen, block.rng.clone(), this.ids);
    const masked = maskPairs(pairs, this.ids, rngFor(this.seed, Stream.Masking, masking, k));
    return padPairs(pairs, masked, this.ids.pad);
  }
}

/** `0, 1, …, n - 1`. */
function identity(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}
