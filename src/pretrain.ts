/**
 * {@link pretrain}: the textbook's BERT pretraining loop, in TypeScript over the native step.
 *
 * @module
 */
import { type ModelSizes, resolveConfig, TEXTBOOK_SIZES } from './config.js';
import type { Batch } from './data/batch.js';
import { type CorpusSource, DATA_DEFAULTS, PretrainingDataset, RESERVED_TOKENS } from './data/index.js';
import { paddedPredictions } from './data/padding.js';
import type { Vocab } from './data/vocab.js';
import { type Device, deviceLabel } from './device.js';
import { TrainingDivergedError } from './errors.js';
import { memoryLimit } from './memory.js';
import { BertModel } from './model.js';
import { native } from './native.js';

/** The textbook's pretraining run: the defaults of {@link pretrain} and of `tsbert pretrain`. */
export const PRETRAIN_DEFAULTS = Object.freeze({
  ...DATA_DEFAULTS,
  /** Sentence pairs a step. */
  batchSize: 512,
  /** Training steps. */
  steps: 50,
  /** Adam's learning rate (the native core's default). */
  lr: native().defaultAdam().lr,
  /** Where to train. */
  device: 'auto' as const,
});

/** Options of {@link pretrain}; every one but `data` defaults to {@link PRETRAIN_DEFAULTS}. */
export interface PretrainOptions {
  /** A WikiText-format file, a folder holding `wiki.train.tokens`, or paragraphs. */
  data: CorpusSource;
  /** Sentence pairs a step. */
  batchSize?: number;
  /** Tokens per pair, `<cls>` and `<sep>`s included. */
  maxLen?: number;
  /** Training steps. */
  steps?: number;
  /** Model sizes; default the textbook's (`TEXTBOOK_SIZES`: hidden 128, 2 layers, 2 heads, …). */
  config?: Partial<ModelSizes>;
  /** Adam's learning rate. */
  lr?: number;
  /** Seeds the data, the weights and dropout. */
  seed?: number;
  /** Least count of a word to enter the vocabulary. */
  minFreq?: number;
  /** Where to train. */
  device?: Device;
  /** Bytes of host memory the model and a step may take (see `CreateModelOptions.memoryLimit`). */
  memoryLimit?: number;
  /** Called after every step with its record. */
  onStep?: (record: StepRecord) => void;
  /** Stops training after the step in flight; the result then has `summary.aborted`. */
  signal?: AbortSignal;
}

/** What one training step reports. */
export interface StepRecord {
  /** 1-based step number. */
  step: number;
  /** Weighted masked-language-model loss, before the step's update. */
  mlmLoss: number;
  /** Next-sentence-prediction loss, before the step's update. */
  nspLoss: number;
  /** Sentence pairs per second of this step (native step time). */
  pairsPerSec: number;
}

/** Totals over a run. */
export interface PretrainSummary {
  /** Steps taken. */
  steps: number;
  /** Mean of the per-step MLM losses. */
  mlmLoss: number;
  /** Mean of the per-step NSP losses. */
  nspLoss: number;
  /** Sentence pairs per second over the timed steps (all but the first, warm-up step). */
  pairsPerSec: number;
  /** The device(s) trained on, e.g. `'cpu'` or `'cuda:0,cuda:1'`. */
  device: string;
  /** Whether the signal stopped the run early. */
  aborted: boolean;
}

/** The result of {@link pretrain}. */
export interface PretrainResult {
  /** The trained model. */
  model: BertModel;
  /** Its vocabulary (also `model.vocab`). */
  vocab: Vocab;
  /** One record a step. */
  history: StepRecord[];
  /** Means and throughput. */
  summary: PretrainSummary;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name}: expected a positive integer, got ${String(v)}`);
  return v;
}

/** Serves batches epoch after epoch, one step ahead of the trainer. */
function* endlessBatches(dataset: PretrainingDataset, batchSize: number): Generator<Batch> {
  for (let epoch = 0; ; epoch++) {
    let served = 0;
    for (const batch of dataset.batches({ batchSize, epoch })) {
      served++;
      yield batch;
    }
    if (served === 0)
      throw new RangeError(`batchSize: ${batchSize} leaves no batch of ${dataset.numExamples} examples`);
  }
}

/**
 * Pretrains a BERT model with MLM + NSP loss and Adam, like the textbook's `train_bert`:
 * reads and prepares the corpus, builds the vocabulary, then runs `steps` native training
 * steps, preparing each next batch while the current step runs (training never blocks the
 * event loop). Sizes whose step would not fit in memory are a `RangeError` before the data is
 * read; a step whose loss or gradients are not finite ends the run with a
 * {@link TrainingDivergedError} carrying the history so far.
 *
 * @example
 * ```ts
 * const { model, summary } = await pretrain({ data: 'wikitext-2', steps: 50 });
 * console.log(`MLM loss ${summary.mlmLoss.toFixed(3)}, NSP loss ${summary.nspLoss.toFixed(3)}`);
 * ```
 */
export async function pretrain(options: PretrainOptions): Promise<PretrainResult> {
  const d = PRETRAIN_DEFAULTS;
  const batchSize = positiveInteger('batchSize', options.batchSize, d.batchSize);
  const steps = positiveInteger('steps', options.steps, d.steps);
  const maxLen = positiveInteger('maxLen', options.maxLen, d.maxLen);
  const seed = options.seed ?? d.seed;
  const limit = options.memoryLimit ?? memoryLimit();
  const config = {
    ...options.config,
    maxPositions: Math.max(options.config?.maxPositions ?? TEXTBOOK_SIZES.maxPositions, maxLen),
  };
  // Before reading any data: does a step fit at all (the vocabulary, unknown yet, at its least)?
  const least = resolveConfig(config, RESERVED_TOKENS.length);
  native().checkPassFits(least, batchSize, maxLen, batchSize * paddedPredictions(maxLen), limit, 'batchSize, maxLen');
  const dataset = await PretrainingDataset.fromSource(options.data, { maxLen, seed, minFreq: options.minFreq });
  const model = BertModel.create(dataset.vocab, {
    config,
    seed,
    lr: options.lr ?? d.lr,
    device: options.device ?? d.device,
    memoryLimit: limit,
  });
  const batches = endlessBatches(dataset, batchSize);
  const history: StepRecord[] = [];
  const timings: { pairs: number; seconds: number }[] = [];
  let next = batches.next().value as Batch;
  for (let step = 1; step <= steps && !options.signal?.aborted; step++) {
    const batch = next;
    const started = performance.now();
    const pending = model.trainStep(batch);
    next = batches.next().value as Batch; // prepared while the native step runs
    const { mlmLoss, nspLoss } = await pending.catch((error: unknown) => {
      if (!(error instanceof TrainingDivergedError)) throw error;
      throw new TrainingDivergedError(error.message, error.step, history, { cause: error });
    });
    const seconds = (performance.now() - started) / 1000;
    const record = { step, mlmLoss, nspLoss, pairsPerSec: batch.batchSize / seconds };
    history.push(record);
    timings.push({ pairs: batch.batchSize, seconds });
    options.onStep?.(record);
  }
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
  const timed = timings.length > 1 ? timings.slice(1) : timings;
  const pairs = timed.reduce((n, t) => n + t.pairs, 0);
  const seconds = timed.reduce((s, t) => s + t.seconds, 0);
  return {
    model,
    vocab: dataset.vocab,
    history,
    summary: {
      steps: history.length,
      mlmLoss: mean(history.map((r) => r.mlmLoss)),
      nspLoss: mean(history.map((r) => r.nspLoss)),
      pairsPerSec: seconds > 0 ? pairs / seconds : Number.NaN,
      device: deviceLabel(model.device),
      aborted: history.length < steps,
    },
  };
}
