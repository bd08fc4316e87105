/**
 * {@link Tokenizer}: text to token ids, through Hugging Face's `tokenizers` (in the native
 * core). A `tokenizer.json` (BERT's WordPiece, or any kind it describes), BERT's WordPiece from
 * a `vocab.txt`, or the textbook's word vocabulary: one interface.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';

import type { Sequences } from './data/batch.js';
import type { Subwords } from './data/token-ids.js';
import type { Vocab } from './data/vocab.js';
import { type NativeTokenizer, native } from './native.js';

/** Text to tokenize: a raw string, or words already split (each still split into sub-words). */
export type TextInput = string | readonly string[];

/** One tokenized text or text pair, special tokens included. */
export interface TokenizedText {
  /** Token ids. */
  ids: Int32Array;
  /** Segment ids: 0 for the first text (with `[CLS]` and its `[SEP]`), 1 for the second. */
  typeIds: Int32Array;
  /** 1 for every token (padding, where a batch adds it, is 0). */
  attentionMask: Int32Array;
  /** The tokens as strings (sub-words as the tokenizer writes them, e.g. `##ing`). */
  tokens: string[];
  /** `[start, end)` of each token in its text, in string indices (UTF-16); `[0, 0]` for special tokens. */
  offsets: [number, number][];
  /** Tokens cut off to fit `maxLength` (0 when the text fitted). */
  overflow: number;
}

/** How texts are tokenized. */
export interface TokenizeOptions {
  /** Cut inputs to this many tokens, special tokens included (the longer text of a pair first). */
  maxLength?: number;
  /** With `maxLength`: `false` makes a longer input a `RangeError` instead of cutting it; default `true`. */
  truncate?: boolean;
  /** Pad every result of a batch to the longest (padding token, attention mask 0, segment 0); default `false`. */
  padding?: boolean;
}

/** A tokenizer; see the module's description for the kinds. */
export class Tokenizer {
  readonly #native: NativeTokenizer;

  private constructor(inner: NativeTokenizer) {
    this.#native = inner;
  }

  /**
   * Reads a `tokenizer.json`, or a `vocab.txt` (BERT's WordPiece; lowercased and accents
   * stripped unless `lowercase` is `false`, as `do_lower_case` says in `tokenizer_config.json`).
   * An `Error` naming the path when it cannot be read, a `CheckpointError`-kind error when it is
   * not a tokenizer.
   */
  static async fromFile(path: string, options: { lowercase?: boolean } = {}): Promise<Tokenizer> {
    const text = await readFile(path, 'utf8').catch((cause: NodeJS.ErrnoException) => {
      throw new Error(`tokenizer: '${path}': ${cause.code === 'ENOENT' ? 'no such file' : cause.message}`, { cause });
    });
    return path.endsWith('.txt') ? Tokenizer.fromVocabText(text, options.lowercase) : Tokenizer.fromJSON(text);
  }

  /** BERT's WordPiece from the text of a `vocab.txt` (lowercasing unless `lowercase` is `false`). */
  static fromVocabText(vocabTxt: string, lowercase = true): Tokenizer {
    return new Tokenizer(native().NativeTokenizer.bertWordpiece(vocabTxt, lowercase));
  }

  /** The tokenizer a `tokenizer.json`'s text describes. */
  static fromJSON(json: string): Tokenizer {
    return new Tokenizer(native().NativeTokenizer.fromJson(json));
  }

  /**
   * A model folder's tokenizer from a `tokenizer.json`'s or `vocab.txt`'s text: checked now (a
   * file that is no tokenizer throws here, as with {@link Tokenizer.fromJSON}), made at its first
   * use. A model given token ids never tokenizes, and BERT's vocabulary, made, holds about 5 MiB.
   *
   * @internal
   */
  static onDemand(source: { json: string } | { vocabTxt: string; lowercase: boolean }): Tokenizer {
    const { NativeTokenizer } = native();
    return new Tokenizer(
      'json' in source
        ? NativeTokenizer.fromJson(source.json, true)
        : NativeTokenizer.bertWordpiece(source.vocabTxt, source.lowercase, true),
    );
  }

  /**
   * The textbook's word vocabulary as a tokenizer: lowercased, split on whitespace, words it
   * lacks as `<unk>`, inputs framed as `<cls> a <sep> [b <sep>]`.
   */
  static fromVocab(vocab: Vocab): Tokenizer {
    return new Tokenizer(native().NativeTokenizer.wordLevel([...vocab.toJSON().tokens]));
  }

  /**
   * The native tokenizer, for a native call that tokenizes itself.
   *
   * @internal
   */
  nativeTokenizer(): NativeTokenizer {
    return this.#native;
  }

  /** The tokenizer as a `tokenizer.json`'s text. */
  toJSON(): string {
    return this.#native.toJson();
  }

  /** Number of token ids, added tokens included. */
  get vocabSize(): number {
    return this.#native.vocabSize;
  }

  /** The id of `token`, or `undefined` when the vocabulary lacks it. */
  tokenToId(token: string): number | undefined {
    return this.#native.tokenToId(token) ?? undefined;
  }

  /** The token of `id`, or `undefined`. */
  idToToken(id: number): string | undefined {
    return this.#native.idToToken(id) ?? undefined;
  }

  /** The padding token's id (`[PAD]` or `<pad>`). */
  get padId(): number {
    return this.#native.specialIds().pad;
  }

  /** The mask token (`[MASK]` or `<mask>`), if the vocabulary has one. */
  get maskToken(): string | undefined {
    const { mask } = this.#native.specialIds();
    return mask === undefined || mask === null ? undefined : this.idToToken(mask);
  }

  /**
   * The tokenizer's sub-words for pretraining data (continuing a BERT): its `[CLS]`, `[SEP]`,
   * `[PAD]` and `[MASK]`, and each word split alone without special tokens. A random MLM
   * replacement is an id past the last special token (BERT's `[unusedN]` included). An
   * `Error` naming the tokens it lacks.
   */
  subwords(): Subwords {
    const { cls, sep, pad, mask, unk } = this.#native.specialIds();
    const missing = Object.entries({ '[CLS]': cls, '[SEP]': sep, '[MASK]': mask }).filter(([, id]) => id == null);
    if (missing.length > 0 || cls == null || sep == null || mask == null) {
      throw new Error(`tokenizer: pretraining needs ${missing.map(([t]) => t).join(', ')}, which the vocabulary lacks`);
    }
    const firstWord = 1 + Math.max(cls, sep, pad, mask, unk ?? 0);
    return {
      ids: { cls, sep, pad, mask, firstWord, size: this.vocabSize },
      split: (words) => this.#native.splitWords([...words]),
    };
  }

  /** Tokenizes `text` (and `pair` as the second text), special tokens added. */
  encode(text: TextInput, pair?: TextInput, options: TokenizeOptions = {}): TokenizedText {
    return this.encodeBatch([[text, pair]], options)[0];
  }

  /**
   * Tokenizes many texts or pairs at once, padded to the longest with `padding`. A `TypeError`
   * names a bad item (`inputs[3]`); with `maxLength` and `truncate: false`, a `RangeError` names an
   * input that does not fit. An empty string is only its special tokens (`[CLS] [SEP]`).
   */
  encodeBatch(inputs: readonly (readonly [TextInput, TextInput?])[], options: TokenizeOptions = {}): TokenizedText[] {
    if (!Array.isArray(inputs)) throw new TypeError('inputs: expected an array of [text] or [text, pair]');
    const { maxLength, truncate = true } = options;
    if (maxLength !== undefined && (!Number.isInteger(maxLength) || maxLength < 2 || maxLength > 0xffffffff)) {
      throw new RangeError(`maxLength: expected an integer ≥ 2, got ${String(maxLength)}`);
    }
    const items = inputs.map((item) => (Array.isArray(item) && item[1] === undefined ? [item[0]] : item));
    const encoded = this.#native.encodeBatch(items as never, maxLength);
    const texts = encoded.map((e, i) => {
      if (e.overflow > 0 && !truncate) {
        throw new RangeError(
          `inputs[${i}]: ${e.ids.length + e.overflow} tokens with the special tokens, but at most ${maxLength} fit (maxLength)`,
        );
      }
      const offsets: [number, number][] = [];
      for (let k = 0; k < e.offsets.length; k += 2) offsets.push([e.offsets[k], e.offsets[k + 1]]);
      return {
        ids: e.ids,
        typeIds: e.typeIds,
        attentionMask: new Int32Array(e.ids.length).fill(1),
        tokens: e.tokens,
        offsets,
        overflow: e.overflow,
      };
    });
    return options.padding ? this.padded(texts) : texts;
  }

  /** `texts` padded on the right to the longest one. */
  private padded(texts: TokenizedText[]): TokenizedText[] {
    const width = Math.max(0, ...texts.map((t) => t.ids.length));
    const grow = (a: Int32Array, fill: number) => {
      const out = new Int32Array(width).fill(fill);
      out.set(a);
      return out;
    };
    return texts.map((t) => ({
      ...t,
      ids: grow(t.ids, this.padId),
      typeIds: grow(t.typeIds, 0),
      attentionMask: grow(t.attentionMask, 0),
      tokens: [...t.tokens, ...Array(width - t.tokens.length).fill(this.idToToken(this.padId))],
      offsets: [...t.offsets, ...Array.from({ length: width - t.offsets.length }, () => [0, 0] as [number, number])],
    }));
  }

  /**
   * Tokenized texts as one batch of sequences, padded on the right to the longest with the
   * padding token.
   *
   * @internal
   */
  pad(texts: readonly TokenizedText[]): Sequences {
    const b = texts.length;
    const l = Math.max(1, ...texts.map((t) => t.ids.length));
    const sequences: Sequences = {
      batchSize: b,
      seqLen: l,
      tokens: new Int32Array(b * l).fill(this.padId),
      segments: new Int32Array(b * l),
      validLens: new Int32Array(b),
    };
    for (const [row, t] of texts.entries()) {
      sequences.tokens.set(t.ids, row * l);
      sequences.segments.set(t.typeIds, row * l);
      sequences.validLens[row] = t.ids.length;
    }
    return sequences;
  }
}
