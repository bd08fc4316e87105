/**
 * {@link PretrainingDataset}: a corpus made into masked, padded NSP examples once, served as
 * batches in a seeded order every epoch.
 *
 * @module
 */
import type { Batch } from './batch.js';
import { batchesInOrder } from './batches.js';
import { type Corpus, type CorpusSource, readCorpus } from './corpus.js';
import { DATA_DEFAULTS } from './defaults.js';
import { maskPairs } from './masking.js';
import { nextSentencePairs, type SentencePairs } from './nsp.js';
import { padPairs } from './padding.js';
import { checkSeed, rngFor, Stream, shuffle } from './random.js';
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

/** Masked next-sentence examples of a corpus, held padded in flat typed arrays. */
export class PretrainingDataset {
  /** The vocabulary the ids come from. */
  readonly vocab: Vocab;
  /** Paragraphs the examples come from. */
  readonly numParagraphs: number;
  private readonly seed: number;
  private readonly pairs: SentencePairs;
  /** Every example, masked once and padded, as one batch. */
  private readonly examples: Batch;

  private constructor(vocab: Vocab, numParagraphs: number, seed: number, pairs: SentencePairs) {
    this.vocab = vocab;
    this.numParagraphs = numParagraphs;
    this.seed = seed;
    this.pairs = pairs;
    this.examples = this.maskedAndPadded(0);
  }

  /**
   * Reads `source` (a WikiText file, a folder holding one, or paragraph lines) and makes its
   * examples. An `Error` naming the path when it is missing or holds no paragraph.
   */
  static async fromSource(source: CorpusSource, options: DatasetOptions = {}): Promise<PretrainingDataset> {
    return PretrainingDataset.fromCorpus(
      await readCorpus(source, checkSeed(options.seed ?? DATA_DEFAULTS.seed)),
      options,
    );
  }

  /**
   * Makes the examples of a corpus already read: vocabulary, NSP pairs, masks and padding. A
   * `RangeError` naming the option for a bad one; an `Error` when no pair fits `maxLen`.
   */
  static fromCorpus(corpus: Corpus, options: DatasetOptions = {}): PretrainingDataset {
    const maxLen = options.maxLen ?? DATA_DEFAULTS.maxLen;
    if (!Number.isInteger(maxLen) || maxLen < 5)
      throw new RangeError(`maxLen: expected an integer ≥ 5, got ${String(maxLen)}`);
    const seed = checkSeed(options.seed ?? DATA_DEFAULTS.seed);
    const vocab = options.vocab ?? Vocab.build(corpus.wordCounts(), { minFreq: options.minFreq });
    if (vocab.size <= RESERVED_TOKENS.length) {
      const minFreq = options.minFreq ?? DATA_DEFAULTS.minFreq;
      throw new Error(
        `data: no word occurs at least ${minFreq} times (minFreq) in the ${corpus.numParagraphs} paragraph(s): the vocabulary would hold only the reserved tokens`,
      );
    }
    const pairs = nextSentencePairs(corpus, corpus.idsIn(vocab), maxLen, rngFor(seed, Stream.NextSentence));
    if (pairs.count === 0)
      throw new Error(`data: no sentence pair fits maxLen = ${maxLen} (len(a) + len(b) + 3 ≤ maxLen)`);
    return new PretrainingDataset(vocab, corpus.numParagraphs, seed, pairs);
  }

  /** Number of examples (sentence pairs). */
  get numExamples(): number {
    return this.pairs.count;
  }

  /** Tokens per example, padding included. */
  get maxLen(): number {
    return this.pairs.maxLen;
  }

  /** Predictions per example, padding included: round(0.15 · maxLen). */
  get numPreds(): number {
    return this.examples.numPreds;
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
    const examples = remask && epoch > 0 ? this.maskedAndPadded(epoch) : this.examples;
    const order = shuffle(
      Int32Array.from({ length: this.numExamples }, (_, i) => i),
      rngFor(this.seed, Stream.BatchOrder, epoch),
    );
    return batchesInOrder(examples, order, batchSize, dropLast);
  }

  /** Every example masked with the masking stream of `epoch`, padded. */
  private maskedAndPadded(epoch: number): Batch {
    return padPairs(this.pairs, maskPairs(this.pairs, this.vocab, rngFor(this.seed, Stream.Masking, epoch)));
  }
}
