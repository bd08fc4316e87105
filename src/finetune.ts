/**
 * {@link finetune}: a pretrained BERT fine-tuned on labelled data into a task model — a
 * classifier of texts or pairs (one label, several, or a number) or a token classifier —
 * with BERT's recipe as the defaults, held-out metrics, the best model kept, and what a
 * pretraining run has: a history, a live plot, checkpoints that resume bit for bit, a stop
 * that saves.
 *
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import type { TaskKind } from './config.js';
import {
  type LabelledBatch,
  type LabelledColumns,
  LabelledSet,
  type LabelSet,
  labelledColumns,
  scanLabels,
} from './data/labelled.js';
import type { LabelledFormat } from './data/labelled-files.js';
import { deviceLabel } from './device.js';
import type { DataError } from './errors.js';
import { CheckpointError, TrainingDivergedError } from './errors.js';
import type { HubOptions } from './hub.js';
import { BertModel, type LoadOptions } from './model.js';
import { fineTuneCurvesSvg } from './plot.js';
import { type Checkpoint, readCheckpoint, writeCheckpoint } from './training/checkpoints.js';
import {
  FINETUNE_KEPT,
  FINETUNE_OPTIONS,
  FINETUNE_RENEWABLE,
  type FinetuneOptionName,
  type FinetuneTask,
  finetuneOption,
  type ProblemType,
} from './training/finetune-options.js';
import { HistoryFile } from './training/history.js';
import { LivePlot } from './training/live-plot.js';
import { checkRunOptions, meanOf, throughput } from './training/options.js';
import { type ProgressFormat, RunProgress } from './training/progress.js';
import { RunFolder } from './training/run-folder.js';
import { checkSchedule, learningRateAt, type Schedule } from './training/schedule.js';
import { lowerIsBetter, scoreTask, TASK_METRICS, type TaskEvaluation } from './training/task-evaluation.js';

/** Options of {@link finetune}; each defaults as `tsbert finetune --help` says (BERT's recipe). */
export interface FinetuneOptions {
  /** The model to start from: a folder (tsbert's, or Hugging Face's `BertModel`, `BertForPreTraining` or task model) or a Hub id. Required unless `resume`. */
  model?: string;
  /** `'sequence-classification'` or `'token-classification'`; default the model's head, else sequence classification. */
  task?: FinetuneTask;
  /** A sequence head's kind; default the model's head, else from the labels (lists: multi-label; fractions: regression). */
  problemType?: ProblemType;
  /** The training data: CSV, TSV, JSON Lines or CoNLL. Required unless `resume`. */
  train?: string;
  /** Held-out data, in the same layout. */
  valid?: string;
  /** Without `valid`: hold out this fraction of the training rows (a seeded draw). */
  validSplit?: number;
  /** The files' layout; default `'auto'` (from the extension). */
  format?: LabelledFormat | 'auto';
  /** The text's field (default `'text'`; `'tokens'` for token classification). */
  textColumn?: string;
  /** The second text's field, for pairs (default `'text_pair'`, used when a row has it). */
  pairColumn?: string;
  /** The label's field (default `'label'`; `'tags'` for token classification). */
  labelColumn?: string;
  /** Joins a multi-label row's labels in a CSV or TSV field; default `','`. */
  labelSeparator?: string;
  /** Skip (and count) rows that cannot be used instead of failing at the first; default `false`. */
  skipBadRows?: boolean;
  /** Tokens an example keeps (longer ones are cut, the longer text of a pair first); default 128, or the model's positions if fewer. */
  maxLen?: number;
  /** Examples a batch; default 32. */
  batchSize?: number;
  /** Passes over the training data; default 3. */
  epochs?: number;
  /** The step to train up to; default `epochs` × the steps of an epoch. */
  steps?: number;
  /** The peak learning rate; default 2e-5. */
  lr?: number;
  /** The fraction of the steps of linear warmup; default 0.1. */
  warmupRatio?: number;
  /** Steps of warmup, instead of `warmupRatio`. */
  warmupSteps?: number;
  /** After the warmup; default `'linear'` (decay to 0). */
  schedule?: 'constant' | 'linear' | 'cosine';
  /** Default `'adamw'` (biases and layer norms spared). */
  optimizer?: 'adam' | 'adamw';
  /** Default 0.01. */
  weightDecay?: number;
  /** Global gradient norm a step is clipped to; default 1. */
  clipNorm?: number;
  /** Batches a step (gradient accumulation); default 1. */
  accumulate?: number;
  /** Seeds the head, the data order, the held-out split and dropout; default 42. */
  seed?: number;
  /** Batch examples of similar lengths together; default `false`. */
  groupByLength?: boolean;
  /** Where to train (several devices: data parallel); default `'auto'`. */
  device?: LoadOptions['device'];
  /** Bytes of host memory the model and a step may take. */
  memoryLimit?: number;
  /** Held-out evaluation every this many steps; default 0: at the end of each epoch (and always at the end). */
  evalEvery?: number;
  /** What picks the best model (see `TASK_METRICS`); default the first of the head's kind. */
  metric?: string;
  /** Stop after this many evaluations without improvement. */
  earlyStopping?: number;
  /**
   * The run's folder: at the end the best model (by `metric`; the last one without held-out
   * data), `history.jsonl`, `loss.svg`, `checkpoints/`. Held as a pretraining run holds its
   * folder (see `PretrainOptions.out`).
   */
  out?: string;
  /** Replace what another run left in `out`. */
  overwrite?: boolean;
  /** A checkpoint every this many steps (and at the end, or when stopped). */
  saveEvery?: number;
  /** Checkpoints kept; default 3. */
  keepCheckpoints?: number;
  /** Continue the run of this checkpoint (or run folder's latest); only `steps`, `out`, `device`, `memoryLimit`, the cadences and `earlyStopping` may be given anew. */
  resume?: string;
  /** For a model by Hub id: how it is fetched. */
  hub?: HubOptions;
  /** Called after every step. */
  onStep?: (record: FinetuneStepRecord, steps: number) => void;
  /** Called after every held-out evaluation. */
  onEval?: (record: FinetuneEvalRecord) => void;
  /** Called with each bad row skipped (with `skipBadRows`). */
  onBadRow?: (error: DataError) => void;
  /** Show the run's progress on stderr (the CLI does). */
  progress?: boolean;
  /** Stops the run after the step in flight, saving as at the end (`summary.aborted`). */
  signal?: AbortSignal;
}

/** What a fine-tuning step reports. */
export interface FinetuneStepRecord {
  /** 1-based step. */
  step: number;
  /** Epochs done so far (fractional). */
  epoch: number;
  /** The step's loss, before its update. */
  loss: number;
  /** Its learning rate. */
  lr: number;
  /** Examples per second of the native step. */
  examplesPerSec: number;
}

/** A held-out evaluation of a fine-tuning run. */
export interface FinetuneEvalRecord extends TaskEvaluation {
  /** Steps taken before it. */
  step: number;
  /** Epochs done. */
  epoch: number;
}

/** Totals of a fine-tuning run. */
export interface FinetuneSummary {
  /** Steps taken by this call. */
  steps: number;
  /** The step the run is at. */
  lastStep: number;
  /** Mean of this call's step losses. */
  loss: number;
  /** Examples per second over the timed steps (all but the first). */
  examplesPerSec: number;
  /** The device(s). */
  device: string;
  /** Whether the signal stopped the run. */
  aborted: boolean;
  /** Whether early stopping ended it. */
  earlyStopped: boolean;
  /** The metric that picks the best model. */
  metric: string;
  /** The best evaluation (the model returned and saved is its), if the run has held-out data. */
  best?: FinetuneEvalRecord;
  /** What the data gave. */
  data: {
    /** Training examples. */
    train: number;
    /** Held-out examples. */
    valid: number;
    /** Examples cut to `maxLen`. */
    truncated: number;
    /** Bad rows skipped (`skipBadRows`). */
    skipped: number;
  };
}

/** The result of {@link finetune}. */
export interface FinetuneResult {
  /** The fine-tuned model: the best one by `metric` when there is held-out data, else the last. */
  model: BertModel;
  /** Its head's kind and label names. */
  labels: LabelSet;
  /** This call's steps. */
  history: FinetuneStepRecord[];
  /** This call's evaluations. */
  evaluations: FinetuneEvalRecord[];
  /** Totals. */
  summary: FinetuneSummary;
  /** The last checkpoint written (with `out`). */
  checkpoint?: string;
}

/** The options a run keeps (its checkpoints hold them), resolved; null where unset. */
type FinetuneRun = Record<FinetuneOptionName, unknown> & {
  model: string;
  task: FinetuneTask;
  labels: LabelSet;
  batchSize: number;
  accumulate: number;
  seed: number;
  maxLen: number;
  metric: string;
  evalEvery: number;
  saveEvery: number;
  keepCheckpoints: number;
  earlyStopping: number | null;
  groupByLength: boolean;
};

/** A new run's options before its data is scanned (its head's kind, labels and metric unknown). */
type FinetuneDraft = Record<FinetuneOptionName, unknown> & Omit<FinetuneRun, 'labels' | 'task' | 'metric'>;

/** What a fine-tuning checkpoint keeps besides the options: the best evaluation so far. */
interface BestSoFar {
  /** Its step and value. */
  step: number;
  value: number;
  /** Evaluations since without improvement. */
  stale: number;
}

/** The fine-tuning run's records shown. */
const FINETUNE_FORMAT: ProgressFormat<FinetuneStepRecord, FinetuneEvalRecord> = {
  step: (r) =>
    `loss ${r.loss.toFixed(4)} | epoch ${r.epoch.toFixed(2)} | lr ${r.lr.toPrecision(3)} | ${r.examplesPerSec.toFixed(1)} examples/sec`,
  held: (r) =>
    `held out: ${Object.entries(r.metrics)
      .map(([k, v]) => `${k} ${v.toFixed(4)}`)
      .join(', ')}`,
  examples: 'held-out examples',
};

/** The callbacks {@link FinetuneOptions} takes. */
const CALLBACKS = ['onStep', 'onEval', 'onBadRow'] as const;

/** Checks every option given: unknown names, callbacks, and each run option by its rule. */
function checkOptions(options: FinetuneOptions): void {
  checkRunOptions(options, CALLBACKS, 'finetune', (name, value) => {
    if (name === 'hub') {
      if (typeof value !== 'object' || value === null) throw new TypeError('hub: expected an object');
      return true;
    }
    if (!(name in FINETUNE_OPTIONS)) return false;
    finetuneOption(name as FinetuneOptionName, value);
    return true;
  });
  if (!options.resume) {
    if (options.model === undefined) throw new TypeError('model: required (a model folder or a Hub id)');
    if (options.train === undefined) throw new TypeError('train: required (a CSV, TSV, JSON Lines or CoNLL file)');
  }
  if (options.valid !== undefined && options.validSplit !== undefined) {
    throw new RangeError('validSplit: give valid or validSplit, not both');
  }
}

/** The options of a new run, resolved (the label set comes once the data is scanned). */
function newRun(options: FinetuneOptions): FinetuneDraft {
  const run: Record<string, unknown> = {};
  for (const name of FINETUNE_KEPT)
    run[name] = finetuneOption(name, (options as Record<string, unknown>)[name]) ?? null;
  run.model = options.model;
  run.train = resolve(options.train as string);
  run.valid = options.valid === undefined ? null : resolve(options.valid);
  return run as FinetuneDraft;
}

/** A resumed run's options: the checkpoint's, with the renewable ones given anew. */
function resumedRun(options: FinetuneOptions, checkpoint: Checkpoint<FinetuneRun, FinetuneStepRecord>): FinetuneRun {
  const stored = checkpoint.state.options;
  const renewable = new Set<string>([...FINETUNE_RENEWABLE, 'device', 'memoryLimit', 'out', 'overwrite']);
  for (const [key, value] of Object.entries(options)) {
    const other =
      value === undefined || typeof value === 'function' || ['resume', 'signal', 'progress', 'hub'].includes(key);
    if (other || renewable.has(key)) continue;
    const kept = (stored as Record<string, unknown>)[key];
    const given = key === 'train' || key === 'valid' ? resolve(value as string) : value;
    if (JSON.stringify(given) !== JSON.stringify(kept ?? undefined)) {
      throw new RangeError(
        `${key}: a resumed run keeps its options (it has ${JSON.stringify(kept)}); only ${[...renewable].join(', ')} may change`,
      );
    }
  }
  const renewed = Object.fromEntries(
    FINETUNE_KEPT.filter((n) => renewable.has(n) && (options as Record<string, unknown>)[n] !== undefined).map((n) => [
      n,
      finetuneOption(n, (options as Record<string, unknown>)[n]),
    ]),
  );
  return { ...stored, ...renewed };
}

/** The data's columns for `task`, from the run. */
function columnsOf(run: FinetuneDraft & { task: FinetuneTask }): LabelledColumns {
  const given = (name: FinetuneOptionName) => (run[name] as string | null) ?? undefined;
  return labelledColumns(run.task === 'token-classification', {
    textColumn: given('textColumn'),
    pairColumn: given('pairColumn'),
    labelColumn: given('labelColumn'),
    labelSeparator: given('labelSeparator'),
  });
}

/** The head's kind a run asks for, checked against the model's head (when it has one). */
function headKind(
  task: FinetuneTask,
  problemType: ProblemType | null,
  has: TaskKind | undefined,
): TaskKind | undefined {
  if (task === 'token-classification') {
    if (problemType !== null) throw new RangeError('problemType: a token-classification head has none');
    if (has && has !== 'token_classification') {
      throw new RangeError(`task: the model's head is a sequence's (${has}), not token-classification`);
    }
    return 'token_classification';
  }
  if (has === 'token_classification') throw new RangeError("task: the model's head is a token classifier");
  if (has && problemType && has !== problemType) {
    throw new RangeError(`problemType: the model's head is ${has}, not ${problemType}`);
  }
  return problemType ?? has;
}

/**
 * Fine-tunes a pretrained BERT on labelled data (see {@link FinetuneOptions}): the head is
 * made when the model has none (Hugging Face's initialisation, seeded; the pretraining heads
 * dropped) for the labels the training file has (sorted; `id2label` as Hugging Face stores it)
 * — a model that has a head keeps it and its labels (a label it does not know is a bad row).
 * Evaluates on the held-out data each epoch (or every `evalEvery` steps) and at the end; the
 * model returned (and left in `out`) is the best by `metric`. Bad rows are a `DataError`
 * naming the file, line and column, or skipped with `skipBadRows`; a diverged step a
 * {@link TrainingDivergedError} (nothing overwritten).
 *
 * @example
 * ```ts
 * const { model, summary } = await finetune({ model: 'bert-base-uncased', train: 'train.csv', valid: 'dev.csv', out: 'sentiment' });
 * console.log(summary.best?.metrics.accuracy);
 * ```
 */
export async function finetune(options: FinetuneOptions): Promise<FinetuneResult> {
  checkOptions(options);
  const display = options.progress ? new RunProgress(FINETUNE_FORMAT) : undefined;
  try {
    return await settle(
      display
        ? {
            ...options,
            onStep: (r, total) => {
              options.onStep?.(r, total);
              display.step(r, total);
            },
            onEval: (r) => {
              options.onEval?.(r);
              display.evaluated(r);
            },
          }
        : options,
      display,
    );
  } finally {
    display?.stop();
  }
}

/** The run's model, data and folder, then its steps. */
async function settle(
  options: FinetuneOptions,
  display: RunProgress<FinetuneStepRecord, FinetuneEvalRecord> | undefined,
): Promise<FinetuneResult> {
  const { signal } = options;
  signal?.throwIfAborted();
  const checkpoint = options.resume ? await readCheckpoint<FinetuneRun, FinetuneStepRecord>(options.resume) : undefined;
  const partial = checkpoint ? resumedRun(options, checkpoint) : newRun(options);
  const training: LoadOptions = {
    seed: partial.seed,
    lr: partial.lr as number,
    optimizer: partial.optimizer as 'adam' | 'adamw',
    weightDecay: partial.weightDecay as number,
    clipNorm: (partial.clipNorm as number | null) ?? undefined,
    device: options.device ?? 'auto',
    memoryLimit: options.memoryLimit,
    hub: options.hub,
  };
  const skipped: DataError[] = [];
  const onBadRow = partial.skipBadRows
    ? (error: DataError) => {
        skipped.push(error);
        options.onBadRow?.(error);
      }
    : undefined;
  const format = partial.format === 'auto' ? undefined : (partial.format as LabelledFormat);

  // The model, with its head (made for the data's labels when it has none).
  let model: BertModel;
  let run: FinetuneRun;
  if (checkpoint) {
    run = partial as FinetuneRun;
    model = await BertModel.load(checkpoint.dir, training);
    await model.loadOptimizerState(checkpoint.optimizer).catch((cause: unknown) => {
      model.dispose();
      throw new CheckpointError(`checkpoint '${checkpoint.dir}': ${(cause as Error).message}`, { cause });
    });
  } else {
    display?.preparing(`${options.train} for ${options.model}`);
    const base = await BertModel.load(partial.model, training);
    const has = base.config.task;
    const task: FinetuneTask =
      (partial.task as FinetuneTask | null) ??
      (has?.kind === 'token_classification' ? 'token-classification' : 'sequence-classification');
    let kind: TaskKind | undefined;
    try {
      kind = headKind(task, partial.problemType as ProblemType | null, has?.kind);
    } catch (error) {
      base.dispose();
      throw error;
    }
    const columns = columnsOf({ ...partial, task });
    const token = task === 'token-classification';
    const readOptions = { format: format as never, columns, signal };
    let labels: LabelSet;
    if (has && base.labels && !base.labels.every((l, i) => l === `LABEL_${i}`)) {
      labels = { kind: has.kind, names: [...base.labels] };
      model = base;
    } else {
      labels = await scanLabels(partial.train as string, token, kind, readOptions).catch((error: unknown) => {
        base.dispose();
        throw error;
      });
      if (has && labels.names.length !== has.numLabels) {
        base.dispose();
        throw new RangeError(
          `train: the data has ${labels.names.length} labels (${labels.names.join(', ')}), the model's head ${has.numLabels}`,
        );
      }
      base.dispose();
      model = await BertModel.load(partial.model, { ...training, head: { kind: labels.kind, labels: labels.names } });
    }
    const metric = (partial.metric as string | null) ?? TASK_METRICS[labels.kind][0];
    if (!TASK_METRICS[labels.kind].includes(metric)) {
      model.dispose();
      throw new RangeError(
        `metric: a ${labels.kind} head is measured by ${TASK_METRICS[labels.kind].join(', ')}, not '${metric}'`,
      );
    }
    run = { ...partial, task, labels, metric } as FinetuneRun;
  }
  // BERT's 128 tokens by default, or the model's positions if fewer (as transformers' examples cap it)
  if (!checkpoint && options.maxLen === undefined) run.maxLen = Math.min(run.maxLen, model.config.maxPositions);
  if (run.maxLen > model.config.maxPositions) {
    model.dispose();
    throw new RangeError(`maxLen: ${run.maxLen} is over the model's ${model.config.maxPositions} positions`);
  }

  // The data: read in a second pass, tokenized.
  let train: LabelledSet;
  let valid: LabelledSet | undefined;
  try {
    const columns = columnsOf(run);
    const token = run.task === 'token-classification';
    const read = (path: string) =>
      LabelledSet.read(path, token, {
        format: format as never,
        columns,
        labels: run.labels,
        tokenizer: model.tokenizer,
        maxLen: run.maxLen,
        onBadRow,
        signal,
      });
    train = await read(run.train as string);
    if (run.valid !== null) valid = await read(run.valid as string);
    else if (run.validSplit !== null) [train, valid] = train.split(run.validSplit as number, run.seed);
    if (train.size === 0) throw new Error(`train: '${run.train}' has no usable example`);
    if (valid?.size === 0) throw new Error(`valid: '${run.valid}' has no usable example`);
    if (!valid && (options.metric !== undefined || options.earlyStopping !== undefined)) {
      throw new RangeError(
        `${options.metric !== undefined ? 'metric' : 'earlyStopping'}: needs held-out data (valid or validSplit)`,
      );
    }
    if (checkpoint && train.size !== checkpoint.state.numExamples) {
      throw new Error(
        `train: the data makes ${train.size} examples, the run's made ${checkpoint.state.numExamples}: it is not the data the run was trained on`,
      );
    }
  } catch (error) {
    model.dispose();
    throw error;
  }
  signal?.throwIfAborted();

  const perEpoch = Math.ceil(train.numBatches(run.batchSize) / run.accumulate);
  const steps = finetuneOption('steps', options.steps) ?? (run.epochs as number) * perEpoch;
  const startStep = checkpoint?.state.step ?? 0;
  if (steps <= startStep) {
    model.dispose();
    throw new RangeError(`steps: the run is at step ${startStep} already; ask for more`);
  }
  const warmupSteps = (run.warmupSteps as number | null) ?? Math.ceil((run.warmupRatio as number) * steps);
  const schedule = checkSchedule({
    lr: run.lr as number,
    warmupSteps: Math.min(warmupSteps, steps - 1),
    kind: run.schedule as Schedule['kind'],
    steps,
  });
  const out = finetuneOption('out', options.out);
  const folder = out
    ? await RunFolder.hold(out, {
        resumed: checkpoint && { dir: checkpoint.dir, step: startStep },
        overwrite: options.overwrite === true,
      }).catch((error: unknown) => {
        model.dispose();
        throw error;
      })
    : undefined;
  try {
    return await trainLoop(options, { model, run, train, valid, steps, schedule, folder, checkpoint, skipped });
  } finally {
    await folder?.release();
  }
}

/** A resumed run's best evaluation so far, where it resumes, and the folders that may hold its model. */
interface BestToRestore {
  best: BestSoFar;
  /** Its record, from the run's history (absent if the history is not in the run's folder). */
  record: FinetuneEvalRecord | undefined;
  /** The step of the checkpoint resumed. */
  at: number;
  /** Model folders that may hold the best model, in the order tried. */
  candidates: string[];
}

/** Whether `a` is `b` up to a float's rounding (an evaluation repeated on the same weights). */
const same = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));

/**
 * Puts a resumed run's best model so far into `dir`: the checkpoint's own model when the best
 * is its step, else the first candidate folder whose model scores the best evaluation on the
 * held-out data (a run that ended left its best model in its folder; a killed one left it in
 * its `best` folder, perhaps a later one than the checkpoint's). Resolves to the best
 * evaluation's record (made anew from the held-out data when the history has none), or
 * undefined when no candidate holds the model.
 */
async function restoreBest(
  model: BertModel,
  dir: string,
  { best, record, at, candidates }: BestToRestore,
  valid: LabelledSet,
  how: { metric: string; epoch: number; memoryLimit: number | undefined },
): Promise<FinetuneEvalRecord | undefined> {
  const recordOf = (evaluation: TaskEvaluation): FinetuneEvalRecord =>
    record ?? { step: best.step, epoch: how.epoch, ...evaluation };
  if (best.step === at) {
    await model.save(dir);
    return record ?? recordOf(await scoreTask(model, valid));
  }
  for (const candidate of new Set(candidates.map((c) => resolve(c)))) {
    const found = await BertModel.load(candidate, { device: model.device, memoryLimit: how.memoryLimit }).catch(
      () => undefined, // no model there
    );
    if (!found) continue;
    try {
      const evaluation = await scoreTask(found, valid).catch(() => undefined); // another head: not this run's
      if (!evaluation || !same(evaluation.metrics[how.metric], best.value)) continue;
      if (record && !same(evaluation.loss, record.loss)) continue;
      if (candidate !== resolve(dir)) await found.save(dir);
      return recordOf(evaluation);
    } finally {
      found.dispose();
    }
  }
  return undefined;
}

/** What the steps need. */
interface LoopSetup {
  model: BertModel;
  run: FinetuneRun;
  train: LabelledSet;
  valid: LabelledSet | undefined;
  steps: number;
  schedule: Schedule;
  folder: RunFolder | undefined;
  checkpoint: Checkpoint<FinetuneRun, FinetuneStepRecord> | undefined;
  skipped: DataError[];
}

/** A step line or an evaluation line of a fine-tuning run's history. */
type FinetuneLine = (FinetuneStepRecord & { kind: 'step' }) | (FinetuneEvalRecord & { kind: 'eval' });

/** The folder a run keeps its best model in while it goes. */
const BEST_DIR = 'best';

/** The steps, evaluations and saves of a settled run. */
async function trainLoop(options: FinetuneOptions, setup: LoopSetup): Promise<FinetuneResult> {
  const { run, train, valid, steps, schedule, folder, checkpoint, skipped } = setup;
  let model = setup.model;
  const { signal } = options;
  const out = folder?.dir;
  const startStep = checkpoint?.state.step ?? 0;
  const batchesPerEpoch = train.numBatches(run.batchSize);
  const served0 = checkpoint?.state.batchesServed ?? 0;
  const servedAt = (step: number) => served0 + (step - startStep) * run.accumulate;
  let best = (checkpoint?.state as { best?: BestSoFar } | undefined)?.best;
  const better = (value: number) =>
    best === undefined || (lowerIsBetter(run.metric) ? value < best.value : value > best.value);

  const past = checkpoint && out ? await HistoryFile.read<FinetuneLine>(out, startStep) : [];
  // the records of the lines (without their kind, as this call's records are)
  const allSteps = past.flatMap(({ kind, ...r }) => (kind === 'step' ? [r as FinetuneStepRecord] : []));
  const allEvals = past.flatMap(({ kind, ...r }) => (kind === 'eval' ? [r as FinetuneEvalRecord] : []));
  const plot = out ? new LivePlot(out, () => fineTuneCurvesSvg(allSteps, allEvals, run.metric)) : undefined;
  let historyFile: HistoryFile<FinetuneLine> | undefined;
  const writeHistory = async (line: FinetuneLine) => {
    if (!out || !folder) return;
    if (!historyFile) {
      await folder.claim();
      historyFile = await HistoryFile.create<FinetuneLine>(out, past);
    }
    historyFile.add(line);
    await historyFile.flush();
  };
  const history: FinetuneStepRecord[] = [];
  const evaluations: FinetuneEvalRecord[] = [];
  const timings: { items: number; seconds: number }[] = [];
  let lastCheckpoint: string | undefined;
  let lastSaved = startStep;
  let lastEval = -1;
  let bestRecord: FinetuneEvalRecord | undefined = allEvals.find((e) => e.step === best?.step);
  let earlyStopped = false;
  // the best model so far: in the run's folder, or (without one) in a temporary folder
  const bestDir = out ? join(out, BEST_DIR) : valid ? await mkdtemp(join(tmpdir(), 'tsbert-best-')) : undefined;

  const saveCheckpoint = async (step: number) => {
    if (!out) return;
    const state = {
      step,
      batchesServed: servedAt(step),
      numExamples: train.size,
      options: run,
      record: allSteps.at(-1)?.step === step ? allSteps.at(-1) : undefined,
      best,
    };
    lastCheckpoint = await writeCheckpoint<FinetuneRun, FinetuneStepRecord>(out, model, state, run.keepCheckpoints);
    lastSaved = step;
  };
  const epochAt = (step: number) => servedAt(step) / batchesPerEpoch;
  const evaluate = async (step: number) => {
    if (!valid) return;
    const evaluation = await scoreTask(model, valid);
    const record: FinetuneEvalRecord = { step, epoch: epochAt(step), ...evaluation };
    evaluations.push(record);
    allEvals.push(record);
    await writeHistory({ kind: 'eval', ...record });
    lastEval = step;
    const value = record.metrics[run.metric];
    if (better(value)) {
      best = { step, value, stale: 0 };
      bestRecord = record;
      if (bestDir) await model.save(bestDir);
    } else if (best) {
      best.stale++;
      if (run.earlyStopping !== null && best.stale >= run.earlyStopping) earlyStopped = true;
    }
    options.onEval?.(record);
  };

  // the batches from the run's position on, epoch after epoch
  let epoch = Math.floor(servedAt(startStep) / batchesPerEpoch);
  const epochBatches = (e: number) =>
    train.batches(run.batchSize, { epoch: e, seed: run.seed, shuffle: true, groupByLength: run.groupByLength });
  let batches = epochBatches(epoch);
  for (let i = servedAt(startStep) % batchesPerEpoch; i > 0; i--) batches.next();
  const take = (n: number): LabelledBatch[] => {
    const got: LabelledBatch[] = [];
    while (got.length < n) {
      const next = batches.next();
      if (next.done) batches = epochBatches(++epoch);
      else got.push(next.value);
    }
    return got;
  };

  let step = startStep;
  try {
    if (checkpoint && best && bestDir && valid) {
      // a resumed run returns its best model if it does not improve on it: put it back in bestDir
      const candidates = [out, bestDir, resolve(checkpoint.dir, '..', '..')].filter((d) => d !== undefined);
      bestRecord = await restoreBest(model, bestDir, { best, record: bestRecord, at: startStep, candidates }, valid, {
        metric: run.metric,
        epoch: epochAt(best.step),
        memoryLimit: options.memoryLimit,
      });
      if (!bestRecord) best = undefined; // lost (a run killed before it saved it): the best of this call's evaluations
    }
    while (step < steps && !signal?.aborted && !earlyStopped) {
      step++;
      const lr = learningRateAt(schedule, step);
      if (lr !== model.learningRate) model.learningRate = lr;
      const parts = take(run.accumulate);
      const started = performance.now();
      const loss = await model
        .trainTaskStep(
          parts.map((p) => p.sequences),
          parts.map((p) => p.labels),
        )
        .catch((error: unknown) => {
          if (!(error instanceof TrainingDivergedError)) throw error;
          throw new TrainingDivergedError(error.message, step, [], { cause: error });
        });
      const seconds = (performance.now() - started) / 1000;
      const examples = parts.reduce((n, p) => n + p.rows.length, 0);
      const record = { step, epoch: epochAt(step), loss, lr, examplesPerSec: examples / seconds };
      history.push(record);
      allSteps.push(record);
      timings.push({ items: examples, seconds });
      await writeHistory({ kind: 'step', ...record });
      options.onStep?.(record, steps);
      const epochEnded =
        Math.floor(servedAt(step) / batchesPerEpoch) > Math.floor(servedAt(step - 1) / batchesPerEpoch);
      if (run.evalEvery > 0 ? step % run.evalEvery === 0 : epochEnded) await evaluate(step);
      if (run.saveEvery > 0 && step % run.saveEvery === 0) await saveCheckpoint(step);
      plot?.update();
    }
    if (step === startStep) signal?.throwIfAborted();
    const stopped = signal?.aborted === true;
    if (lastEval !== step && !stopped && !earlyStopped) await evaluate(step);
    if (out && (lastSaved !== step || !lastCheckpoint)) await saveCheckpoint(step);
    if (bestDir && best && bestRecord && best.step !== step) {
      const last = model;
      model = await BertModel.load(bestDir, { device: last.device, memoryLimit: options.memoryLimit });
      last.dispose();
    }
    if (out) await model.save(out);
    await plot?.draw();
  } catch (error) {
    if (error instanceof TrainingDivergedError && historyFile) await plot?.draw();
    throw error;
  } finally {
    if (bestDir) await rm(bestDir, { recursive: true, force: true });
  }

  return {
    model,
    labels: run.labels,
    history,
    evaluations,
    summary: {
      steps: history.length,
      lastStep: step,
      loss: meanOf(history.map((r) => r.loss)),
      examplesPerSec: throughput(timings),
      device: deviceLabel(model.device),
      aborted: signal?.aborted === true && step < steps,
      earlyStopped,
      metric: run.metric,
      best: bestRecord,
      data: {
        train: train.size,
        valid: valid?.size ?? 0,
        truncated: train.counts.truncated + (valid?.counts.truncated ?? 0),
        skipped: skipped.length,
      },
    },
    checkpoint: lastCheckpoint,
  };
}
