/**
 * The data pipeline: a WikiText-format corpus → paragraphs → vocabulary → NSP pairs → MLM
 * masking → padding → seeded batches in the typed arrays the native step takes. Independent
 * of the native addon.
 *
 * @module
 */
export type { Batch, Sequences } from './batch.js';
export type { CorpusSource } from './corpus.js';
export { Corpus, MAX_PARAGRAPH_CHARS, readCorpus, TRAIN_FILE } from './corpus.js';
export type { BatchOptions, DatasetOptions } from './dataset.js';
export { PretrainingDataset } from './dataset.js';
export { DATA_DEFAULTS } from './defaults.js';
export type { SyntheticBatchOptions } from './synthetic.js';
export { syntheticBatch } from './synthetic.js';
export type { VocabJSON, VocabOptions } from './vocab.js';
export {
  CLS,
  CLS_ID,
  FIRST_WORD_ID,
  MASK,
  MASK_ID,
  PAD,
  PAD_ID,
  RESERVED_TOKENS,
  SEP,
  SEP_ID,
  UNK,
  UNK_ID,
  Vocab,
} from './vocab.js';
