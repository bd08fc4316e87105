/**
 * The data pipeline: a corpus (WikiText, BERT's layout, JSON Lines; streamed) → paragraphs → vocabulary → NSP pairs → MLM
 * masking → padding → seeded batches in the typed arrays the native step takes; and labelled
 * data for fine-tuning (CSV, TSV, JSON Lines, CoNLL). Independent of the native addon.
 *
 * @module
 */
export type { Batch, Sequences } from './batch.js';
export type { ReadOptions, TokenizedCorpus } from './corpus.js';
export { Corpus, readCorpus } from './corpus.js';
export type { BatchOptions, DatasetOptions } from './dataset.js';
export { PretrainingDataset } from './dataset.js';
export { DATA_DEFAULTS } from './defaults.js';
export type { CorpusFormat } from './formats.js';
export { MAX_PARAGRAPH_CHARS } from './formats.js';
export type {
  ExampleOptions,
  LabelledBatch,
  LabelledColumns,
  LabelledCounts,
  LabelledReadOptions,
  LabelSet,
} from './labelled.js';
export { IGNORED_LABEL, LabelledSet, labelledColumns, scanLabels } from './labelled.js';
export type { LabelledFormat, RawRow, ReadRowsOptions } from './labelled-files.js';
export { LABELLED_FORMATS, labelledFormatOf, readRows } from './labelled-files.js';
export type { CorpusFile, CorpusSource } from './sources.js';
export { corpusFiles, TRAIN_FILE, VALID_FILE } from './sources.js';
export type { SyntheticBatchOptions } from './synthetic.js';
export { syntheticBatch } from './synthetic.js';
export type { Subwords, TokenIds, WordPieces } from './token-ids.js';
export { textbookIds, vocabPieces } from './token-ids.js';
export type { TokenStore } from './token-store.js';
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
export type { DownloadProgress, WikiTextDownloadOptions } from './wikitext-download.js';
export { defaultCacheDir, WIKITEXT2, wikiText2 } from './wikitext-download.js';
