/**
 * Sentence embeddings: {@link embed}, one vector a text, as sentence-transformers makes them.
 *
 * @module
 */
import { CheckpointError } from '../errors.js';
import type { BertModel } from '../model.js';
import { POOLING_MODES, type PoolingMode } from '../sentence-transformers.js';
import { Tensor } from '../tensor.js';
import { BOOLEAN, checked, integerFrom, oneOf } from '../training/options.js';
import type { EncodeOptions } from './encode.js';

/** How {@link embed} makes one vector a text; unset options take the model's sentence-transformers settings. */
export interface EmbedOptions extends EncodeOptions {
  /**
   * sentence-transformers' pooling mode (`'mean'` over the real tokens, `'cls'`, `'max'`,
   * `'mean_sqrt_len_tokens'`, `'weightedmean'`, `'lasttoken'`), or several, their vectors
   * side by side; default the folder's `Pooling` module's, else `'mean'`.
   */
  pooling?: PoolingMode | readonly PoolingMode[];
  /** Divide each vector by its L2 norm (then a dot product is the cosine similarity); default: whether the folder has a `Normalize` module, else `false`. */
  normalize?: boolean;
  /** Tokens a text keeps, special tokens included; default the folder's `max_seq_length`, else the model's positions (`config.maxPositions`, also the most it takes). */
  maxLength?: number;
  /** Texts a pass (sorted by length, so that little is padding); default 32. */
  batchSize?: number;
}

/**
 * One vector a text, `[texts.length, width]` in the order given (`width`: the hidden size once
 * a pooling mode), made as `SentenceTransformer(dir).encode()` makes it: for a
 * sentence-transformers folder its own pooling, normalisation, length and lower-casing
 * (options override them); for any other model the mean over each text's real tokens. A
 * folder with a module tsbert cannot run (a `Dense` layer, …) is a {@link CheckpointError}
 * naming it.
 * From the texts to the vectors in one native call: tokenized, sorted by length into passes of
 * `batchSize`, pooled; only the pooled vectors are kept, so long lists take little memory.
 *
 * @example
 * ```ts
 * const model = await BertModel.load('all-MiniLM-L6-v2', { inferenceOnly: true }); // faster, cannot train
 * const vectors = await embed(model, ['a crane is flying', 'a bird flies']); // normalised: MiniLM has a Normalize module
 * vectors.shape; // [2, 384]
 * ```
 */
export async function embed(model: BertModel, texts: readonly string[], options: EmbedOptions = {}): Promise<Tensor> {
  const settings = model.sentenceSettings;
  const { batchSize = 32, truncate = true } = options;
  const pooling = options.pooling ?? settings?.pooling ?? 'mean';
  const normalize = options.normalize ?? settings?.normalize ?? false;
  const maxLength = options.maxLength ?? Math.min(settings?.maxLength ?? Infinity, model.config.maxPositions);
  if (!Array.isArray(texts)) throw new TypeError(`texts: expected an array of strings, got ${String(texts)}`);
  if (texts.length === 0) throw new RangeError('texts: expected at least one text');
  const bad = texts.findIndex((t) => typeof t !== 'string');
  if (bad >= 0) throw new TypeError(`texts[${bad}]: expected a string, got ${String(texts[bad])}`);
  const modes: PoolingMode[] = Array.isArray(pooling) ? [...pooling] : [pooling as PoolingMode];
  if (modes.length === 0) throw new RangeError('pooling: expected at least one mode');
  for (const mode of modes) checked('pooling', oneOf(POOLING_MODES), mode);
  checked('batchSize', integerFrom(1), batchSize);
  if (batchSize > 0xffffffff) throw new RangeError(`batchSize: expected at most 2^32 - 1, got ${batchSize}`);
  checked('maxLength', integerFrom(1), maxLength);
  if (maxLength > model.config.maxPositions) {
    throw new RangeError(
      `maxLength: expected at most the model's ${model.config.maxPositions} positions, got ${maxLength}`,
    );
  }
  checked('normalize', BOOLEAN, normalize);
  checked('truncate', BOOLEAN, truncate);
  if (settings && settings.unsupported.length > 0) {
    throw new CheckpointError(
      `the model's modules.json has modules tsbert does not run: ${settings.unsupported.join(', ')} ` +
        "(it runs Transformer, Pooling and Normalize); the vectors would not be the model's",
    );
  }
  const inputs = settings?.lowercase ? texts.map((t) => t.toLowerCase()) : [...texts];
  const data = await model.pooledEmbeddings(inputs, { truncate, pooling: modes, normalize, batchSize, maxLength });
  return Tensor.fromNative({ data, shape: [texts.length, model.config.hidden * modes.length] });
}
