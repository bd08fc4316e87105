/**
 * The vocabulary: `<unk>` is 0, the reserved tokens 1–4, then the words counted at least
 * `minFreq` times, most frequent first; equal counts in code-point order of the word, so the
 * vocabulary does not depend on the paragraph order.
 *
 * @module
 */

/** The unknown-word token, id 0. */
export const UNK = '<unk>';
/** Padding, id 1. */
export const PAD = '<pad>';
/** The MLM mask, id 2. */
export const MASK = '<mask>';
/** The classification token that starts every input, id 3. */
export const CLS = '<cls>';
/** The separator after each sentence, id 4. */
export const SEP = '<sep>';
/** The tokens with fixed ids 0–4, in id order. */
export const RESERVED_TOKENS: readonly string[] = Object.freeze([UNK, PAD, MASK, CLS, SEP]);

/** The JSON form of a {@link Vocab}. */
export interface VocabJSON {
  /** Every token, in id order. */
  tokens: string[];
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
   * Counts the words of `sentences` and keeps those seen at least `minFreq` times (default
   * 5). Reserved tokens found in the text keep their reserved ids.
   */
  static build(sentences: Iterable<readonly string[]>, options: { minFreq?: number } = {}): Vocab {
    const minFreq = options.minFreq ?? 5;
    if (!Number.isInteger(minFreq) || minFreq < 1) throw new RangeError(`minFreq: expected a positive integer, got ${String(minFreq)}`);
    const counts = new Map<string, number>();
    for (const sentence of sentences) {
      for (const word of sentence) counts.set(word, (counts.get(word) ?? 0) + 1);
    }
    const reserved = new Set(RESERVED_TOKENS);
    const words = [...counts]
      .filter(([word, count]) => count >= minFreq && !reserved.has(word))
      .sort(([a, ca], [b, cb]) => cb - ca || (a < b ? -1 : a > b ? 1 : 0))
      .map(([word]) => word);
    return new Vocab([...RESERVED_TOKENS, ...words]);
  }

  /** Restores a vocabulary from {@link Vocab.toJSON}; a `TypeError` if it is not one. */
  static fromJSON(json: VocabJSON): Vocab {
    const tokens = json?.tokens;
    const valid =
      Array.isArray(tokens) &&
      tokens.every((t) => typeof t === 'string') &&
      RESERVED_TOKENS.every((t, i) => tokens[i] === t) &&
      new Set(tokens).size === tokens.length;
    if (!valid) throw new TypeError('vocab: expected { tokens: string[] } starting with the reserved tokens, without duplicates');
    return new Vocab([...tokens]);
  }

  /** Number of tokens, reserved ones included. */
  get size(): number {
    return this.tokens.length;
  }

  /** The id of `token`; 0 (`<unk>`) for an unknown one. */
  idOf(token: string): number {
    return this.ids.get(token) ?? 0;
  }

  /** The token of `id`; a `RangeError` outside `[0, size)`. */
  tokenOf(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.tokens.length) throw new RangeError(`id: ${id} is outside [0, ${this.tokens.length})`);
    return this.tokens[id];
  }

  /** The JSON form (every token in id order). */
  toJSON(): VocabJSON {
    return { tokens: [...this.tokens] };
  }
}
