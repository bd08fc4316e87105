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

const SIZES = ['vocabSize', 'hidden', 'ffnHidden', 'heads', 'layers', 'maxPositions'] as const;

/**
 * The full config of `sizes` over the textbook's, for a vocabulary of `vocabSize`: every size
 * must be a non-negative integer below 2^32 and `dropout` a number (a `RangeError` naming the
 * field); whether they make a model is the core's check.
 *
 * @internal
 */
export function resolveConfig(sizes: Partial<ModelSizes>, vocabSize: number): BertConfig {
  const config: BertConfig = { ...TEXTBOOK_SIZES, ...sizes, vocabSize };
  for (const field of SIZES) {
    const v = config[field];
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new RangeError(`${field}: expected a non-negative integer, got ${String(v)}`);
    }
  }
  if (typeof config.dropout !== 'number')
    throw new RangeError(`dropout: expected a number, got ${String(config.dropout)}`);
  return config;
}
