/**
 * The vocabulary: `<unk>` is 0, the reserved tokens 1–4, then the words counted at least
 * `minFreq` times, most frequent first; equal counts in code-point order of the words (as
 * Python sorts strings), so the vocabulary does not depend on the paragraph order.
 *
 * @module
 */
import { DATA_DEFAULTS } from './defaults.js';

/** The unknown-word token. */
export const UNK = '<unk>';
/** The padding token. */
export const PAD = '<pad>';
/** The MLM mask token. */
export const MASK = '<mask>';
/** The classification token that starts every input. */
export const CLS = '<cls>';
/** The separator after each sentence. */
export const SEP = '<sep>';
/** The tokens with fixed ids 0–4, in id order. */
export const RESERVED_TOKENS: readonly string[] = Object.freeze([UNK, PAD, MASK, CLS, SEP]);

/** Id of {@link UNK}: what an unknown word maps to. */
export const UNK_ID = 0;
/** Id of {@link PAD}. */
export const PAD_ID = 1;
/** Id of {@link MASK}. */
export const MASK_ID = 2;
/** Id of {@link CLS}. */
export const CLS_ID = 3;
/** Id of {@link SEP}. */
export const SEP_ID = 4;
/** Id of the first (most frequent) word, after the reserved tokens. */
export const FIRST_WORD_ID = 5;

/** The JSON form of a {@link Vocab}. */
export interface VocabJSON {
  /** Every token, in id order. */
  tokens: string[];
}

/** Options of {@link Vocab.build}. */
export interface VocabOptions {
  /** Least count of a word to enter the vocabulary (a positive integer); default `DATA_DEFAULTS.minFreq`. */
  minFreq?: number;
}

/** Negative, 0 or positive as `a` comes before, with or after `b` in code-point order. */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 puts surrogates (U+D800–DFFF, astral code points) before U+E000–FFFF: move them after.
    if (x >= 0xd800 && y >= 0xd800) {
      x += x >= 0xe000 ? -0x800 : 0x2000;
      y += y >= 0xe000 ? -0x800 : 0x2000;
    }
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/** A bidirectional token ↔ id map. */
export class Vocab {
  private readonly tokens: readonly string[];
  private readonly ids: Map<string, number>;

  private constructor(tokens: readonly string[]) {
    this.tokens = tokens;
    this.ids = new Map(tokens.map((t, i) => [t, i]));
  }

  /**
   * Builds a vocabulary from sentences of words, or from word counts already made, keeping
   * the words counted at least `minFreq` times. Reserved tokens found in the text keep their
   * reserved ids.
   */
  static build(source: Iterable<readonly string[]> | ReadonlyMap<string, number>, options: VocabOptions = {}): Vocab {
    const minFreq = options.minFreq ?? DATA_DEFAULTS.minFreq;
    if (!Number.isInteger(minFreq) || minFreq < 1)
      throw new RangeError(`minFreq: expected a positive integer, got ${String(minFreq)}`);
    let counts: ReadonlyMap<string, number>;
    if (source instanceof Map) {
      counts = source;
    } else {
      const counted = new Map<string, number>();
      for (const sentence of source as Iterable<readonly string[]>) {
        for (const word of sentence) counted.set(word, (counted.get(word) ?? 0) + 1);
      }
      counts = counted;
    }
    const reserved = new Set(RESERVED_TOKENS);
    const words = [...counts]
      .filter(([word, count]) => count >= minFreq && !reserved.has(word))
      .sort(([a, ca], [b, cb]) => cb - ca || compareCodePoints(a, b))
      .map(([word]) => word);
    return new Vocab([...RESERVED_TOKENS, ...words]);
  }

  /** Restores a vocabulary from {@link Vocab.toJSON}; a `TypeError` if `json` is not one. */
  static fromJSON(json: VocabJSON): Vocab {
    const tokens = json?.tokens;
    const valid =
      Array.isArray(tokens) &&
      tokens.every((t) => typeof t === 'string') &&
      RESERVED_TOKENS.every((t, i) => tokens[i] === t) &&
      new Set(tokens).size === tokens.length;
    if (!valid)
      throw new TypeError('vocab: expected { tokens: string[] } starting with the reserved tokens, without duplicates');
    return new Vocab([...tokens]);
  }

  /** Number of tokens, reserved ones included. */
  get size(): number {
    return this.tokens.length;
  }

  /** The id of `token`; {@link UNK_ID} (0) for an unknown one. */
  idOf(token: string): number {
    return this.ids.get(token) ?? UNK_ID;
  }

  /** The token of `id`; a `RangeError` outside `[0, size)`. */
  tokenOf(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.tokens.length)
      throw new RangeError(`id: ${id} is outside [0, ${this.tokens.length})`);
    return this.tokens[id];
  }

  /** The JSON form: every token in id order. */
  toJSON(): VocabJSON {
    return { tokens: [...this.tokens] };
  }
}
