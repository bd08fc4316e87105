/**
 * Next-sentence-prediction pairs: `<cls>` a `<sep>` b `<sep>`, b the true next sentence or a
 * random one, each with probability ½.
 *
 * @module
 */
import type { Rng } from './random.js';
import { CLS, PAD, SEP, type Vocab } from './vocab.js';

/** Sentence pairs in flat typed arrays, each row padded to `maxLen` with `<pad>`. */
export interface SentencePairs {
  /** Number of pairs. */
  count: number;
  /** Row length. */
  maxLen: number;
  /** count×maxLen token ids. */
  tokens: Int32Array;
  /** count×maxLen segment ids. */
  segments: Int32Array;
  /** count real lengths. */
  validLens: Int32Array;
  /** count labels: 1 = isNext, 0 = notNext. */
  isNext: Int32Array;
}

/** Paragraphs of sentences of words as token ids. */
export type IdParagraphs = Int32Array[][];

/** Maps every word of `paragraphs` to its id in `vocab`. */
export function toIds(paragraphs: readonly (readonly (readonly string[])[])[], vocab: Vocab): IdParagraphs {
  return paragraphs.map((p) => p.map((s) => Int32Array.from(s, (w) => vocab.idOf(w))));
}

/**
 * For each consecutive pair (a, b) of every paragraph, keeps b with probability ½ (isNext)
 * or replaces it by a random sentence of a random paragraph (notNext); pairs with
 * `len(a) + len(b) + 3 > maxLen` are skipped.
 */
export function nextSentencePairs(paragraphs: IdParagraphs, vocab: Vocab, maxLen: number, rng: Rng): SentencePairs {
  const bound = paragraphs.reduce((n, p) => n + Math.max(0, p.length - 1), 0);
  const [cls, sep, pad] = [vocab.idOf(CLS), vocab.idOf(SEP), vocab.idOf(PAD)];
  const tokens = new Int32Array(bound * maxLen).fill(pad);
  const segments = new Int32Array(bound * maxLen);
  const validLens = new Int32Array(bound);
  const isNext = new Int32Array(bound);
  let count = 0;
  for (const paragraph of paragraphs) {
    for (let i = 0; i + 1 < paragraph.length; i++) {
      const a = paragraph[i];
      let b = paragraph[i + 1];
      const next = rng.next() < 0.5;
      if (!next) {
        const other = paragraphs[rng.below(paragraphs.length)];
        b = other[rng.below(other.length)];
      }
      const n = a.length + b.length + 3;
      if (n > maxLen) continue;
      const row = count * maxLen;
      tokens[row] = cls;
      tokens.set(a, row + 1);
      tokens[row + a.length + 1] = sep;
      tokens.set(b, row + a.length + 2);
      tokens[row + n - 1] = sep;
      segments.fill(1, row + a.length + 2, row + n);
      validLens[count] = n;
      isNext[count] = next ? 1 : 0;
      count++;
    }
  }
  return {
    count,
    maxLen,
    tokens: tokens.slice(0, count * maxLen),
    segments: segments.slice(0, count * maxLen),
    validLens: validLens.slice(0, count),
    isNext: isNext.slice(0, count),
  };
}
