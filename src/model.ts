/**
 * {@link BertModel}: a BERT model (native) and its tokenizer — created, loaded, saved,
 * disposed, trained a step at a time, run forward. What people do with a model (encode texts,
 * embed them, fill masks, evaluate it) lives in the task modules (`src/tasks/`), each built on
 * these passes.
 *
 * @module
 */
import { join } from 'node:path';

import { CallQueue } from './call-queue.js';
import { type BertConfig, type ModelSizes, resolveConfig, type TaskKind } from './config.js';
import type { Batch, Sequences } from './data/batch.js';
import { checkSeed } from './data/random.js';
import { Vocab } from './data/vocab.js';
import { type Device, nativeDevices, type ResolvedDevice, resolveDevice } from './device.js';
import { CheckpointError, nativeErrorCode, TrainingDivergedError } from './errors.js';
import { type HubOptions, hubSnapshot, looksLikeHubId } from './hub.js';
import { memoryLimit } from './memory.js';
import {
  type ModelFiles,
  oneSaveAtATime,
  pathExists,
  readModelFolder,
  writeHuggingFaceFolder,
  writeModelFolder,
} from './model-folder.js';
import { type NativeBert, native, type TrainerOptionsJs } from './native.js';
import {
  copySentenceFiles,
  type PoolingMode,
  readSentenceSettings,
  type SentenceSettings,
} from './sentence-transformers.js';
import { Tensor } from './tensor.js';
import { Tokenizer } from './tokenizer.js';
import type { EvalMetrics } from './training/history.js';
import { checked, PROBABILITY } from './training/options.js';

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

/** A task head to put on a pretrained model (see {@link LoadOptions.head}). */
export interface NewHead {
  /** What it predicts. */
  kind: TaskKind;
  /** Its labels' names in id order (one a class; one for a regression's number). */
  labels: readonly string[];
}

/** A model's settings besides its weights: how it trains and where it runs. */
export interface LoadOptions extends Omit<CreateModelOptions, 'config'> {
  /** For a model by Hub id: where and how it is fetched (revision, offline, cache, token, endpoint, progress). */
  hub?: HubOptions;
  /**
   * The task head to fine-tune: a model without a task head gets this one (drawn from `seed`
   * as Hugging Face initialises a head: N(0, 0.02²) weights, zero biases; a pooler too, for a
   * sequence's head, where the model has none) and loses its pretraining heads; a model with
   * this head keeps it (its label names must be these); one with another head is a
   * `RangeError`.
   */
  head?: NewHead;
  /**
   * Every dropout of the model (hidden, attention, classifier) from now on, instead of the
   * config's (transformers' `from_pretrained(…, hidden_dropout_prob=…)`): `0` trains without
   * dropout. A number in [0, 1).
   */
  dropout?: number;
  /**
   * How the model computes when it encodes, embeds, classifies, tags or evaluates: `'f32'`
   * (the default) or `'q8'` — int8 weights (per output channel) and activations (per row) in
   * the encoder's dense layers, int32 sums by the CPU's dot-product instructions, the rest in
   * f32; faster, within about 1% of f32 (see {@link BertModel.quantize}). A q8 model cannot train.
   * Loaded as `'q8'`, the model never holds those layers in f32: each weight is quantised as
   * it is read, so it takes about a quarter of their memory, at its peak as after; it cannot be
   * saved either (a `RangeError` saying so): load it as `'f32'` to save or train it.
   */
  dtype?: ModelDtype;
  /**
   * Load the model to infer only (encode, embed, classify, tag, rerank, evaluate), as
   * onnxruntime does: in f32 (q8 is such a load already), on x86-64 with AVX-512F or AVX2 and
   * FMA the encoder's dense weights are packed into the panels of the CPU's product as they
   * are read and held so only, instead of as the parameters' `[out, in]` matrices: the same
   * memory and the same values, faster passes (BERT-base on 2 Zen 4 cores: 7% faster at a
   * batch of one sequence and 3.6% at 32 with AVX-512; with AVX2, 1.55× and 1.8× the dot
   * kernel an f32 load runs). Such a model cannot train, be saved, have its weights set or be
   * quantised (a `RangeError` saying so; load it with `dtype: 'q8'` for int8); elsewhere
   * (arm64) the option changes nothing. Default `false`.
   */
  inferenceOnly?: boolean;
}

/** How a model's inference passes compute (see {@link LoadOptions.dtype}). */
export type ModelDtype = 'f32' | 'q8';

/** The values {@link LoadOptions.dtype} takes. */
export const MODEL_DTYPES: readonly ModelDtype[] = ['f32', 'q8'];

/** The losses of one training step, computed before its update. */
export interface StepLosses {
  /** Weighted masked-language-model cross-entropy. */
  mlmLoss: number;
  /** Mean next-sentence-prediction cross-entropy. */
  nspLoss: number;
}

/** Everything {@link BertModel.forward} computes for a batch (dropout off). */
export interface ForwardOutputs extends StepLosses {
  /** `[B, L, hidden]` encoder output. */
  encoded: Tensor;
  /** `[B, P, vocabSize]` MLM logits at every prediction, padded ones included. */
  mlmLogits: Tensor;
  /** `[B, 2]` NSP logits (class 1 = isNext). */
  nspLogits: Tensor;
}

/** How a model is saved. */
export interface SaveOptions {
  /** `'tsbert'` (the default: checksummed, atomic) or `'huggingface'` (what `from_pretrained` loads). */
  format?: 'tsbert' | 'huggingface';
}

/** What the native model is made with: the options, checked here as JavaScript values. */
function nativeOptions(options: LoadOptions, device: ResolvedDevice): TrainerOptionsJs & { lr: number } {
  const seed = checkSeed(options.seed ?? 0);
  const optimizer = options.optimizer ?? 'adam';
  if (optimizer !== 'adam' && optimizer !== 'adamw') {
    throw new RangeError(`optimizer: expected 'adam' or 'adamw', got ${String(optimizer)}`);
  }
  return {
    seed,
    lr: options.lr ?? native().defaultAdam().lr,
    weightDecay: options.weightDecay,
    decoupledWeightDecay: optimizer === 'adamw',
    clipNorm: options.clipNorm,
    devices: nativeDevices(device),
    memoryLimit: options.memoryLimit ?? memoryLimit(),
  };
}

const TASK_KINDS: readonly TaskKind[] = [
  'single_label_classification',
  'multi_label_classification',
  'regression',
  'token_classification',
];

/** `head` checked: a known kind and at least one label name (a `TypeError` or `RangeError` naming the field otherwise). */
function checkHead(head: NewHead): NewHead {
  if (typeof head !== 'object' || head === null) throw new TypeError('head: expected { kind, labels }');
  if (!TASK_KINDS.includes(head.kind)) {
    throw new RangeError(`head.kind: expected one of ${TASK_KINDS.join(', ')}, got ${String(head.kind)}`);
  }
  if (!Array.isArray(head.labels) || !head.labels.every((l) => typeof l === 'string')) {
    throw new TypeError('head.labels: expected an array of label names');
  }
  if (head.labels.length === 0) throw new RangeError('head.labels: a head needs at least one label');
  if (head.kind === 'regression' && head.labels.length !== 1) {
    throw new RangeError(`head.labels: a regression head has one output here, not ${head.labels.length}`);
  }
  return head;
}

/** A BERT model (native, with its training state once it trains) and the tokenizer its token ids come from. */
export class BertModel {
  /** The tokenizer that maps text to this model's token ids. */
  readonly tokenizer: Tokenizer;
  /** The textbook vocabulary, for a model made from one (not for one loaded from Hugging Face). */
  readonly vocab: Vocab | undefined;
  /** The device the model runs on (several: trained data-parallel). */
  readonly device: ResolvedDevice;
  /** The model's sizes and variants. */
  readonly config: Readonly<BertConfig>;
  /**
   * The names of the task head's labels in id order (Hugging Face's `id2label`; `LABEL_0`, …
   * where the folder names none); `undefined` for a model without a task head.
   */
  readonly labels: readonly string[] | undefined;
  /**
   * How the sentence-transformers folder it was loaded from embeds (its `modules.json`,
   * pooling config and `sentence_bert_config.json`): {@link embed}'s defaults. `undefined` for
   * any other model.
   */
  readonly sentenceSettings: Readonly<SentenceSettings> | undefined;
  /** The sentence-transformers folder the model was loaded from, whose files a save copies. */
  readonly #sentenceSource: string | undefined;
  readonly #native: NativeBert;
  #lr: number;
  readonly #weightDecay: number;
  /**
   * The native calls, one at a time in the order asked for: concurrent calls could otherwise
   * take the model in any order and give other results than the same calls one after another.
   */
  readonly #calls = new CallQueue();
  /** The int8 kernel, once quantised. */
  #q8Kernel: string | undefined;

  private constructor(
    inner: NativeBert,
    words: { tokenizer: Tokenizer; vocab?: Vocab; labels?: string[] },
    device: ResolvedDevice,
    training: { lr: number; weightDecay?: number },
    sentence?: { source: string; settings: SentenceSettings },
  ) {
    this.sentenceSettings = sentence && Object.freeze({ ...sentence.settings });
    this.#sentenceSource = sentence?.source;
    this.#native = inner;
    this.#lr = training.lr;
    this.#weightDecay = training.weightDecay ?? 0;
    this.config = Object.freeze(inner.config as BertConfig);
    this.tokenizer = words.tokenizer;
    const task = this.config.task;
    const named = task && words.labels?.length === task.numLabels ? words.labels : undefined;
    this.labels = task && Object.freeze(named ?? Array.from({ length: task.numLabels }, (_, i) => `LABEL_${i}`));
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
    const device = resolveDevice(options.device);
    const settings = nativeOptions(options, device);
    return new BertModel(new (native().NativeBert)(config, settings), pair, device, settings);
  }

  /**
   * Loads a model by folder or by Hugging Face Hub id (`'sentence-transformers/all-MiniLM-L6-v2'`:
   * when no folder has that name, it is downloaded once into Hugging Face's cache, shared
   * with Python, and found there offline; `options.hub` and the `HF_*` variables say how: see
   * {@link HubOptions}; failures are a {@link HubError}). A folder: one saved by
   * {@link BertModel.save}, or a Hugging Face BERT
   * (`config.json` with `model_type: "bert"`, `model.safetensors`, `tokenizer.json` or
   * `vocab.txt`; with `bert.`-prefixed names or a bare encoder's, as sentence-transformers
   * saves one; missing heads are fine for encoding). A sentence-transformers folder's settings
   * (`modules.json`, the pooling config, `sentence_bert_config.json`) are read into
   * {@link BertModel.sentenceSettings}, the model found where its `Transformer` module is. A
   * missing folder or file, a checksum
   * mismatch, another architecture, weights or a tokenizer that do not fit the config give a
   * {@link CheckpointError}; sizes are checked before anything of their size is allocated.
   * `options` set how it trains from here (a fresh optimizer) and where it runs.
   */
  static async load(name: string, options: LoadOptions = {}): Promise<BertModel> {
    const dir = !(await pathExists(name)) && looksLikeHubId(name) ? await hubSnapshot(name, options.hub) : name;
    const sentence = await readSentenceSettings(dir);
    const files: ModelFiles = await readModelFolder(join(dir, sentence?.transformerPath ?? ''));
    const device = resolveDevice(options.device);
    const settings = nativeOptions(options, device);
    const head = options.head && checkHead(options.head);
    const dropout = options.dropout === undefined ? undefined : checked('dropout', PROBABILITY, options.dropout);
    const dtype = options.dtype ?? 'f32';
    if (!MODEL_DTYPES.includes(dtype)) {
      throw new RangeError(`dtype: expected ${MODEL_DTYPES.map((d) => `'${d}'`).join(' or ')}, got ${String(dtype)}`);
    }
    const inferenceOnly = options.inferenceOnly ?? false;
    if (typeof inferenceOnly !== 'boolean') {
      throw new TypeError(`inferenceOnly: expected true or false, got ${String(inferenceOnly)}`);
    }
    let inner: NativeBert;
    try {
      inner = await native().NativeBert.load(
        files.config,
        { configPath: files.configPath, weightsPath: files.weightsPath, tokenizerSize: files.tokenizer.vocabSize },
        settings,
        head && { kind: head.kind, numLabels: head.labels.length },
        dropout,
        dtype === 'q8' ? 'q8' : inferenceOnly ? 'infer' : 'f32',
      );
    } catch (cause) {
      if (nativeErrorCode(cause) !== 'TSBERT_CHECKPOINT') throw cause;
      throw new CheckpointError((cause as Error).message, { cause });
    }
    const kept = head && files.labels && files.labels.length === head.labels.length ? files.labels : undefined;
    if (head && kept && !kept.every((name, i) => name === head.labels[i] || /^LABEL_\d+$/.test(name))) {
      inner.dispose();
      throw new RangeError(
        `head: the model's head has the labels ${JSON.stringify(kept)}, not ${JSON.stringify(head.labels)}`,
      );
    }
    const labels = head ? { labels: [...head.labels] } : {};
    const model = new BertModel(
      inner,
      { ...files, ...labels },
      device,
      settings,
      sentence && { source: dir, settings: sentence },
    );
    if (dtype === 'q8') {
      try {
        await model.quantize();
      } catch (error) {
        model.dispose();
        throw error;
      }
    }
    return model;
  }

  /**
   * Saves the model to `dir` (created if needed). tsbert's format: the weights as
   * safetensors, the vocabulary or tokenizer and `config.json` as JSON, every file written to a
   * temporary name and renamed, `config.json` (which names the others with their checksums)
   * last: an interrupted save leaves the folder's previous model (or nothing) loadable. Saves
   * into one folder from this process run one at a time, in the order asked.
   * `{ format: 'huggingface' }`: `config.json`, `model.safetensors` and the tokenizer files that
   * transformers' `from_pretrained` loads; what Hugging Face's BERT cannot express (the textbook
   * architecture has no layer norm after the embeddings) is a {@link CheckpointError} saying so.
   */
  async save(dir: string, options: SaveOptions = {}): Promise<void> {
    const format = options.format ?? 'tsbert';
    if (format !== 'tsbert' && format !== 'huggingface') {
      throw new RangeError(`format: expected 'tsbert' or 'huggingface', got ${String(format)}`);
    }
    await oneSaveAtATime(dir, async () => {
      let saved: Awaited<ReturnType<NativeBert['save']>>;
      try {
        saved = await this.#calls.run(() => this.#native.save(format));
      } catch (cause) {
        if (format !== 'huggingface' || nativeErrorCode(cause) !== 'TSBERT_CHECKPOINT') throw cause;
        throw new CheckpointError(`cannot save in Hugging Face's format: ${(cause as Error).message}`, { cause });
      }
      const { weights, hfConfig } = saved;
      if (hfConfig) {
        const maxLength = this.config.maxPositions;
        await writeHuggingFaceFolder(dir, {
          hfConfig,
          weights,
          tokenizer: this.tokenizer,
          maxLength,
          labels: this.labels,
        });
      } else {
        const { config, tokenizer, vocab, labels } = this;
        await writeModelFolder(dir, { config, weights, tokenizer, vocab, labels });
      }
      if (this.#sentenceSource && this.sentenceSettings) {
        await copySentenceFiles(this.#sentenceSource, this.sentenceSettings, dir);
      }
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

  /** How the inference passes compute: `'q8'` after {@link BertModel.quantize}, else `'f32'`. */
  get dtype(): ModelDtype {
    return this.#q8Kernel === undefined ? 'f32' : 'q8';
  }

  /**
   * Switches the model's inference passes (encode, embed, classify, tag, rerank, evaluate) to
   * int8 products in the encoder's dense layers — weights quantised per output channel,
   * activations per row at each product, int32 sums by AVX-512 VNNI, AVX2 or arm64's `udot`
   * where the CPU has them (else a portable loop;
   * `TSBERT_Q8_KERNEL=portable|avx2|avx512-vnni|neon-dot` forces one), the rest in f32. The
   * weights themselves stay f32, and so does what {@link BertModel.save} writes (a model
   * loaded with `dtype: 'q8'` has no f32 copy of them instead: see {@link LoadOptions.dtype});
   * from now on a training step is a `RangeError`. Resolves to
   * the kernel's name; quantising again changes nothing. A `RangeError` for a model that is
   * not f32 on the CPU. Queued behind calls in flight.
   */
  async quantize(): Promise<string> {
    const kernel = await this.#calls.run(() => this.#native.quantize());
    this.#q8Kernel = kernel;
    return kernel;
  }

  /**
   * Bytes of memory the model's weights take (what transformers' `get_memory_footprint()`
   * reports, and what V8's garbage collector is told): its f32 parameters; loaded with
   * `dtype: 'q8'`, its int8 weights instead of the f32 ones they replace; and the copy of the
   * dense layers its inference pass keeps (int8 after {@link BertModel.quantize}; a transposed
   * f32 copy on a CPU with no dot kernel, arm64 among them). A fresh model counts its gradients
   * and Adam state as well. 0 once disposed.
   */
  get memoryFootprint(): number {
    return this.#native.memoryFootprint;
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

  /**
   * Sets the learning rate of the steps asked for from now on (those queued before keep theirs):
   * a positive number, as Adam takes it (a `RangeError` otherwise).
   */
  set learningRate(lr: number) {
    native().NativeBert.checkLr(lr);
    this.#lr = lr;
    // queued behind the calls in flight; a model disposed meanwhile fails its next call anyway
    if (this.#calls.busy) this.#calls.run(() => this.#native.setLr(lr)).catch(() => {});
    else this.#native.setLr(lr);
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
    let step = 0;
    try {
      return await this.#calls.run(() => {
        step = this.#native.stepsTaken + 1;
        return this.#native.trainStep(batch as Batch | Batch[]);
      });
    } catch (error) {
      if (nativeErrorCode(error) !== 'TSBERT_DIVERGED') throw error;
      throw new TrainingDivergedError(`${(error as Error).message}; ${this.#divergenceAdvice()}`, step, [], {
        cause: error,
      });
    }
  }

  /**
   * One training step of the task head (forward, its loss, backward, Adam) on `sequences`
   * (their `tokens`, `segments`, `validLens`) and their labels, as Hugging Face's task models
   * take them: an `Int32Array` of a class a sequence (single-label classification) or a class
   * a token, -100 where a token is not scored (token classification; -100 on all padding: the
   * step runs only each row's valid tokens through the dense layers); a `Float32Array` of
   * `batchSize × numLabels` 0/1 values (multi-label) or targets (regression). Given arrays of
   * batches and of their labels, their gradients are accumulated and applied once: the update
   * of one batch of all their rows. On several devices each takes a share of every batch's
   * rows. Resolves to the loss before the update (the mean over what it scores). Labels that
   * do not fit the head are a `TypeError` or `RangeError` naming them; a diverged step a
   * {@link TrainingDivergedError}, the weights unchanged.
   */
  async trainTaskStep(
    sequences: Sequences | readonly Sequences[],
    labels: Int32Array | Float32Array | readonly (Int32Array | Float32Array)[],
  ): Promise<number> {
    const task = this.config.task;
    if (!task) throw new RangeError('model: has no task head to train');
    const kinds = {
      single_label_classification: ['classes', Int32Array],
      token_classification: ['tokens', Int32Array],
      multi_label_classification: ['multi', Float32Array],
      regression: ['values', Float32Array],
    } as const;
    const [kind, type] = kinds[task.kind];
    const all = Array.isArray(labels) ? labels : [labels];
    if (!all.every((l) => l instanceof type)) {
      throw new TypeError(
        `labels: expected ${type === Int32Array ? 'an Int32Array' : 'a Float32Array'} for a ${task.kind} head`,
      );
    }
    let step = 0;
    try {
      return await this.#calls.run(() => {
        step = this.#native.stepsTaken + 1;
        return this.#native.trainTaskStep(sequences as Sequences, kind, labels as Int32Array);
      });
    } catch (error) {
      if (nativeErrorCode(error) !== 'TSBERT_DIVERGED') throw error;
      throw new TrainingDivergedError(`${(error as Error).message}; ${this.#divergenceAdvice()}`, step, [], {
        cause: error,
      });
    }
  }

  /** What to lower after a divergence: the learning rate, and the weight decay where it is large enough to blame. */
  #divergenceAdvice(): string {
    const lr = `the learning rate (it is ${this.#lr})`;
    return this.#weightDecay >= 1 ? `lower the weight decay (it is ${this.#weightDecay}) or ${lr}` : `lower ${lr}`;
  }

  /**
   * What resuming training needs besides the weights: Adam's moments and step count and the
   * dropout streams' states, as a safetensors file's bytes.
   */
  async saveOptimizerState(): Promise<Uint8Array> {
    return await this.#calls.run(() => this.#native.saveState());
  }

  /** Takes back {@link BertModel.saveOptimizerState}'s bytes; a {@link CheckpointError} (the model unchanged) if they are not this model's. */
  async loadOptimizerState(bytes: Uint8Array): Promise<void> {
    try {
      const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      await this.#calls.run(() => this.#native.loadState(buffer));
    } catch (cause) {
      if (nativeErrorCode(cause) !== 'TSBERT_CHECKPOINT') throw cause;
      throw new CheckpointError((cause as Error).message, { cause });
    }
  }

  /** The forward pass of a pretraining `batch`, dropout off, no update: encoder output, every MLM and NSP logit and both losses. */
  async forward(batch: Batch): Promise<ForwardOutputs> {
    const out = await this.#calls.run(() => this.#native.forward(batch));
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
   * The contextual embedding of every token of sequences of token ids, dropout off: a
   * `[B, L, hidden]` tensor (rows past a sequence's valid length are padding). A `TypeError` or
   * `RangeError` names the first invalid field. (A pass small enough runs on the JS thread,
   * where handing it to a worker thread and back would cost more than the pass.)
   */
  async encodeSequences(sequences: Sequences): Promise<Tensor> {
    const data = await this.#calls.run(() => this.#native.encode(sequences));
    return Tensor.fromNative({ data, shape: [sequences.batchSize, sequences.seqLen, this.config.hidden] });
  }

  /**
   * The task head's outputs, dropout off: `[batchSize, numLabels]` for a sequence's head (the
   * logits of a classifier, the numbers of a regression), `[batchSize, seqLen, numLabels]` for
   * a token classifier. A model without a task head is a `RangeError` saying so.
   */
  async taskLogits(sequences: Sequences): Promise<Tensor> {
    const [logits] = await this.taskLogitsOfPasses([sequences]);
    return logits;
  }

  /**
   * {@link BertModel.taskLogits} of several passes in one turn of the model's calls (no other
   * call on the model runs between them): a task over many inputs (`classify`, `tagTokens`)
   * gives what it gives alone, whatever else is asked of the model meanwhile.
   *
   * @internal
   */
  async taskLogitsOfPasses(passes: readonly Sequences[]): Promise<Tensor[]> {
    const task = this.config.task;
    if (!task)
      throw new RangeError(
        'model: has no task head (a Hugging Face BertForSequenceClassification or BertForTokenClassification has one)',
      );
    const perToken = task.kind === 'token_classification';
    const all = await this.#calls.run(async () => {
      const out: Float32Array[] = [];
      for (const sequences of passes) out.push(await this.#native.taskLogits(sequences));
      return out;
    });
    return all.map((data, i) => {
      const { batchSize, seqLen } = passes[i];
      return Tensor.fromNative({
        data,
        shape: perToken ? [batchSize, seqLen, task.numLabels] : [batchSize, task.numLabels],
      });
    });
  }

  /**
   * Held-out metrics of `batches` together, dropout off (the means over all their
   * predictions and rows), in one native call.
   *
   * @internal
   */
  async heldOutMetrics(batches: readonly Batch[]): Promise<EvalMetrics> {
    return (await this.#calls.run(() => this.#native.evaluate(batches as Batch[]))) as EvalMetrics;
  }

  /**
   * One vector a text, `texts.length × pooling.length × hidden` values in the order given,
   * from the texts in one native call (tokenized by the model's tokenizer, cut at `maxLength`
   * tokens, sorted by length into passes of `batchSize`, pooled).
   *
   * @internal
   */
  async pooledEmbeddings(
    texts: string[],
    options: { truncate: boolean; pooling: PoolingMode[]; normalize: boolean; batchSize: number; maxLength: number },
  ): Promise<Float32Array> {
    const tokenizer = this.tokenizer.nativeTokenizer();
    return await this.#calls.run(() => this.#native.embed(tokenizer, texts, options));
  }

  /**
   * The MLM logits, dropout off, at `positions` (pairs of row and position, flat) of
   * `sequences`: `positions.length / 2 × vocabSize` values.
   *
   * @internal
   */
  async mlmLogitsAt(sequences: Sequences, positions: Int32Array): Promise<Float32Array> {
    return await this.#calls.run(() => this.#native.maskedLogits(sequences, positions));
  }
}
