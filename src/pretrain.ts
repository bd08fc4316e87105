/**
 * {@link pretrain}: BERT pretraining (MLM + NSP) in TypeScript over the native step — the
 * textbook's run by default, and what real runs need: any corpus (streamed), held-out
 * evaluation, learning-rate schedules, gradient clipping and accumulation, AdamW, a history
 * file, checkpoints that resume a run bit for bit, and continued pretraining of a saved model.
 *
 * @module
 */
import { stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { type ModelSizes, resolveConfig, TEXTBOOK_SIZES } from './config.js';
import type { Batch } from './data/batch.js';
import { batchBytes } from './data/batch.js';
import { PretrainingDataset } from './data/dataset.js';
import type { CorpusFormat } from './data/formats.js';
import { paddedPredictions } from './data/padding.js';
import { type CorpusSource, TRAIN_FILE, VALID_FILE } from './data/sources.js';
import { RESERVED_TOKENS, type Vocab } from './data/vocab.js';
import { type DownloadProgress, wikiText2 } from './data/wikitext-download.js';
import { type Device, deviceLabel } from './device.js';
import { CheckpointError, TrainingDivergedError } from './errors.js';
import { formatBytes, memoryLimit } from './memory.js';
import { BertModel, type LoadOptions } from './model.js';
import { native } from './native.js';
import { lossCurvesSvg } from './plot.js';
import { type Checkpoint, readCheckpoint, writeCheckpoint } from './training/checkpoints.js';
import { HeldOutSet, missingHead, modelWords } from './training/evaluation.js';
import { type EvalRecord, HistoryFile, type HistoryLine, type StepRecord } from './training/history.js';
import { LivePlot } from './training/live-plot.js';
import {
  checkRunOptions,
  type DefaultedRunOption,
  KEPT,
  type KeptRunOption,
  meanOf,
  RENEWABLE,
  RUN_DEFAULTS,
  RUN_OPTIONS,
  type RunOptionName,
  type RunOptionValue,
  resolveOption,
  throughput,
} from './training/options.js';
import { PRETRAIN_FORMAT, RunProgress } from './training/progress.js';
import { RunFolder } from './training/run-folder.js';
import { checkSchedule, learningRateAt, type Schedule, type ScheduleKind } from './training/schedule.js';

/**
 * The textbook's pretraining run: the defaults of {@link pretrain} and of `tsbert pretrain`
 * (their declarations, with the checks and flags, are the run options' table,
 * `src/training/options.ts`).
 */
export const PRETRAIN_DEFAULTS: PretrainDefaults = RUN_DEFAULTS;

/** The defaults of {@link pretrain}'s options that have one (see {@link PretrainOptions} for each). */
export type PretrainDefaults = Readonly<Required<Pick<PretrainOptions, Defaulted>>>;

/**
 * The names of the options that have a default.
 *
 * @inline
 */
type Defaulted = DefaultedRunOption;

/** Options of {@link pretrain}; each defaults to {@link PRETRAIN_DEFAULTS} (or as said). */
export interface PretrainOptions {
  /**
   * The corpus: a file, a folder (its `wiki.train.tokens`, or every file in it), a glob
   * pattern, or WikiText paragraph lines. Default: WikiText-2, downloaded once into the cache
   * (see `wikiText2`).
   */
  data?: CorpusSource;
  /**
   * Held-out corpus for evaluation; default `wiki.valid.tokens` when it sits beside the
   * training file (or in its folder); `false` for none.
   */
  valid?: CorpusSource | false;
  /** Each file's layout; default `'auto'` (`.jsonl`/`.ndjson`: JSON Lines, else WikiText). */
  format?: CorpusFormat | 'auto';
  /** JSON Lines: the field holding the text; default `'text'`. */
  textField?: string;
  /** Bytes the data may hold in memory (see `DatasetOptions.memory`); default `DATA_DEFAULTS.memory`. */
  dataMemory?: number;
  /** Sentence pairs a batch. */
  batchSize?: number;
  /** Tokens per pair, `<cls>` and `<sep>`s included. */
  maxLen?: number;
  /** The step to train up to (a resumed run counts the steps it had). */
  steps?: number;
  /** Model sizes; default the textbook's (`TEXTBOOK_SIZES`: hidden 128, 2 layers, 2 heads, …). */
  config?: Partial<ModelSizes>;
  /** The (peak) learning rate. */
  lr?: number;
  /** Steps of linear warmup to `lr`. */
  warmupSteps?: number;
  /** After the warmup: `'constant'`, or a `'linear'` or `'cosine'` decay to 0 at `steps`. */
  schedule?: ScheduleKind;
  /** Scale each step's gradients down to at most this global L2 norm. */
  clipNorm?: number;
  /** Batches whose gradients make one step: the update of one batch of `accumulate × batchSize` pairs. */
  accumulate?: number;
  /** `'adam'` (the textbook's) or `'adamw'` (decoupled weight decay, biases and layer norms spared). */
  optimizer?: 'adam' | 'adamw';
  /** Weight decay. */
  weightDecay?: number;
  /** Seeds the data, the weights and dropout. */
  seed?: number;
  /** Least count of a word to enter the vocabulary. */
  minFreq?: number;
  /** Where to train. */
  device?: Device;
  /** Bytes of host memory the model and a step may take (see `CreateModelOptions.memoryLimit`). */
  memoryLimit?: number;
  /** Held-out evaluation every this many steps, and at the end. */
  evalEvery?: number;
  /** Held-out sentence pairs evaluated (a seeded sample). */
  evalExamples?: number;
  /**
   * The run's output folder: `history.jsonl` (a line a step and an evaluation), `loss.svg`
   * (redrawn every few seconds), `checkpoints/`, and the final model. One run at a time holds
   * it; a folder that holds another run's model, checkpoints or history is refused unless this
   * run resumes that run (`resume`) or `overwrite` is given. A run writes nothing there before
   * its first step is trained.
   */
  out?: string;
  /**
   * Replace what another run left in `out`: its checkpoints (and history) once this run has
   * trained a step, its model when this one is saved. Default `false`.
   */
  overwrite?: boolean;
  /** A checkpoint every this many steps (and always at the end or when stopped), with `out`. */
  saveEvery?: number;
  /** Checkpoints kept (the oldest removed). */
  keepCheckpoints?: number;
  /**
   * Continue the run of this checkpoint (or of this run folder's latest): its weights,
   * optimizer state, position in the data and options. Only `steps`, `data`, `valid`, `out`,
   * the evaluation and checkpoint cadences, `device` and `memoryLimit` may be given anew.
   */
  resume?: string;
  /**
   * Continued pretraining: start from this saved model (tsbert's, or a Hugging Face
   * `BertForPreTraining` with its tokenizer) with a fresh optimizer; its vocabulary or
   * tokenizer makes the data's ids.
   */
  from?: string;
  /** Called after every step with its record and the step the run goes up to. */
  onStep?: (record: StepRecord, steps: number) => void;
  /** Called when a held-out evaluation starts, after step `step`, with its number of pairs. */
  onEvalStart?: (step: number, examples: number) => void;
  /** Called after every held-out evaluation. */
  onEval?: (record: EvalRecord) => void;
  /**
   * Show the run's progress on stderr (the download, the reading of a large corpus, each step's
   * losses, pairs/sec and ETA, each held-out evaluation while it runs): live bars on a terminal,
   * a line every 5 seconds elsewhere. Default `false` (the CLI shows it).
   */
  progress?: boolean;
  /** Called while the corpus is read, with the bytes read and the total. */
  onDataProgress?: (bytesRead: number, totalBytes: number) => void;
  /** Called while WikiText-2 downloads (when `data` is left out and it is not cached). */
  onDownload?: (progress: DownloadProgress) => void;
  /**
   * Stops the run: during the preparation (reading the corpus, within a chunk of it), the
   * promise rejects with the signal's reason and nothing is written; during training, after the
   * step in flight, saving as at the end (the result has `summary.aborted`).
   */
  signal?: AbortSignal;
}

/** Totals over a run. */
export interface PretrainSummary {
  /** Steps taken by this call. */
  steps: number;
  /** The step the run is at (a resumed run's steps included). */
  lastStep: number;
  /** Mean of this call's per-step MLM losses. */
  mlmLoss: number;
  /** Mean of this call's per-step NSP losses. */
  nspLoss: number;
  /** Sentence pairs per second over the timed steps (all but the first, warm-up step). */
  pairsPerSec: number;
  /** The device(s) trained on, e.g. `'cpu'` or `'cuda:0,cuda:1'`. */
  device: string;
  /** Whether the signal stopped the run early. */
  aborted: boolean;
  /** The last held-out evaluation, if there is a held-out set. */
  heldOut?: EvalRecord;
}

/** The result of {@link pretrain}. */
export interface PretrainResult {
  /** The trained model. */
  model: BertModel;
  /** Its textbook vocabulary (also `model.vocab`), when it has one. */
  vocab: Vocab | undefined;
  /** One record a step of this call. */
  history: StepRecord[];
  /** The held-out evaluations of this call. */
  evaluations: EvalRecord[];
  /** Means and throughput. */
  summary: PretrainSummary;
  /** The last checkpoint written (with `out`). */
  checkpoint?: string;
}

/**
 * The options a run keeps from start to end, as resolved when it began (`null` where one has no
 * value): those its checkpoints store, with the paths absolute and the model sizes given.
 */
type RunOptions = {
  [K in KeptRunOption]: K extends DefaultedRunOption ? RunOptionValue<K> : RunOptionValue<K> | null;
} & {
  /** The weight decay (its default depends on the optimizer). */
  weightDecay: number;
  /** The training corpus's absolute path (null for lines given in memory). */
  data: string | null;
  /** The held-out corpus's absolute path, if any. */
  valid: string | null;
  /** The model sizes given (the rest are the textbook's). */
  config: Partial<ModelSizes>;
};

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** `wiki.valid.tokens` beside the training file (or in its folder), if it is there. */
async function validBeside(data: CorpusSource): Promise<string | undefined> {
  if (typeof data !== 'string') return undefined;
  const info = await stat(data).catch(() => undefined);
  if (!info) return undefined;
  if (info.isDirectory() && !(await exists(join(data, TRAIN_FILE)))) return undefined;
  const valid = join(info.isDirectory() ? data : dirname(data), VALID_FILE);
  return basename(data) !== VALID_FILE && (await exists(valid)) ? valid : undefined;
}

/** A path as the run stores it (absolute), or null for lines given in memory. */
const storedPath = (source: CorpusSource | undefined) => (typeof source === 'string' ? resolve(source) : null);

/**
 * The run's options: the given ones over the defaults, or, resuming, the checkpoint's (checked
 * against the given: only the renewable ones may change).
 */
function runOptions(
  options: PretrainOptions,
  checkpoint: Checkpoint<RunOptions> | undefined,
  data: CorpusSource,
): RunOptions {
  const given = options as Record<string, unknown>;
  const stored = checkpoint?.state.options;
  if (checkpoint && stored) {
    for (const name of KEPT) {
      const value = (stored as Record<string, unknown>)[name];
      try {
        if (value !== null) resolveOption(name, value);
      } catch (cause) {
        throw new CheckpointError(`checkpoint '${checkpoint.dir}': run.json: ${(cause as Error).message}`, { cause });
      }
    }
    for (const [key, value] of Object.entries(options)) {
      const other =
        value === undefined || typeof value === 'function' || ['resume', 'signal', 'progress'].includes(key);
      if (other || RENEWABLE.includes(key as RunOptionName)) continue;
      if (key === 'config') {
        const sizes = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
        const differs = sizes.find(([size, v]) => checkpoint.modelConfig[size] !== v);
        if (differs) {
          const [size] = differs;
          throw new RangeError(
            `${size}: a resumed run keeps its model (it has ${JSON.stringify(checkpoint.modelConfig[size])}); only ${RENEWABLE.join(', ')} may change`,
          );
        }
        continue;
      }
      const kept = (stored as unknown as Record<string, unknown>)[key];
      if (JSON.stringify(value) !== JSON.stringify(kept ?? undefined)) {
        throw new RangeError(
          `${key}: a resumed run keeps its options (it has ${JSON.stringify(kept)}); only ${RENEWABLE.join(', ')} may change`,
        );
      }
    }
    const renewed = KEPT.filter((name) => RENEWABLE.includes(name) && given[name] !== undefined);
    return {
      ...stored,
      ...Object.fromEntries(renewed.map((name) => [name, resolveOption(name, given[name])])),
      data: storedPath(data) ?? stored.data,
    };
  }
  const run = Object.fromEntries(KEPT.map((name) => [name, resolveOption(name, given[name]) ?? null])) as Omit<
    RunOptions,
    'data' | 'valid' | 'config'
  >;
  run.weightDecay ??= run.optimizer === 'adamw' ? 0.01 : 0;
  run.from = run.from === null ? null : resolve(run.from);
  return { ...run, data: storedPath(data), valid: null, config: options.config ?? {} };
}

/** The training data's batches from a position on, epoch after epoch, each epoch in its seeded order. */
class BatchStream {
  readonly #dataset: PretrainingDataset;
  readonly #batchSize: number;
  readonly #perEpoch: number;
  #epoch: number;
  #batches: Generator<Batch>;

  /** The batches after the first `served` of the run. */
  constructor(dataset: PretrainingDataset, batchSize: number, served: number) {
    this.#dataset = dataset;
    this.#batchSize = batchSize;
    this.#perEpoch = dataset.numBatches(batchSize);
    this.#epoch = Math.floor(served / this.#perEpoch);
    this.#batches = dataset.batches({ batchSize, epoch: this.#epoch });
    for (let i = served % this.#perEpoch; i > 0; i--) this.#batches.next();
  }

  /** The next `n` batches. */
  take(n: number): Batch[] {
    const out: Batch[] = [];
    while (out.length < n) {
      const next = this.#batches.next();
      if (next.done) this.#batches = this.#dataset.batches({ batchSize: this.#batchSize, epoch: ++this.#epoch });
      else out.push(next.value);
    }
    return out;
  }
}

/**
 * Pretrains a BERT model with MLM + NSP loss, like the textbook's `train_bert` by default:
 * reads and prepares the corpus (streamed, within `dataMemory`), builds the vocabulary (or
 * takes the continued model's), then runs native training steps up to `steps`, preparing each
 * next batch while the current step runs (training never blocks the event loop). With a
 * held-out set it evaluates every `evalEvery` steps and at the end; with `out` it writes the
 * run's history, plot, checkpoints and final model there. Sizes whose step would not fit in
 * memory are a `RangeError` before the data is read; a step whose loss or gradients are not
 * finite ends the run with a {@link TrainingDivergedError} carrying the history so far (the
 * final model is then not saved; earlier checkpoints stay).
 *
 * @example
 * ```ts
 * const { model, summary } = await pretrain({ data: 'wikitext-2', steps: 50 });
 * console.log(`MLM loss ${summary.mlmLoss.toFixed(3)}, NSP loss ${summary.nspLoss.toFixed(3)}`);
 * ```
 */
export async function pretrain(options: PretrainOptions): Promise<PretrainResult> {
  checkPretrainOptions(options);
  const display = options.progress ? new RunProgress(PRETRAIN_FORMAT) : undefined;
  const data = options.data ?? (options.resume ? `the run in ${options.resume}` : 'WikiText-2');
  display?.preparing(typeof data === 'string' ? data : `${data.length} paragraphs`);
  try {
    return await settleAndTrain(display ? withDisplay(options, display) : options);
  } finally {
    display?.stop();
  }
}

/** `options` with their callbacks also showing the run on `display`. */
function withDisplay(options: PretrainOptions, display: RunProgress): PretrainOptions {
  return {
    ...options,
    onDownload: (p) => {
      options.onDownload?.(p);
      display.bytes('downloading WikiText-2', p.received, p.total);
    },
    onDataProgress: (done, total) => {
      options.onDataProgress?.(done, total);
      display.bytes('reading the corpus', done, total);
    },
    onStep: (record, total) => {
      options.onStep?.(record, total);
      display.step(record, total);
    },
    onEvalStart: (step, examples) => {
      options.onEvalStart?.(step, examples);
      display.evaluating(step, examples);
    },
    onEval: (record) => {
      options.onEval?.(record);
      display.evaluated(record);
    },
  };
}

/** {@link pretrain} after its options are checked: the run settled, then trained. */
async function settleAndTrain(options: PretrainOptions): Promise<PretrainResult> {
  const { signal } = options;
  signal?.throwIfAborted();
  const checkpoint = options.resume ? await readCheckpoint<RunOptions>(options.resume) : undefined;
  const stored = checkpoint?.state.options;
  const data: CorpusSource =
    resolveOption('data', options.data) ??
    stored?.data ??
    (await wikiText2({ onProgress: options.onDownload, signal }));
  const run = runOptions(options, checkpoint, data);
  const steps = resolveOption('steps', options.steps) as number;
  const startStep = checkpoint?.state.step ?? 0;
  if (steps <= startStep) throw new RangeError(`steps: the run is at step ${startStep} already; ask for more`);
  const schedule = checkSchedule({ lr: run.lr, warmupSteps: run.warmupSteps, kind: run.schedule, steps });
  const limit = resolveOption('memoryLimit', options.memoryLimit) ?? memoryLimit();
  const out = resolveOption('out', options.out);
  const folder = out
    ? await RunFolder.hold(out, {
        resumed: checkpoint && { dir: checkpoint.dir, step: startStep },
        overwrite: resolveOption('overwrite', options.overwrite) as boolean,
      })
    : undefined;
  try {
    return await train(options, { checkpoint, data, run, steps, schedule, limit, folder });
  } finally {
    await folder?.release();
  }
}

/** What {@link pretrain} settles before it reads any data. */
interface RunSetup {
  checkpoint: Checkpoint<RunOptions> | undefined;
  data: CorpusSource;
  run: RunOptions;
  steps: number;
  schedule: Schedule;
  limit: number;
  folder: RunFolder | undefined;
}

/** The run after its options and its folder are settled: preparation, then the steps. */
async function train(options: PretrainOptions, setup: RunSetup): Promise<PretrainResult> {
  const { checkpoint, data, run, steps, schedule, limit, folder } = setup;
  const { signal } = options;
  const out = folder?.dir;
  const { evalEvery, saveEvery, keepCheckpoints: keep } = run;
  const startStep = checkpoint?.state.step ?? 0;
  const training: LoadOptions = {
    seed: run.seed,
    lr: learningRateAt(schedule, startStep + 1),
    optimizer: run.optimizer,
    weightDecay: run.weightDecay,
    clipNorm: run.clipNorm ?? undefined,
    device: options.device ?? PRETRAIN_DEFAULTS.device,
    memoryLimit: limit,
  };
  const dataOptions = {
    maxLen: run.maxLen,
    seed: run.seed,
    format: run.format,
    textField: run.textField ?? undefined,
    memory: run.dataMemory,
    onProgress: options.onDataProgress,
    signal,
  };

  // The model: resumed, continued or new (then sized before any data is read).
  let model: BertModel | undefined;
  let dataset: PretrainingDataset;
  const from = checkpoint?.dir ?? run.from;
  if (from) {
    model = await BertModel.load(from, training);
    if (checkpoint) {
      await model.loadOptimizerState(checkpoint.optimizer).catch((cause: unknown) => {
        throw new CheckpointError(`checkpoint '${checkpoint.dir}': ${(cause as Error).message}`, { cause });
      });
    } else checkContinuable(model, run.maxLen, from);
    checkHeldBatches(run);
    signal?.throwIfAborted();
    dataset = await PretrainingDataset.fromSource(data, { ...dataOptions, ...modelWords(model) });
    if (checkpoint && dataset.numExamples !== checkpoint.state.numExamples) {
      throw new Error(
        `data: the corpus makes ${dataset.numExamples} examples, the run's made ${checkpoint.state.numExamples}: it is not the data the run was trained on`,
      );
    }
  } else {
    const config = {
      ...run.config,
      maxPositions: Math.max(run.config.maxPositions ?? TEXTBOOK_SIZES.maxPositions, run.maxLen),
    };
    const least = resolveConfig(config, RESERVED_TOKENS.length);
    const preds = run.batchSize * paddedPredictions(run.maxLen);
    const exceeds = native().passExceeds(least, run.batchSize, run.maxLen, preds, limit);
    if (exceeds) throw new RangeError(`batchSize, maxLen: ${exceeds}`);
    checkHeldBatches(run);
    dataset = await PretrainingDataset.fromSource(data, { ...dataOptions, minFreq: run.minFreq });
    model = BertModel.create(dataset.vocab as Vocab, { ...training, config });
  }

  const valid = resolveOption('valid', options.valid);
  const validSource =
    valid === false ? undefined : (valid ?? checkpoint?.state.options.valid ?? (await validBeside(data)));
  run.valid = storedPath(validSource);
  let heldOut: HeldOutSet | undefined;
  try {
    heldOut = validSource
      ? await HeldOutSet.fromSource(validSource, modelWords(model), {
          maxLen: run.maxLen,
          seed: run.seed,
          examples: run.evalExamples,
          format: run.format,
          textField: run.textField ?? undefined,
          signal,
        })
      : undefined;
    signal?.throwIfAborted(); // nothing trained: nothing written
  } catch (error) {
    dataset.close();
    throw error;
  }

  // The run's past (resumed), read now, written once this run has trained a step.
  const past: HistoryLine[] = checkpoint && out ? await HistoryFile.read(out, startStep) : [];
  const record = checkpoint?.state.record;
  if (record && !past.some((l) => l.kind === 'step' && l.step === record.step)) {
    past.push({ kind: 'step', ...record }); // its line was lost to a crash after the checkpoint
  }
  const allSteps: StepRecord[] = [];
  const allEvals: EvalRecord[] = [];
  for (const line of past) {
    const { kind, ...rest } = line;
    if (kind === 'step') allSteps.push(rest as StepRecord);
    else allEvals.push(rest as EvalRecord);
  }
  let historyFile: HistoryFile | undefined;
  const plot = out ? new LivePlot(out, () => lossCurvesSvg(allSteps, allEvals)) : undefined;
  const history: StepRecord[] = [];
  const evaluations: EvalRecord[] = [];
  const timings: { items: number; seconds: number }[] = [];
  let lastCheckpoint: string | undefined;
  let lastSaved = startStep;
  let lastEval = -1;

  /** Makes `out` this run's (at its first step) and writes `lines` to its history. */
  const writeHistory = async (...lines: HistoryLine[]) => {
    if (!out || !folder) return;
    if (!historyFile) {
      await folder.claim();
      historyFile = await HistoryFile.create(out, past);
    }
    for (const line of lines) historyFile.add(line);
    await historyFile.flush();
  };
  const servedAt = (step: number) => (checkpoint?.state.batchesServed ?? 0) + (step - startStep) * run.accumulate;
  const saveCheckpoint = async (step: number) => {
    if (!out) return;
    const state = {
      step,
      batchesServed: servedAt(step),
      numExamples: dataset.numExamples,
      options: run,
      record: allSteps.at(-1)?.step === step ? allSteps.at(-1) : undefined,
    };
    lastCheckpoint = await writeCheckpoint(out, model as BertModel, state, keep);
    lastSaved = step;
  };
  const evaluate = async (step: number) => {
    if (!heldOut) return;
    options.onEvalStart?.(step, heldOut.examples);
    const record = { step, ...(await heldOut.metrics(model as BertModel)) };
    evaluations.push(record);
    allEvals.push(record);
    await writeHistory({ kind: 'eval', ...record });
    lastEval = step;
    options.onEval?.(record);
  };

  const stream = new BatchStream(dataset, run.batchSize, servedAt(startStep));
  let step = startStep;
  try {
    let next = stream.take(run.accumulate);
    while (step < steps && !signal?.aborted) {
      step++;
      const lr = learningRateAt(schedule, step);
      if (lr !== model.learningRate) model.learningRate = lr;
      const batches = next;
      const started = performance.now();
      const pending = model.trainStep(batches.length === 1 ? batches[0] : batches);
      if (step < steps) next = stream.take(run.accumulate); // prepared while the native step runs
      const { mlmLoss, nspLoss } = await pending.catch((error: unknown) => {
        if (!(error instanceof TrainingDivergedError)) throw error;
        throw new TrainingDivergedError(error.message, step, [...allSteps], { cause: error });
      });
      const seconds = (performance.now() - started) / 1000;
      const pairs = batches.reduce((n, b) => n + b.batchSize, 0);
      const record = { step, mlmLoss, nspLoss, lr, pairsPerSec: pairs / seconds };
      history.push(record);
      allSteps.push(record);
      timings.push({ items: pairs, seconds });
      await writeHistory({ kind: 'step', ...record }); // before the checkpoint that covers it
      options.onStep?.(record, steps);
      if (evalEvery > 0 && step % evalEvery === 0) await evaluate(step);
      if (saveEvery > 0 && step % saveEvery === 0) await saveCheckpoint(step);
      plot?.update();
    }
    if (step === startStep) signal?.throwIfAborted(); // stopped before its first step: nothing written
    const stopped = step < steps;
    if (lastEval !== step && !stopped) await evaluate(step); // a stopped run saves at once (SIGTERM gives little time)
    if (out) {
      if (lastSaved !== step || !lastCheckpoint) await saveCheckpoint(step);
      await model.save(out);
    }
    await plot?.draw();
  } catch (error) {
    if (error instanceof TrainingDivergedError && historyFile) await plot?.draw();
    throw error;
  } finally {
    dataset.close();
  }

  return {
    model,
    vocab: model.vocab,
    history,
    evaluations,
    summary: {
      steps: history.length,
      lastStep: step,
      mlmLoss: meanOf(history.map((r) => r.mlmLoss)),
      nspLoss: meanOf(history.map((r) => r.nspLoss)),
      pairsPerSec: throughput(timings),
      device: deviceLabel(model.device),
      aborted: step < steps,
      heldOut: evaluations.at(-1),
    },
    checkpoint: lastCheckpoint,
  };
}

/** The callbacks {@link PretrainOptions} takes. */
const CALLBACKS = ['onStep', 'onEvalStart', 'onEval', 'onDataProgress', 'onDownload'] as const;

/**
 * Checks every option given before anything is done: a name that is no option, a callback
 * that is no function, a signal that is no `AbortSignal` or a `config` that is no object is a
 * `TypeError`; the run options are checked by their rules (a `TypeError` for another kind, a
 * `RangeError` for a value out of range).
 */
function checkPretrainOptions(options: PretrainOptions): void {
  checkRunOptions(
    options,
    CALLBACKS,
    'pretrain',
    (name, value) => {
      if (name === 'config') {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
          throw new TypeError('config: expected an object of model sizes');
        }
        return true;
      }
      if (!(name in RUN_OPTIONS) || (RUN_OPTIONS[name as RunOptionName] as { size?: true }).size) return false;
      resolveOption(name as RunOptionName, value);
      return true;
    },
    ' (model sizes go in config)',
  );
}

/**
 * The batches a step holds — its own and the next step's, prepared while it runs: `2 ×
 * accumulate` batches — must fit in the data's memory (`dataMemory`); a `RangeError` naming
 * `accumulate` before any data is read otherwise.
 */
function checkHeldBatches(run: RunOptions): void {
  const bytes = 2 * run.accumulate * batchBytes(run.batchSize, run.maxLen, paddedPredictions(run.maxLen));
  if (bytes > run.dataMemory) {
    const fields = run.accumulate > 1 ? 'accumulate' : 'batchSize, maxLen';
    throw new RangeError(
      `${fields}: ${run.accumulate} batches a step hold ${formatBytes(bytes)} (the step's and the next step's, ${2 * run.accumulate} batches of ${run.batchSize} pairs), more than the ${formatBytes(run.dataMemory)} the data may take (dataMemory); lower accumulate or batchSize, or raise dataMemory`,
    );
  }
}

/** A model continued must have both heads and positions for `maxLen` tokens. */
function checkContinuable(model: BertModel, maxLen: number, dir: string): void {
  const { maxPositions } = model.config;
  const missing = missingHead(model);
  if (missing) {
    model.dispose();
    throw new RangeError(
      `from: '${dir}' has no ${missing} head (a bare encoder); continued pretraining needs a model with both, as BertForPreTraining saves them`,
    );
  }
  if (maxLen > maxPositions) {
    model.dispose();
    throw new RangeError(`maxLen: ${maxLen} is over the ${maxPositions} positions of the model in '${dir}'`);
  }
}
