/**
 * The data settings of Dive into Deep Learning's pretraining run: the defaults of the data
 * pipeline and of `pretrain`.
 *
 * @module
 */

/** The textbook's data settings. */
export const DATA_DEFAULTS = Object.freeze({
  /** Tokens per sentence pair, `<cls>` and `<sep>`s included. */
  maxLen: 64,
  /** Least count of a word to enter the vocabulary. */
  minFreq: 5,
  /** Seeds paragraph order, pairs, masking and batch order. */
  seed: 0,
  /**
   * Bytes the data may hold in memory (not the textbook's: it holds everything): half for token
   * ids, half for a block of examples. WikiText-2 fits whole, as in the textbook.
   */
  memory: 512 * 2 ** 20,
});
