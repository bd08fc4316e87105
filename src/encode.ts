/**
 * Contextual embeddings of words: the textbook's `get_bert_encoding`, typed.
 *
 * @module
 */

import { CLS, SEP } from './data/vocab.js';
import type { BertModel } from './model.js';

/** One token's vector, shaped `[1, hidden]` like the textbook's `encoded[:, i, :]`. */
export interface TokenVector {
  /** `[1, hidden]`. */
  shape: [1, number];
  /** The `hidden` values. */
  data: Float32Array;
}

/** The encoding of one sentence or sentence pair. */
export interface Encoding {
  /** The tokens as the model saw them: `<cls>` a `<sep>` [b `<sep>`]. */
  tokens: string[];
  /** 0 for `<cls>` a `<sep>`, 1 for b `<sep>`. */
  segments: number[];
  /** `[1, tokens.length, hidden]`. */
  shape: [1, number, number];
  /** Row-major embeddings, `tokens.length × hidden` values. */
  data: Float32Array;
  /** The vector of token `index` (0 is `<cls>`); a `RangeError` outside `[0, tokens.length)`. */
  token(index: number): TokenVector;
}

/** `<cls>` a `<sep>` [b `<sep>`] and its segments, checked against the model's limit. */
function frame(model: BertModel, tokensA: readonly string[], tokensB?: readonly string[]) {
  for (const [name, words] of [
    ['tokensA', tokensA],
    ['tokensB', tokensB ?? []],
  ] as const) {
    if (!Array.isArray(words) || words.some((w) => typeof w !== 'string')) {
      throw new TypeError(`${name}: expected an array of strings`);
    }
  }
  const tokens = [CLS, ...tokensA, SEP, ...(tokensB ? [...tokensB, SEP] : [])];
  const segments = tokens.map((_, i) => (i < tokensA.length + 2 ? 0 : 1));
  const limit = model.config.maxPositions;
  if (tokens.length > limit) {
    throw new RangeError(
      `input: ${tokens.length} tokens with <cls> and <sep>, but this model takes at most ${limit} (maxPositions)`,
    );
  }
  return { tokens, segments };
}

function encodingOf(tokens: string[], segments: number[], hidden: number, data: Float32Array): Encoding {
  const n = tokens.length;
  return {
    tokens,
    segments,
    shape: [1, n, hidden],
    data,
    token(index: number): TokenVector {
      if (!Number.isInteger(index) || index < 0 || index >= n) {
        throw new RangeError(`index: ${index} is outside [0, ${n})`);
      }
      return { shape: [1, hidden], data: data.slice(index * hidden, (index + 1) * hidden) };
    },
  };
}

/**
 * Encodes `tokensA` (and `tokensB` as the second sentence): adds `<cls>` and `<sep>`, maps
 * words through the model's vocabulary (unknown words become `<unk>`), and returns the
 * contextual embedding of every token, dropout off. Too long an input is a `RangeError`
 * naming the model's limit.
 *
 * @example
 * ```ts
 * const { shape, token } = await encode(model, ['a', 'crane', 'is', 'flying']);
 * shape;           // [1, 6, 128]
 * token(0).shape;  // [1, 128] — the <cls> vector
 * ```
 */
export async function encode(
  model: BertModel,
  tokensA: readonly string[],
  tokensB?: readonly string[],
): Promise<Encoding> {
  const [encoding] = await encodeBatch(model, [[tokensA, tokensB]]);
  return encoding;
}

/**
 * Encodes many sentences or sentence pairs in one native call (padded to the longest).
 * Each result is what {@link encode} would return for that input.
 */
export async function encodeBatch(
  model: BertModel,
  inputs: readonly (readonly [readonly string[], (readonly string[])?])[],
): Promise<Encoding[]> {
  if (!Array.isArray(inputs) || inputs.length === 0) {
    throw new RangeError('inputs: expected at least one sentence');
  }
  const framed = inputs.map(([a, b]) => frame(model, a, b));
  const b = framed.length;
  const l = Math.max(...framed.map((f) => f.tokens.length));
  const tokens = new Int32Array(b * l).fill(model.vocab.idOf('<pad>'));
  const segments = new Int32Array(b * l);
  const validLens = new Int32Array(b);
  framed.forEach((f, row) => {
    f.tokens.forEach((word, j) => {
      tokens[row * l + j] = model.vocab.idOf(word);
      segments[row * l + j] = f.segments[j];
    });
    validLens[row] = f.tokens.length;
  });
  const data = await model.native.encode(tokens, segments, validLens, b, l);
  const hidden = model.config.hidden;
  return framed.map((f, row) =>
    encodingOf(f.tokens, f.segments, hidden, data.slice(row * l * hidden, (row * l + f.tokens.length) * hidden)),
  );
}
