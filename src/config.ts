/**
 * Model sizes and their textbook defaults (which come from the native core).
 *
 * @module
 */
import { fromNative, native } from './native.js';

/** What a task head predicts: Hugging Face's `problem_type`s of a sequence's head, or a class a token. */
export type TaskKind =
  | 'single_label_classification'
  | 'multi_label_classification'
  | 'regression'
  | 'token_classification';

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
  /** Dropout on the attention weights, when it differs from `dropout`. */
  attentionDropout?: number;
  /** The feed-forward networks' and MLM transform's nonlinearity: `'relu'` (the textbook's), `'gelu'` (BERT's), `'gelu_tanh'`. */
  activation?: 'relu' | 'gelu' | 'gelu_tanh';
  /** A layer norm (and dropout) after the embeddings, as BERT has and the textbook has not. */
  embeddingNorm?: boolean;
  /** The epsilon of every layer norm (1e-5 in the textbook, 1e-12 in BERT). */
  layerNormEps?: number;
  /** Number of segment (token type) ids; default 2. */
  typeVocabSize?: number;
  /** Whether the MLM decoder's weight is the token embedding table (BERT's tying). */
  tieWordEmbeddings?: boolean;
  /** Whether the model has the MLM head (a model loaded from a bare encoder has not). */
  mlmHead?: boolean;
  /** Whether the model has the NSP head (the classifier on the pooler's output). */
  nspHead?: boolean;
  /** Whether the model has the pooler (dense + tanh on the first token); unset: when it has the NSP head. A checkpoint's pooler is kept without its NSP head. */
  pooler?: boolean;
  /** Dropout before a task head's classifier, when it differs from `dropout` (Hugging Face's `classifier_dropout`). */
  classifierDropout?: number;
  /**
   * A task head (dropout and a linear layer, `classifier`, to `numLabels` outputs), as Hugging
   * Face's task models have: on the pooler's output for a sequence (`single_label_classification`,
   * `multi_label_classification`, `regression`, the `problem_type`s of
   * `BertForSequenceClassification`), on every token for `token_classification`
   * (`BertForTokenClassification`).
   */
  task?: {
    /** What the head predicts (Hugging Face's `problem_type`, or `token_classification`). */
    kind: TaskKind;
    /** Its outputs: classes, or numbers for a regression. */
    numLabels: number;
  };
}

/** The sizes and variants a user chooses; `vocabSize` comes from the vocabulary or tokenizer. */
export type ModelSizes = Omit<BertConfig, 'vocabSize'>;

/**
 * Dive into Deep Learning's pretraining configuration (hidden 128, FFN 256, 2 heads, 2 layers,
 * ReLU, …), as the native core defines it (read from the addon when first used).
 */
export const TEXTBOOK_SIZES: Readonly<ModelSizes> = fromNative(() => {
  const { vocabSize: _, ...textbook } = native().textbookConfig(0) as BertConfig;
  return textbook;
});

/**
 * The full config of `sizes` over the textbook's, for a vocabulary of `vocabSize`. Whether the
 * numbers make a model (integers, in range, fitting in memory) is the native core's check.
 *
 * @internal
 */
export function resolveConfig(sizes: Partial<ModelSizes>, vocabSize: number): BertConfig {
  return { ...TEXTBOOK_SIZES, ...sizes, vocabSize };
}
