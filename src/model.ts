/**
 * {@link BertModel}: a BERT model (native, with its Adam state) and its tokenizer. Training
 * steps, evaluation, encoding, sentence embeddings, mask filling, loading and saving (tsbert's
 * folders and Hugging Face's) all go through it.
 *
 * @module
 */
import { readModelFolder, writeHuggingFaceFolder, writeModelFolder } from './checkpoint.js';
import { type BertConfig, type ModelSizes, resolveConfig } from './config.js';
import type { Batch, Sequences } from './data/batch.js';
import { checkSeed } from './data/random.js';
import { Vocab } from './data/vocab.js';
import { type Device, nativeDevices, type ResolvedDevice, resolveDevice } from './device.js';
import { Encoding, type SentenceInput } from './encode.js';
import { CheckpointError, nativeErrorCode, TrainingDivergedError } from './errors.js';
import { memoryLimit } from './memory.js';
import { type NativeBert, native } from './native.js';
import { Tensor } from './tensor.js';
import { type TextInput, Tokenizer } from './tokenizer.js';

/**
 * The largest encode run on the JS thread, in multiply-adds (~2 ms on one core): the
 * textbook model on one sequence of 64 tokens is 17 M.
 */
const INLINE_PASS_MACS = 32e6;

/** How a new model is made. */
export interface CreateModelOptions {
  /** Sizes and variants; missing ones take the textbook values (`TEXTBOOK_SIZES`). */
  config?: Partial<ModelSizes>;
  /** Seeds the initial weights and dropout (an integer in [0, 2^32)); default 0. */
  seed?: number;
  /** Adam's learning rate; default the textbook's, 0.01. */
  lr?: number;
  /**
   * `'adam'` (the textbook's: weight decay, if any, added to the gradients as L2) or `'adamw'`
   * (decoupled weight decay, biases and layer norms spared: BERT's recipe); default `'adam'`.
   */
  optimizer?: 'adam' | 'adamw';
  /** Weight decay (see `optimizer`); default 0. */
  weightDecay?: number;
  /** Scale each step's gradients down to at most this global L2 norm; default: no clipping. */
  clipNorm?: number;
  /** Where the model runs; default `'auto'`. */
  device?: Device;
  /**
   * Bytes of host memory the model (with its gradients and Adam state) and a pass over a
   * batch may take; sizes that would need more are a `RangeError` before anything is
   * allocated. Default: `TSBERT_MEMORY_LIMIT` if set, else this machine's memory.
   */
  memoryLimit?: number;
}

/** A model's settings besides its weights: how it trains and where it runs. */
export type LoadOptions = Omit<CreateModelOptions, 'config'>;

/** Held-out metrics of a batch as sums (see {@link BertModel.evaluateMetrics}). */
export interface MetricSums {
  /** Σ MLM cross-entropy over the real predictions. */
  mlmLossSum: number;
  /** Real predictions. */
  mlmWeight: number;
  /** Predictions whose most probable token is the original one. */
  mlmCorrect: number;
  /** Σ NSP cross-entropy over the rows. */
  nspLossSum: number;
  /** Rows whose NSP prediction is right. */
  nspCorrect: number;
  /** Rows. */
  rows: number;
}

/** The losses of one training step, computed before its update. */
export interface StepLosses {
  /** Weighted masked-language-model cross-entropy. */
  mlmLoss: number;
  /** Mean next-sentence-prediction cross-entropy. */
  nspLoss: number;
}

/** Everything {@link BertModel.evaluate} computes for a batch (dropout off). */
export interface Evaluation extends StepLosses {
  /** `[B, L, hidden]` encoder output. */
  encoded: Tensor;
  /** `[B, P, vocabSize]` MLM logits at every prediction, padded ones included. */
  mlmLogits: Tensor;
  /** `[B, 2]` NSP logits (class 1 = isNext). */
  nspLogits: Tensor;
}

/** How texts are encoded. */
export interface EncodeOptions {
  /** Cut inputs longer than the model's positions (as Hugging Face does); `false` refuses them with a `RangeError`. Default `true`. */
  truncate?: boolean;
}

/** How {@link BertModel.embed} makes one vector a text. */
export interface EmbedOptions extends EncodeOptions {
  /** `'mean'` over the real tokens (sentence-transformers' recipe, the default) or the `'cls'` token's state. */
  pooling?: 'mean' | 'cls';
  /** Divide each vector by its L2 norm (then a dot product is the cosine similarity); default `false`. */
  normalize?: boolean;
  /** Texts a native call (sorted by length, so that little is padding); default 32. */
  batchSize?: number;
}

/** One candidate for a masked token. */
export interface MaskPrediction {
  /** The token. */
  token: string;
  /** Its id. */
  id: number;
  /** Its probability (softmax over the vocabulary). */
  probability: number;
}

/** The candidates of one mask token of the text, most probable first. */
export interface MaskFill {
  /** Where the mask is among the tokens (0 is `[CLS]`). */
  position: number;
  /** The `topK` most probable tokens. */
  predictions: MaskPrediction[];
}

/** How a model is saved. */
export interface SaveOptions {
  /** `'tsbert'` (the default: checksummed, atomic) or `'huggingface'` (what `from_pretrained` loads). */
  format?: 'tsbert' | 'huggingface';
}

/** A BERT model (native, with its Adam state) and the tokenizer its token ids come from. */
export class BertModel {
  /** The tokenizer that maps text to this model's token ids. */
  readonly tokenizer: Tokenizer;
  /** The textbook vocabulary, for a model made from one (not for one loaded from Hugging Face). */
  readonly vocab: Vocab | undefined;
  /** The device the model runs on (several: trained data-parallel). */
  readonly device: ResolvedDevice;
  /** The model's sizes and variants. */
  readonly config: Readonly<BertConfig>;
  readonly #native: NativeBert;
  #lr: number;

  private constructor(
    config: BertConfig,
    words: { tokenizer: Tokenizer; vocab?: Vocab },
    device: ResolvedDevice,
    options: CreateModelOptions = {},
  ) {
    const seed = checkSeed(options.seed ?? 0);
    const optimizer = options.optimizer ?? 'adam';
    if (optimizer !== 'adam' && optimizer !== 'adamw') {
      throw new RangeError(`optimizer: expected 'adam' or 'adamw', got ${String(optimizer)}`);
    }
    this.#lr = options.lr ?? native().defaultAdam().lr;
    this.#native = new (native().NativeBert)(config, {
      seed,
      lr: this.#lr,
      weightDecay: options.weightDecay,
      decoupledWeightDecay: optimizer === 'adamw',
      clipNorm: options.clipNorm,
      devices: nativeDevices(device),
      memoryLimit: options.memoryLimit ?? memoryLimit(),
    });
    this.config = Object.freeze(this.#native.config as BertConfig);
    this.tokenizer = words.tokenizer;
    this.vocab = words.vocab;
    this.device = device;
  }

  /**
   * A freshly initialised model for a textbook `vocab` or any `tokenizer` (its vocabulary size
   * sets the embeddings'); the same options give bit-identical weights. A `RangeError` names a
   * bad size or option.
   */
  static create(words: Vocab | Tokenizer, options: CreateModelOptions = {}): BertModel {
    const pair =
      words instanceof Vocab ? { vocab: words, tokenizer: Tokenizer.fromVocab(words) } : { tokenizer: words };
    const config = resolveConfig(options.config ?? {}, pair.tokenizer.vocabSize);
    return new BertModel(config, pair, resolveDevice(options.device), options);
  }

  /**
   * Loads a model folder: one saved by {@link BertModel.save}, or a Hugging Face BERT
   * (`config.json` with `model_type: "bert"`, `model.safetensors`, `tokenizer.json` or
   * `vocab.txt`; with `bert.`-prefixed names or a bare encoder's, as sentence-transformers
   * saves one; missing heads are fine for encoding). A missing folder or file, a checksum
   * mismatch, another architecture, weights or a tokenizer that do not fit the config give a
   * {@link CheckpointError}; sizes are checked before anything of their size is allocated.
   * `options` set how it trains from here (a fresh optimizer) and where it runs.
   */
  static async load(dir: string, options: LoadOptions = {}): Promise<BertModel> {
    const files = await readModelFolder(dir);
    const device = resolveDevice(options.device);
    let model: BertModel;
    try {
      // the weights' names and shapes against the config, before anything of that size exists
      native().checkWeights(files.config, files.weights, files.format);
      model = new BertModel(files.config, files, device, options);
    } catch (cause) {
      if (cause instanceof RangeError || cause instanceof TypeError) {
        throw new CheckpointError(`'${files.configPath}': ${cause.message}`, { cause });
      }
      if (nativeErrorCode(cause) === 'TSBERT_CHECKPOINT') {
        throw new CheckpointError(`weights file '${files.weightsPath}': ${(cause as Error).message}`, { cause });
      }
      throw cause;
    }
    try {
      await model.#native.loadWeights(files.weights, files.format);
    } catch (cause) {
      model.dispose();
      throw new CheckpointError(`weights file '${files.weightsPath}': ${(cause as Error).message}`, { cause });
    }
    return model;
  }

  /**
   * Saves the model to `dir` (created if needed). tsbert's format: the weights as
   * safetensors, the vocabulary or tokenizer and `config.json` as JSON, every file written to a
   * temporary name and renamed, `config.json` (which names the others with their checksums)
   * last: an interrupted save leaves the folder's previous model (or nothing) loadable.
   * `{ format: 'huggingface' }`: `config.json`, `model.safetensors` and the tokenizer files that
   * transformers' `from_pretrained` loads; what Hugging Face's BERT cannot express (the textbook
   * architecture has no layer norm after the embeddings) is a {@link CheckpointError} saying so.
   */
  async save(dir: string, options: SaveOptions = {}): Promise<void> {
    const format = options.format ?? 'tsbert';
    if (format !== 'tsbert' && format !== 'huggingface') {
      throw new RangeError(`format: expected 'tsbert' or 'huggingface', got ${String(format)}`);
    }
    if (format === 'tsbert') {
      const weights = await this.#native.saveWeights('tsbert');
      await writeModelFolder(dir, { config: this.config, weights, tokenizer: this.tokenizer, vocab: this.vocab });
      return;
    }
    let hfConfig: Record<string, unknown>;
    try {
      hfConfig = native().hfExportConfig(this.config) as Record<string, unknown>;
    } catch (cause) {
      throw new CheckpointError(`cannot save in Hugging Face's format: ${(cause as Error).message}`, { cause });
    }
    const weights = await this.#native.saveWeights('huggingface');
    await writeHuggingFaceFolder(dir, {
      hfConfig,
      weights,
      tokenizer: this.tokenizer,
      maxLength: this.config.maxPositions,
    });
  }

  /**
   * Frees the model's native memory now rather than when the garbage collector collects the
   * model (which it does on its own: the memory is reported to it). Every later call on the
   * model fails; disposing twice does nothing. A call in flight must be awaited first. Also
   * `using model = …` (`Symbol.dispose`).
   */
  dispose(): void {
    this.#native.dispose();
  }

  /** {@link BertModel.dispose}, for `using`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Number of trainable scalars. */
  get paramCount(): number {
    return this.#native.paramCount;
  }

  /** Optimizer steps taken (restored with {@link BertModel.loadOptimizerState}). */
  get stepsTaken(): number {
    return this.#native.stepsTaken;
  }

  /** The learning rate of the next steps (a schedule sets it before each). */
  get learningRate(): number {
    return this.#lr;
  }

  /** Sets the learning rate of the next steps (a number ≥ 0; a `RangeError` otherwise). */
  set learningRate(lr: number) {
    if (!Number.isFinite(lr) || lr < 0) throw new RangeError(`learningRate: expected a number ≥ 0, got ${String(lr)}`);
    this.#native.setLr(lr);
    this.#lr = lr;
  }

  /**
   * One training step off the JavaScript thread: forward, MLM + NSP loss, backward, Adam.
   * Given several batches, their gradients are accumulated and applied once: the same update
   * as one batch of all their rows (gradient accumulation). Resolves to the losses before the
   * update; rejects with a `TypeError` or `RangeError` naming the first invalid field of
   * `batch`, or with a {@link TrainingDivergedError} (the update not applied) when a loss or
   * gradient is not finite.
   */
  async trainStep(batch: Batch | readonly Batch[]): Promise<StepLosses> {
    try {
      return await this.#native.trainStep(batch as Batch | Batch[]);
    } catch (error) {
      if (nativeErrorCode(error) !== 'TSBERT_DIVERGED') throw error;
      const advice = `lower the learning rate (it is ${this.#lr})`;
      throw new TrainingDivergedError(`${(error as Error).message}; ${advice}`, this.#native.stepsTaken + 1, [], {
        cause: error,
      });
    }
  }

  /**
   * Held-out metrics of `batch`, dropout off, no update, as sums (so that batches add up): MLM
   * loss and correct predictions over the real predictions, NSP loss and correct rows.
   */
  async evaluateMetrics(batch: Batch): Promise<MetricSums> {
    return await this.#native.evaluateMetrics(batch);
  }

  /**
   * What resuming training needs besides the weights: Adam's moments and step count and the
   * dropout streams' states, as a safetensors file's bytes.
   */
  async saveOptimizerState(): Promise<Uint8Array> {
    return await this.#native.saveState();
  }

  /** Takes back {@link BertModel.saveOptimizerState}'s bytes; a {@link CheckpointError} (the model unchanged) if they are not this model's. */
  async loadOptimizerState(bytes: Uint8Array): Promise<void> {
    try {
      await this.#native.loadState(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (cause) {
      if (nativeErrorCode(cause) !== 'TSBERT_CHECKPOINT') throw cause;
      throw new CheckpointError(`optimizer state: ${(cause as Error).message}`, { cause });
    }
  }

  /** Encoder output, every MLM and NSP logit and both losses of `batch`, dropout off, no update. */
  async evaluate(batch: Batch): Promise<Evaluation> {
    const out = await this.#native.evaluate(batch);
    const { batchSize: b, seqLen: l, numPreds: p } = batch;
    return {
      encoded: Tensor.fromNative({ data: out.encoded, shape: [b, l, this.config.hidden] }),
      mlmLogits: Tensor.fromNative({ data: out.mlmLogits, shape: [b, p, this.config.vocabSize] }),
      nspLogits: Tensor.fromNative({ data: out.nspLogits, shape: [b, 2] }),
      mlmLoss: out.mlmLoss,
      nspLoss: out.nspLoss,
    };
  }

  /**
   * The contextual embedding of every token of `a` (and `b` as the second text), dropout off:
   * raw text or words, tokenized by the model's tokenizer, `<cls>` and `<sep>` added. Longer
   * than the model's positions, the input is cut, or with `{ truncate: false }` refused.
   */
  async encode(a: TextInput, b?: TextInput, options: EncodeOptions = {}): Promise<Encoding> {
    const [encoding] = await this.encodeBatch([[a, b]], options);
    return encoding;
  }

  /** Many texts or text pairs in one native call (padded to the longest); each result is what {@link BertModel.encode} gives. */
  async encodeBatch(inputs: readonly SentenceInput[], options: EncodeOptions = {}): Promise<Encoding[]> {
    if (!Array.isArray(inputs) || inputs.length === 0) throw new RangeError('inputs: expected at least one text');
    inputs.forEach((input, i) => {
      if (!Array.isArray(input)) throw new TypeError(`inputs[${i}]: expected [a] or [a, b], got ${String(input)}`);
    });
    const texts = this.tokenize(inputs, options);
    const { data, shape } = await this.encodeSequences(this.tokenizer.pad(texts));
    const [, l, hidden] = shape;
    return texts.map(
      (t, row) => new Encoding(t, hidden, data.slice(row * l * hidden, (row * l + t.ids.length) * hidden)),
    );
  }

  /**
   * Whether an encode of `sequences` is so small (on the CPU, at most {@link INLINE_PASS_MACS}
   * multiply-adds) that it runs on the JS thread: handing it to a worker thread and back would
   * cost more than the pass.
   */
  #inlinePass({ batchSize, seqLen }: Sequences): boolean {
    if (this.device !== 'cpu') return false;
    const { hidden, ffnHidden, layers } = this.config;
    const tokens = batchSize * seqLen;
    return tokens * layers * (4 * hidden * hidden + 2 * hidden * ffnHidden + seqLen * hidden) <= INLINE_PASS_MACS;
  }

  /**
   * The contextual embedding of every token of sequences of token ids, dropout off: a
   * `[B, L, hidden]` tensor (rows past a sequence's valid length are padding). A `TypeError` or
   * `RangeError` names the first invalid field.
   */
  async encodeSequences(sequences: Sequences): Promise<Tensor> {
    const data = this.#inlinePass(sequences) ? this.#native.encodeNow(sequences) : await this.#native.encode(sequences);
    return Tensor.fromNative({ data, shape: [sequences.batchSize, sequences.seqLen, this.config.hidden] });
  }

  /**
   * One vector a text: `[texts.length, hidden]`, in the order given. sentence-transformers'
   * recipe by default (the mean over each text's real tokens); the texts are sorted by length
   * into batches, and only the pooled vectors are kept, so long lists take little memory.
   */
  async embed(texts: readonly string[], options: EmbedOptions = {}): Promise<Tensor> {
    const { pooling = 'mean', normalize = false, batchSize = 32 } = options;
    if (!Array.isArray(texts) || texts.length === 0) throw new RangeError('texts: expected at least one text');
    const bad = texts.findIndex((t) => typeof t !== 'string');
    if (bad >= 0) throw new TypeError(`texts[${bad}]: expected a string, got ${String(texts[bad])}`);
    if (pooling !== 'mean' && pooling !== 'cls')
      throw new RangeError(`pooling: expected 'mean' or 'cls', got ${String(pooling)}`);
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new RangeError(`batchSize: expected a positive integer, got ${String(batchSize)}`);
    const tokenized = this.tokenize(
      texts.map((t) => [t] as const),
      options,
    );
    const order = tokenized.map((_, i) => i).sort((x, y) => tokenized[x].ids.length - tokenized[y].ids.length);
    const hidden = this.config.hidden;
    const out = new Float32Array(texts.length * hidden);
    for (let start = 0; start < order.length; start += batchSize) {
      const rows = order.slice(start, start + batchSize);
      const pooled = await this.#native.encodePooled(
        this.tokenizer.pad(rows.map((i) => tokenized[i])),
        pooling,
        normalize,
      );
      for (const [k, i] of rows.entries()) out.set(pooled.subarray(k * hidden, (k + 1) * hidden), i * hidden);
    }
    return Tensor.fromNative({ data: out, shape: [texts.length, hidden] });
  }

  /**
   * The most probable tokens for every mask token (`[MASK]`, or `<mask>` in a textbook
   * vocabulary) of `text`. A text without one, or a model without an MLM head, is an error
   * saying so.
   */
  async fillMask(text: string, options: { topK?: number } = {}): Promise<MaskFill[]> {
    const { topK = 5 } = options;
    if (typeof text !== 'string') throw new TypeError(`text: expected a string, got ${String(text)}`);
    if (!Number.isInteger(topK) || topK < 1)
      throw new RangeError(`topK: expected a positive integer, got ${String(topK)}`);
    const mask = this.tokenizer.maskToken;
    if (mask === undefined) throw new RangeError('model: its tokenizer has no mask token');
    const [t] = this.tokenize([[text]], {});
    const maskId = this.tokenizer.tokenToId(mask);
    const positions = Array.from(t.ids.keys()).filter((i) => t.ids[i] === maskId);
    if (positions.length === 0) throw new RangeError(`text: has no ${mask} token to fill`);
    const pairs = Int32Array.from(positions.flatMap((p) => [0, p]));
    const logits = await this.#native.maskedLogits(this.tokenizer.pad([t]), pairs);
    const v = this.config.vocabSize;
    return positions.map((position, k) => {
      const row = logits.subarray(k * v, (k + 1) * v);
      const top = row.reduce((m, x) => Math.max(m, x), Number.NEGATIVE_INFINITY);
      const total = row.reduce((s, x) => s + Math.exp(x - top), 0);
      const best = Array.from(row.keys())
        .sort((x, y) => row[y] - row[x])
        .slice(0, topK);
      return {
        position,
        predictions: best.map((id) => ({
          token: this.tokenizer.idToToken(id) ?? `[${id}]`,
          id,
          probability: Math.exp(row[id] - top) / total,
        })),
      };
    });
  }

  /** Tokenizes for this model: cut to its positions unless `truncate` is `false`. */
  private tokenize(inputs: readonly SentenceInput[], options: EncodeOptions) {
    return this.tokenizer.encodeBatch(inputs, { maxLength: this.config.maxPositions, truncate: options.truncate });
  }
}
