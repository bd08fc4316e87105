/**
 * Contextual embeddings of words: the textbook's `get_bert_encoding`, typed. The work is
 * {@link BertModel.encode}'s; this module frames words into padded sequences and wraps the
 * result in {@link Encoding}s.
 *
 * @module
 */
import type { Sequences } from './data/batch.js';
import { CLS, PAD_ID, SEP, type Vocab } from './data/vocab.js';
import type { BertModel } from './model.js';
import { Tensor } from './tensor.js';

/** One sentence (`[tokensA]`) or sentence pair (`[tokensA, tokensB]`) of words. */
export type SentenceInput = readonly [readonly string[], (readonly string[])?];

/**
 * The encoding of one sentence or sentence pair: a `[1, tokens.length, hidden]` {@link Tensor}
 * of every token's contextual embedding, `<cls>` first, with the tokens as the model saw them.
 */
export class Encoding extends Tensor {
  /** The tokens as the model saw them: `<cls>` a `<sep>` [b `<sep>`], unknown words as `<unk>`. */
  readonly tokens: readonly string[];
  /** 0 for `<cls>` a `<sep>`, 1 for b `<sep>`. */
  readonly segments: readonly number[];

  /** @internal */
  constructor(tokens: string[], segments: number[], hidden: number, data: Float32Array) {
    super(data, [1, tokens.length, hidden]);
    this.tokens = Object.freeze(tokens);
    this.segments = Object.freeze(segments);
  }

  /** The vector of token `index` (0 is `<cls>`) as a `[1, hidden]` tensor; a `RangeError` outside `[0, tokens.length)`. */
  token(index: number): Tensor {
    const [, n, hidden] = this.shape;
    if (!Number.isInteger(index) || index < 0 || index >= n) {
      throw new RangeError(`index: ${index} is outside [0, ${n})`);
    }
    return Tensor.fromNative({ data: this.data.slice(index * hidden, (index + 1) * hidden), shape: [1, hidden] });
  }
}

/** Words framed as `<cls>` a `<sep>` [b `<sep>`], with their segments. */
interface Framed {
  tokens: string[];
  segments: number[];
}

/**
 * `<cls>` a `<sep>` [b `<sep>`] and its segments, words the vocabulary lacks as `<unk>` (what
 * the model sees), checked against the model's limit. Errors name `inputs[index]`.
 */
function frame(input: SentenceInput, index: number, vocab: Vocab, maxPositions: number): Framed {
  const at = `inputs[${index}]`;
  if (!Array.isArray(input))
    throw new TypeError(`${at}: expected [tokensA] or [tokensA, tokensB], got ${String(input)}`);
  const [tokensA, tokensB] = input;
  for (const [name, words] of [
    ['tokensA', tokensA],
    ['tokensB', tokensB ?? []],
  ] as const) {
    if (!Array.isArray(words) || words.some((w) => typeof w !== 'string')) {
      throw new TypeError(`${at}.${name}: expected an array of strings`);
    }
  }
  const seen = (words: readonly string[]) => words.map((w) => vocab.tokenOf(vocab.idOf(w)));
  const tokens = [CLS, ...seen(tokensA), SEP, ...(tokensB ? [...seen(tokensB), SEP] : [])];
  const segments = tokens.map((_, i) => (i < tokensA.length + 2 ? 0 : 1));
  if (tokens.length > maxPositions) {
    throw new RangeError(
      `${at}: ${tokens.length} tokens with <cls> and <sep>, but this model takes at most ${maxPositions} (maxPositions)`,
    );
  }
  return { tokens, segments };
}

/**
 * Sentences or pairs as one padded batch of sequences (to the longest), words mapped through
 * `vocab` (unknown words to `<unk>`), and a function that cuts the native output back into
 * one {@link Encoding} each.
 *
 * @internal
 */
export function frameSentences(
  inputs: readonly SentenceInput[],
  vocab: Vocab,
  maxPositions: number,
): { sequences: Sequences; encodings: (data: Float32Array, hidden: number) => Encoding[] } {
  if (!Array.isArray(inputs) || inputs.length === 0) throw new RangeError('inputs: expected at least one sentence');
  const framed = inputs.map((input, i) => frame(input, i, vocab, maxPositions));
  const b = framed.length;
  const l = Math.max(...framed.map((f) => f.tokens.length));
  const sequences: Sequences = {
    batchSize: b,
    seqLen: l,
    tokens: new Int32Array(b * l).fill(PAD_ID),
    segments: new Int32Array(b * l),
    validLens: new Int32Array(b),
  };
  framed.forEach((f, row) => {
    f.tokens.forEach((word, j) => {
      sequences.tokens[row * l + j] = vocab.idOf(word);
      sequences.segments[row * l + j] = f.segments[j];
    });
    sequences.validLens[row] = f.tokens.length;
  });
  const encodings = (data: Float32Array, hidden: number) =>
    framed.map(
      (f, row) =>
        new Encoding(f.tokens, f.segments, hidden, data.slice(row * l * hidden, (row * l + f.tokens.length) * hidden)),
    );
  return { sequences, encodings };
}

/**
 * Encodes `tokensA` (and `tokensB` as the second sentence): adds `<cls>` and `<sep>`, maps
 * words through the model's vocabulary (unknown words become `<unk>`), and returns the
 * contextual embedding of every token, dropout off. Too long an input is a `RangeError`
 * naming the model's limit. The same as `model.encode(tokensA, tokensB)`.
 *
 * @example
 * ```ts
 * const crane = await encode(model, ['a', 'crane', 'is', 'flying']);
 * crane.shape;           // [1, 6, 128]
 * crane.token(0).shape;  // [1, 128] — the <cls> vector
 * ```
 */
export function encode(model: BertModel, tokensA: readonly string[], tokensB?: readonly string[]): Promise<Encoding> {
  return model.encode(tokensA, tokensB);
}

/**
 * Encodes many sentences or sentence pairs in one native call (padded to the longest). Each
 * result is what {@link encode} would return for that input. The same as
 * `model.encodeBatch(inputs)`.
 */
export function encodeBatch(model: BertModel, inputs: readonly SentenceInput[]): Promise<Encoding[]> {
  return model.encodeBatch(inputs);
}
