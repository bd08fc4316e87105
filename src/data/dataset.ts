/**
 * {@link PretrainingDataset}: a corpus made into masked NSP examples once, served as padded
 * batches in a seeded order every epoch.
 *
 * @module
 */
import type { Batch } from './batch.js';
import { type CorpusSource, type Paragraphs, readParagraphs } from './corpus.js';
import { type MaskedPairs, maskPairs } from './masking.js';
import { nextSentencePairs, type SentencePairs, toIds } from './nsp.js';
import { checkSeed, rngFor, shuffle, Stream } from './random.js';
import { Vocab } from './vocab.js';

/** How examples are made. */
export interface DatasetOptions {
  /** Tokens per pair, `<cls>` and `<sep>`s included (≥ 5); default 64. */
  maxLen?: number;
  /** Seeds paragraph order, pairs, masking and batch order; default 0. */
  seed?: number;
  /** Least count of a vocabulary word; default 5 (ignored when `vocab` is given). */
  minFreq?: number;
  /** A vocabulary to use instead of building one (e.g. a trained model's). */
  vocab?: Vocab;
}

/** How an epoch is served. */
export interface BatchOptions {
  /** Pairs a batch (≥ 1). */
  batchSize: number;
  /** Epoch number: seeds the order (and the masks when re-masking); default 0. */
  epoch?: number;
  /** Drop the last, short batch; default false. */
  dropLast?: boolean;
  /** Mask the pairs afresh for this epoch instead of reusing the masks made once; default false. */
  remask?: boolean;
}

/** Masked next-sentence examples of a corpus, held in flat typed arrays. */
export class PretrainingDataset {
  /** The vocabulary the ids come from. */
  readonly vocab: Vocab;
  /** Paragraphs read (with at least two sentences). */
  readonly numParagraphs: number;
  private readonly seed: number;
  private readonly pairs: SentencePairs;
  private readonly masked: MaskedPairs;

  private constructor(vocab: Vocab, numParagraphs: number, seed: number, pairs: SentencePairs) {
    this.vocab = vocab;
    this.numParagraphs = numParagraphs;
    this.seed = seed;
    this.pairs = pairs;
    this.masked = maskPairs(pairs, vocab, rngFor(seed, Stream.Masking));
  }

  /** Reads `source` (a WikiText file or folder, or paragraph lines) and makes its examples. */
  static async fromSource(source: CorpusSource, options: DatasetOptions = {}): Promise<PretrainingDataset> {
    const seed = checkSeed(options.seed ?? 0);
    const paragraphs = await readParagraphs(source, seed);
    const where = typeof source === 'string' ? `'${source}'` : 'the given paragraphs';
    if (paragraphs.length === 0) throw new Error(`data: no paragraph of at least two sentences (' . ') in ${where}`);
    return PretrainingDataset.fromParagraphs(paragraphs, options);
  }

  /** Makes the examples of paragraphs already read (see `readParagraphs`). */
  static fromParagraphs(paragraphs: Paragraphs, options: DatasetOptions = {}): PretrainingDataset {
    const maxLen = options.maxLen ?? 64;
    if (!Number.isInteger(maxLen) || maxLen < 5) throw new RangeError(`maxLen: expected an integer ≥ 5, got ${String(maxLen)}`);
    const seed = checkSeed(options.seed ?? 0);
    const vocab = options.vocab ?? Vocab.build(paragraphs.flat(), { minFreq: options.minFreq });
    const pairs = nextSentencePairs(toIds(paragraphs, vocab), vocab, maxLen, rngFor(seed, Stream.NextSentence));
    if (pairs.count === 0) throw new Error(`data: no sentence pair fits maxLen = ${maxLen} (len(a) + len(b) + 3 ≤ maxLen)`);
    return new PretrainingDataset(vocab, paragraphs.length, seed, pairs);
  }

  /** Number of examples (sentence pairs). */
  get numExamples(): number {
    return this.pairs.count;
  }

  /** Tokens per example. */
  get maxLen(): number {
    return this.pairs.maxLen;
  }

  /** Predictions per example, padded. */
  get numPreds(): number {
    return this.masked.numPreds;
  }

  /**
   * The examples in a seeded order for `epoch`, `batchSize` at a time, as the typed arrays
   * the native `trainStep` takes. The same seed and epoch give the same batches, byte for
   * byte.
   */
  *batches(options: BatchOptions): Generator<Batch> {
    const { batchSize, epoch = 0, dropLast = false, remask = false } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize: expected a positive integer, got ${String(batchSize)}`);
    if (!Number.isInteger(epoch) || epoch < 0) throw new RangeError(`epoch: expected an integer ≥ 0, got ${String(epoch)}`);
    const masked = remask ? maskPairs(this.pairs, this.vocab, rngFor(this.seed, Stream.Masking, epoch + 1)) : this.masked;
    const order = shuffle(Array.from({ length: this.numExamples }, (_, i) => i), rngFor(this.seed, Stream.BatchOrder, epoch));
    for (let start = 0; start < order.length; start += batchSize) {
      const rows = order.slice(start, start + batchSize);
      if (dropLast && rows.length < batchSize) return;
      yield this.gather(rows, masked);
    }
  }

  /** Copies `rows` into one batch. */
  private gather(rows: readonly number[], masked: MaskedPairs): Batch {
    const [l, p, b] = [this.maxLen, this.numPreds, rows.length];
    const batch: Batch = {
      batchSize: b,
      seqLen: l,
      numPreds: p,
      tokens: new Int32Array(b * l),
      segments: new Int32Array(b * l),
      validLens: new Int32Array(b),
      predPositions: new Int32Array(b * p),
      mlmWeights: new Float32Array(b * p),
      mlmLabels: new Int32Array(b * p),
      nspLabels: new Int32Array(b),
    };
    rows.forEach((r, i) => {
      batch.tokens.set(masked.tokens.subarray(r * l, (r + 1) * l), i * l);
      batch.segments.set(this.pairs.segments.subarray(r * l, (r + 1) * l), i * l);
      batch.predPositions.set(masked.predPositions.subarray(r * p, (r + 1) * p), i * p);
      batch.mlmWeights.set(masked.mlmWeights.subarray(r * p, (r + 1) * p), i * p);
      batch.mlmLabels.set(masked.mlmLabels.subarray(r * p, (r + 1) * p), i * p);
      batch.validLens[i] = this.pairs.validLens[r];
      batch.nspLabels[i] = this.pairs.isNext[r];
    });
    return batch;
  }
}
