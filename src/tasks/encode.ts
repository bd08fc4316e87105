/**
 * Contextual embeddings of text: the textbook's `get_bert_encoding`, typed, for words already
 * split or raw text — {@link encode}, {@link encodeBatch} and their result, {@link Encoding}.
 *
 * @module
 */
import type { BertModel } from '../model.js';
import { Tensor } from '../tensor.js';
import type { TextInput, TokenizedText } from '../tokenizer.js';

/** One text (`[a]`) or text pair (`[a, b]`): raw strings or arrays of words. */
export type SentenceInput = readonly [TextInput, TextInput?];

/** How texts are encoded. */
export interface EncodeOptions {
  /** Cut inputs longer than the model's positions (as Hugging Face does); `false` refuses them with a `RangeError`. Default `true`. */
  truncate?: boolean;
}

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
 * Tokenizes for `model`: cut to its positions unless `truncate` is `false`.
 *
 * @internal
 */
export function tokenizeFor(model: BertModel, inputs: readonly SentenceInput[], options: EncodeOptions = {}) {
  return model.tokenizer.encodeBatch(inputs, { maxLength: model.config.maxPositions, truncate: options.truncate });
}

/**
 * Encodes `a` (and `b` as the second text): tokenizes with the model's tokenizer (words are
 * mapped one by one, raw text is split by the tokenizer), adds `<cls>` and `<sep>`, and returns
 * the contextual embedding of every token, dropout off. Longer than the model's positions, the
 * input is cut (as Hugging Face does), or with `{ truncate: false }` refused with a
 * `RangeError`.
 *
 * @example
 * ```ts
 * const crane = await encode(model, ['a', 'crane', 'is', 'flying']);
 * crane.shape;           // [1, 6, 128]
 * crane.token(0).shape;  // [1, 128] — the <cls> vector
 * ```
 */
export async function encode(
  model: BertModel,
  a: TextInput,
  b?: TextInput,
  options: EncodeOptions = {},
): Promise<Encoding> {
  const [encoding] = await encodeBatch(model, [[a, b]], options);
  return encoding;
}

/**
 * Encodes many texts or text pairs in one native call (padded to the longest). Each result is
 * what {@link encode} would return for that input.
 */
export async function encodeBatch(
  model: BertModel,
  inputs: readonly SentenceInput[],
  options: EncodeOptions = {},
): Promise<Encoding[]> {
  if (!Array.isArray(inputs)) throw new TypeError(`inputs: expected an array of [a] or [a, b], got ${String(inputs)}`);
  if (inputs.length === 0) throw new RangeError('inputs: expected at least one text');
  inputs.forEach((input, i) => {
    if (!Array.isArray(input)) throw new TypeError(`inputs[${i}]: expected [a] or [a, b], got ${String(input)}`);
  });
  const texts = tokenizeFor(model, inputs, options);
  const { data, shape } = await model.encodeSequences(model.tokenizer.pad(texts));
  const [, l, hidden] = shape;
  return texts.map(
    (t, row) => new Encoding(t, hidden, data.slice(row * l * hidden, (row * l + t.ids.length) * hidden)),
  );
}
