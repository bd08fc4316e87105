/**
 * {@link BertModel}: a BERT model (native, with its Adam state) and its vocabulary. Training
 * steps, evaluation, encoding and saving all go through it.
 *
 * @module
 */

import { readModelFolder, writeModelFolder } from './checkpoint.js';
import { type BertConfig, type ModelSizes, resolveConfig } from './config.js';
import type { Batch, Sequences } from './data/batch.js';
import { checkSeed } from './data/random.js';
import type { Vocab } from './data/vocab.js';
import { type Device, nativeDevices, type ResolvedDevice, resolveDevice } from './device.js';
import { type Encoding, frameSentences, type SentenceInput } from './encode.js';
import { CheckpointError, nativeErrorCode, TrainingDivergedError } from './errors.js';
import { memoryLimit } from './memory.js';
import { type NativeBert, native } from './native.js';
import { Tensor } from './tensor.js';

/** How a new model is made. */
export interface CreateModelOptions {
  /** Sizes; missing ones take the textbook values (`TEXTBOOK_SIZES`). */
  config?: Partial<ModelSizes>;
  /** Seeds the initial weights and dropout (an integer in [0, 2^32)); default 0. */
  seed?: number;
  /** Adam's learning rate; default the textbook's, 0.01. */
  lr?: number;
  /** L2 weight decay added to gradients; default 0. */
  weightDecay?: number;
  /** Where the model runs; default `'auto'`. */
  device?: Device;
  /**
   * Bytes of host memory the model (with its gradients and Adam state) and a pass over a
   * batch may take; sizes that would need more are a `RangeError` before anything is
   * allocated. Default: `TSBERT_MEMORY_LIMIT` if set, else this machine's memory.
   */
  memoryLimit?: number;
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

/** A BERT model (native, with its Adam state) and the vocabulary its token ids come from. */
export class BertModel {
  /** The vocabulary that maps words to this model's token ids. */
  readonly vocab: Vocab;
  /** The device the model runs on (several: trained data-parallel). */
  readonly device: ResolvedDevice;
  /** The model's sizes. */
  readonly config: Readonly<BertConfig>;
  readonly #native: NativeBert;
  readonly #lr: number;

  private constructor(config: BertConfig, vocab: Vocab, device: ResolvedDevice, options: CreateModelOptions = {}) {
    const seed = checkSeed(options.seed ?? 0);
    this.#lr = options.lr ?? native().defaultAdam().lr;
    this.#native = new (native().NativeBert)(config, {
      seed,
      lr: this.#lr,
      weightDecay: options.weightDecay,
      devices: nativeDevices(device),
      memoryLimit: options.memoryLimit ?? memoryLimit(),
    });
    this.config = Object.freeze(this.#native.config);
    this.vocab = vocab;
    this.device = device;
  }

  /**
   * A freshly initialised model for `vocab`; the same options give bit-identical weights. A
   * `RangeError` names a bad size or option.
   */
  static create(vocab: Vocab, options: CreateModelOptions = {}): BertModel {
    const config = resolveConfig(options.config ?? {}, vocab.size);
    return new BertModel(config, vocab, resolveDevice(options.device), options);
  }

  /**
   * Loads a model saved by {@link BertModel.save}. A missing folder or file, a checksum
   * mismatch, or weights that do not fit the config give a {@link CheckpointError}.
   */
  static async load(dir: string, options: Pick<CreateModelOptions, 'device' | 'memoryLimit'> = {}): Promise<BertModel> {
    const files = await readModelFolder(dir);
    const device = resolveDevice(options.device);
    let model: BertModel;
    try {
      // the weights' names and shapes against the config, before anything of that size exists
      native().checkWeights(files.config, files.weights);
      model = new BertModel(files.config, files.vocab, device, options);
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
      await model.#native.loadWeights(files.weights);
    } catch (cause) {
      model.dispose();
      throw new CheckpointError(`weights file '${files.weightsPath}': ${(cause as Error).message}`, { cause });
    }
    return model;
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

  /**
   * Saves the model to `dir` (created if needed): the weights as safetensors, the vocabulary
   * and `config.json` as JSON. Every file is written to a temporary name and renamed, and
   * `config.json`, which names the others with their checksums, is replaced last: an
   * interrupted save leaves the folder's previous model (or nothing) loadable.
   */
  async save(dir: string): Promise<void> {
    await writeModelFolder(dir, { config: this.config, weights: await this.#native.saveWeights(), vocab: this.vocab });
  }

  /** Number of trainable scalars. */
  get paramCount(): number {
    return this.#native.paramCount;
  }

  /**
   * One training step off the JavaScript thread: forward, MLM + NSP loss, backward, Adam.
   * Resolves to the losses before the update; rejects with a `TypeError` or `RangeError`
   * naming the first invalid field of `batch`, or with a {@link TrainingDivergedError} (the
   * update not applied) when a loss or gradient is not finite.
   */
  async trainStep(batch: Batch): Promise<StepLosses> {
    try {
      return await this.#native.trainStep(batch);
    } catch (error) {
      if (nativeErrorCode(error) !== 'TSBERT_DIVERGED') throw error;
      const advice = `lower the learning rate (it is ${this.#lr})`;
      throw new TrainingDivergedError(`${(error as Error).message}; ${advice}`, this.#native.stepsTaken + 1, [], {
        cause: error,
      });
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
   * The contextual embedding of every token of `tokensA` (and `tokensB` as the second
   * sentence), dropout off: `<cls>` and `<sep>` are added, words map through the vocabulary
   * (unknown ones to `<unk>`). Too long an input is a `RangeError` naming the model's limit.
   */
  async encode(tokensA: readonly string[], tokensB?: readonly string[]): Promise<Encoding> {
    const [encoding] = await this.encodeBatch([[tokensA, tokensB]]);
    return encoding;
  }

  /** Many sentences or sentence pairs in one native call (padded to the longest); each result is what {@link BertModel.encode} gives. */
  async encodeBatch(inputs: readonly SentenceInput[]): Promise<Encoding[]> {
    const { sequences, encodings } = frameSentences(inputs, this.vocab, this.config.maxPositions);
    return encodings((await this.encodeSequences(sequences)).data, this.config.hidden);
  }

  /**
   * The contextual embedding of every token of sequences of token ids, dropout off: a
   * `[B, L, hidden]` tensor (rows past a sequence's valid length are padding). A `TypeError` or
   * `RangeError` names the first invalid field.
   */
  async encodeSequences(sequences: Sequences): Promise<Tensor> {
    const data = await this.#native.encode(sequences);
    return Tensor.fromNative({ data, shape: [sequences.batchSize, sequences.seqLen, this.config.hidden] });
  }
}
