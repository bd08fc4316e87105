/**
 * The token ids the data pipeline needs besides the words': the textbook vocabulary's reserved
 * ids, or a tokenizer's (BERT's `[CLS]`, `[SEP]`, `[PAD]`, `[MASK]`), and the ids a random MLM
 * replacement may take.
 *
 * @module
 */
import { CLS_ID, FIRST_WORD_ID, MASK_ID, PAD_ID, SEP_ID } from './vocab.js';

/** Special ids and the range of word ids. */
export interface TokenIds {
  /** The token that starts every pair. */
  cls: number;
  /** The token after each sentence. */
  sep: number;
  /** Padding. */
  pad: number;
  /** The MLM mask. */
  mask: number;
  /** A random replacement is an id in `[firstWord, size)`. */
  firstWord: number;
  /** Number of ids. */
  size: number;
}

/** The ids of a textbook vocabulary of `size` tokens (the reserved tokens 0–4, words after). */
export function textbookIds(size: number): TokenIds {
  return { cls: CLS_ID, sep: SEP_ID, pad: PAD_ID, mask: MASK_ID, firstWord: FIRST_WORD_ID, size };
}

/** Each of a corpus's words as model ids: word `w` is `ids[starts[w], starts[w + 1])`. */
export interface WordPieces {
  /** The ids of every word, end to end. */
  ids: Int32Array;
  /** Where each word's ids start; one entry more than words. */
  starts: Int32Array;
}

/** `words` as ids of a textbook vocabulary: one id a word (`<unk>`'s for a word it lacks). */
export function vocabPieces(words: readonly string[], vocab: { idOf(word: string): number }): WordPieces {
  return {
    ids: Int32Array.from(words, (w) => vocab.idOf(w)),
    starts: Int32Array.from({ length: words.length + 1 }, (_, i) => i),
  };
}

/**
 * A tokenizer's sub-words instead of a word vocabulary (the WordPiece of a BERT being
 * continued): its special ids, and each word split alone, without special tokens.
 */
export interface Subwords {
  /** The special ids and the range of word ids. */
  ids: TokenIds;
  /** The pieces of each of `words`. */
  split(words: readonly string[]): WordPieces;
}
