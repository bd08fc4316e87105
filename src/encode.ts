/**
 * Contextual embeddings of text: the textbook's `get_bert_encoding`, typed, for words already
 * split or raw text. The work is {@link BertModel.encode}'s; this module has the result type,
 * {@link Encoding}, and the textbook's spelling of the calls.
 *
 * @module
 */
import type { BertModel, EmbedOptions, EncodeOptions, MaskFill } from './model.js';
import { Tensor } from './tensor.js';
import type { TextInput, TokenizedText } from './tokenizer.js';

/** One text (`[a]`) or text pair (`[a, b]`): raw strings or arrays of words. */
export type SentenceInput = readonly [TextInput, TextInput?];

/**
 * The encoding of one text or text pair: a `[1, tokens.length, hidden]` {@link Tensor} of
 * every token's contextual embedding, `<cls>` (`[CLS]`) first, with the tokens as the model saw
 * them.
 */
export class Encoding extends Tensor {
  /** The tokens as the model saw them: `<cls>` a `<sep>` [b `<sep>`]; unknown words as `<unk>` (`[UNK]`). */
  readonly tokens: readonly string[];
  /** 0 for `<cls>` a `<sep>`, 1 for b `<sep>`. */
  readonly segments: readonly number[];
  /** `[start, end)` of each token in its text (string indices); `[0, 0]` for special tokens. */
  readonly offsets: readonly (readonly [number, number])[];

  /** @internal */
  constructor(text: TokenizedText, hidden: number, data: Float32Array) {
    super(data, [1, text.tokens.length, hidden]);
    this.tokens = Object.freeze([...text.tokens]);
    this.segments = Object.freeze(Array.from(text.typeIds));
    this.offsets = Object.freeze(text.offsets.map((o) => Object.freeze([...o] as [number, number])));
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

/**
 * Encodes `a` (and `b` as the second text): tokenizes with the model's tokenizer (words are
 * mapped one by one, raw text is split by the tokenizer), adds `<cls>` and `<sep>`, and returns
 * the contextual embedding of every token, dropout off. Longer than the model's positions, the
 * input is cut (as Hugging Face does), or with `{ truncate: false }` refused with a
 * `RangeError`. The same as `model.encode(a, b, options)`.
 *
 * @example
 * ```ts
 * const crane = await encode(model, ['a', 'crane', 'is', 'flying']);
 * crane.shape;           // [1, 6, 128]
 * crane.token(0).shape;  // [1, 128] — the <cls> vector
 * ```
 */
export function encode(model: BertModel, a: TextInput, b?: TextInput, options?: EncodeOptions): Promise<Encoding> {
  return model.encode(a, b, options);
}

/**
 * Encodes many texts or text pairs in one native call (padded to the longest). Each result is
 * what {@link encode} would return for that input. The same as `model.encodeBatch(inputs)`.
 */
export function encodeBatch(
  model: BertModel,
  inputs: readonly SentenceInput[],
  options?: EncodeOptions,
): Promise<Encoding[]> {
  return model.encodeBatch(inputs, options);
}

/**
 * One vector a text, `[texts.length, hidden]`: sentence-transformers' recipe (mean pooling,
 * optional L2 normalisation). The same as `model.embed(texts, options)`.
 *
 * @example
 * ```ts
 * const model = await BertModel.load('all-MiniLM-L6-v2');
 * const vectors = await embed(model, ['a crane is flying', 'a bird flies'], { normalize: true });
 * vectors.shape; // [2, 384]
 * ```
 */
export function embed(model: BertModel, texts: readonly string[], options?: EmbedOptions): Promise<Tensor> {
  return model.embed(texts, options);
}

/** The most probable tokens for every mask token of `text`. The same as `model.fillMask(text, options)`. */
export function fillMask(model: BertModel, text: string, options?: { topK?: number }): Promise<MaskFill[]> {
  return model.fillMask(text, options);
}
