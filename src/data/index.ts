/**
 * The data pipeline: WikiText-2 → paragraphs → vocabulary → NSP pairs → MLM masking →
 * padded batches. Independent of the native addon.
 *
 * @module
 */
export type { Batch } from './batch.js';
export { paragraphsOf, readLines, readParagraphs, TRAIN_FILE } from './corpus.js';
export type { CorpusSource, Paragraphs } from './corpus.js';
export { PretrainingDataset } from './dataset.js';
export type { BatchOptions, DatasetOptions } from './dataset.js';
export { maskPairs, predictionsFor } from './masking.js';
export type { MaskedPairs } from './masking.js';
export { nextSentencePairs, toIds } from './nsp.js';
export type { IdParagraphs, SentencePairs } from './nsp.js';
export { checkSeed, rngFor, roundHalfEven, shuffle, Stream } from './random.js';
export type { Rng } from './random.js';
export { CLS, MASK, PAD, RESERVED_TOKENS, SEP, UNK, Vocab } from './vocab.js';
export type { VocabJSON } from './vocab.js';
