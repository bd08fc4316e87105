/**
 * The batch layout of the native core: the one declaration of it (the addon reads these
 * fields by name).
 *
 * @module
 */

/** B padded token sequences (row-major), what encoding takes. */
export interface Sequences {
  /** B: rows in this batch (the last batch of an epoch may be shorter). */
  batchSize: number;
  /** L: tokens a row, padding included. */
  seqLen: number;
  /** B×L token ids, `<pad>` after each row's valid length. */
  tokens: Int32Array;
  /** B×L segment ids: 0 for `<cls>` a `<sep>`, 1 for b `<sep>`, 0 for padding. */
  segments: Int32Array;
  /** B: real tokens of each row, in `1..L`. */
  validLens: Int32Array;
}

/** One padded pretraining batch (row-major): sequences with their MLM and NSP targets. */
export interface Batch extends Sequences {
  /** P = round(0.15 · maxLen): MLM predictions a row, padding included. */
  numPreds: number;
  /** B×P positions of the MLM predictions (0 for padding). */
  predPositions: Int32Array;
  /** B×P: 1 for a real prediction, 0 for padding. */
  mlmWeights: Float32Array;
  /** B×P original token ids at the predicted positions (0 for padding). */
  mlmLabels: Int32Array;
  /** B: 1 when b follows a in the corpus (isNext), 0 when b is random. */
  nspLabels: Int32Array;
}

/** The typed arrays of a {@link Batch}, row-major (B or B×L or B×P entries each). */
export const BATCH_ARRAYS = Object.freeze([
  'tokens',
  'segments',
  'validLens',
  'predPositions',
  'mlmWeights',
  'mlmLabels',
  'nspLabels',
] as const);

/** Bytes V8 takes for a typed array and for a small object besides their contents (about). */
const OVERHEAD_BYTES = 256;

/** Host memory a {@link Batch} of these sizes takes, about (its arrays, with V8's overhead). */
export function batchBytes(batchSize: number, seqLen: number, numPreds: number): number {
  const values = batchSize * (2 * seqLen + 2 + 3 * numPreds);
  return 4 * values + (BATCH_ARRAYS.length + 1) * OVERHEAD_BYTES;
}

/** A batch of `batchSize` rows of `seqLen` tokens and `numPreds` predictions, every value 0. */
export function emptyBatch(batchSize: number, seqLen: number, numPreds: number): Batch {
  return {
    batchSize,
    seqLen,
    numPreds,
    tokens: new Int32Array(batchSize * seqLen),
    segments: new Int32Array(batchSize * seqLen),
    validLens: new Int32Array(batchSize),
    predPositions: new Int32Array(batchSize * numPreds),
    mlmWeights: new Float32Array(batchSize * numPreds),
    mlmLabels: new Int32Array(batchSize * numPreds),
    nspLabels: new Int32Array(batchSize),
  };
}
