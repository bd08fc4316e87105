/**
 * Model sizes and their textbook defaults.
 *
 * @module
 */

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

/** Dive into Deep Learning's pretraining configuration. */
export const TEXTBOOK_SIZES: Readonly<ModelSizes> = Object.freeze({
  hidden: 128,
  ffnHidden: 256,
  heads: 2,
  layers: 2,
  dropout: 0.2,
  maxPositions: 1000,
});
