/**
 * Model sizes and their textbook defaults (which come from the native core).
 *
 * @module
 */
import { native } from './native.js';

/** The sizes of a BERT model. */
export interface BertConfig {
  /** Number of token ids (the vocabulary size, reserved tokens included). */
  vocabSize: number;
  /** Width of every hidden representation. */
  hidden: number;
  /** Inner width of the position-wise feed-forward network. */
  ffnHidden: number;
  /** Attention heads; must divide `hidden`. */
  heads: number;
  /** Encoder blocks. */
  layers: number;
  /** Dropout probability in training steps. */
  dropout: number;
  /** Length of the learned position table: the longest input the model takes. */
  maxPositions: number;
}

/** The sizes a user chooses; `vocabSize` comes from the vocabulary. */
export type ModelSizes = Omit<BertConfig, 'vocabSize'>;

const { vocabSize: _, ...textbook } = native().textbookConfig(0);

/** Dive into Deep Learning's pretraining configuration (hidden 128, FFN 256, 2 heads, 2 layers, …). */
export const TEXTBOOK_SIZES: Readonly<ModelSizes> = Object.freeze(textbook);

/**
 * The full config of `sizes` over the textbook's, for a vocabulary of `vocabSize`. Whether the
 * numbers make a model (integers, in range, fitting in memory) is the native core's check.
 *
 * @internal
 */
export function resolveConfig(sizes: Partial<ModelSizes>, vocabSize: number): BertConfig {
  return { ...TEXTBOOK_SIZES, ...sizes, vocabSize };
}
