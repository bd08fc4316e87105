/**
 * Sentence embeddings: {@link embed}, one vector a text, as sentence-transformers makes them.
 *
 * @module
 */
import type { BertModel } from '../model.js';
import { Tensor } from '../tensor.js';
import { BOOLEAN, checked, integerFrom, oneOf } from '../training/options.js';
import type { EncodeOptions } from './encode.js';

/** How {@link embed} makes one vector a text. */
export interface EmbedOptions extends EncodeOptions {
  /** `'mean'` over the real tokens (sentence-transformers' recipe, the default) or the `'cls'` token's state. */
  pooling?: 'mean' | 'cls';
  /** Divide each vector by its L2 norm (then a dot product is the cosine similarity); default `false`. */
  normalize?: boolean;
  /** Texts a pass (sorted by length, so that little is padding); default 32. */
  batchSize?: number;
}

/**
 * One vector a text, `[texts.length, hidden]` in the order given: sentence-transformers'
 * recipe by default (the mean over each text's real tokens, optionally L2-normalised). From
 * the texts to the vectors in one native call: tokenized, sorted by length into passes of
 * `batchSize`, pooled; only the pooled vectors are kept, so long lists take little memory.
 *
 * @example
 * ```ts
 * const model = await BertModel.load('all-MiniLM-L6-v2');
 * const vectors = await embed(model, ['a crane is flying', 'a bird flies'], { normalize: true });
 * vectors.shape; // [2, 384]
 * ```
 */
export async function embed(model: BertModel, texts: readonly string[], options: EmbedOptions = {}): Promise<Tensor> {
  const { pooling = 'mean', normalize = false, batchSize = 32, truncate = true } = options;
  if (!Array.isArray(texts)) throw new TypeError(`texts: expected an array of strings, got ${String(texts)}`);
  if (texts.length === 0) throw new RangeError('texts: expected at least one text');
  const bad = texts.findIndex((t) => typeof t !== 'string');
  if (bad >= 0) throw new TypeError(`texts[${bad}]: expected a string, got ${String(texts[bad])}`);
  checked('pooling', oneOf(['mean', 'cls'] as const), pooling);
  checked('batchSize', integerFrom(1), batchSize);
  if (batchSize > 0xffffffff) throw new RangeError(`batchSize: expected at most 2^32 - 1, got ${batchSize}`);
  checked('normalize', BOOLEAN, normalize);
  checked('truncate', BOOLEAN, truncate);
  const data = await model.pooledEmbeddings([...texts], { truncate, pooling, normalize, batchSize });
  return Tensor.fromNative({ data, shape: [texts.length, model.config.hidden] });
}
