/**
 * A task model on held-out labelled examples, dropout off: its loss (as its training step
 * computes it) and its task's metrics (see `task-metrics.ts`), and which metric picks the best
 * model of a fine-tuning run.
 *
 * @module
 */
import type { TaskKind } from '../config.js';
import { IGNORED_LABEL, LabelledSet, labelledColumns } from '../data/labelled.js';
import type { LabelledFormat } from '../data/labelled-files.js';
import type { DataError } from '../errors.js';
import type { BertModel } from '../model.js';
import {
  type ClassificationMetrics,
  classificationMetrics,
  type EntityMetrics,
  entityMetrics,
  type MultiLabelMetrics,
  multiLabelMetrics,
  type RegressionMetrics,
  regressionMetrics,
} from './task-metrics.js';

/** A task model's evaluation on held-out examples. */
export interface TaskEvaluation {
  /** The mean loss over what the head scores (as training computes it). */
  loss: number;
  /** Examples evaluated. */
  examples: number;
  /** The figures a run's best model can be chosen by (see {@link TASK_METRICS}), and `loss`. */
  metrics: Record<string, number>;
  /** Everything computed: per-class (or per-type) scores, the confusion matrix of a classifier. */
  detail: ClassificationMetrics | MultiLabelMetrics | RegressionMetrics | EntityMetrics;
}

/** The metrics of each kind of head that can choose the best model; the first is the default. */
export const TASK_METRICS: Readonly<Record<TaskKind, readonly string[]>> = Object.freeze({
  single_label_classification: ['accuracy', 'macroF1', 'macroPrecision', 'macroRecall', 'loss'],
  multi_label_classification: ['microF1', 'macroF1', 'exactMatch', 'loss'],
  regression: ['pearson', 'spearman', 'mse', 'loss'],
  token_classification: ['f1', 'precision', 'recall', 'accuracy', 'loss'],
});

/** Whether a lower value of `metric` is better (losses and errors). */
export const lowerIsBetter = (metric: string): boolean => metric === 'loss' || metric === 'mse';

/** Examples a pass of an evaluation. */
export const EVAL_BATCH = 64;

/** The loss of one row's logits `x` (`c` of them) against its target, summed over what it scores. */
function rowLoss(kind: TaskKind, x: Float32Array, target: number | Int32Array, c: number): number {
  if (kind === 'regression') return (x[0] - (target as number)) ** 2;
  if (kind === 'multi_label_classification') {
    let sum = 0;
    const on = new Set(target as Int32Array);
    for (let k = 0; k < c; k++) {
      const y = on.has(k) ? 1 : 0;
      sum += Math.max(x[k], 0) - x[k] * y + Math.log1p(Math.exp(-Math.abs(x[k])));
    }
    return sum;
  }
  return crossEntropy(x, target as number);
}

/** −log softmax(x)[gold]. */
function crossEntropy(x: ArrayLike<number>, gold: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < x.length; k++) max = Math.max(max, x[k]);
  let sum = 0;
  for (let k = 0; k < x.length; k++) sum += Math.exp(x[k] - max);
  return Math.log(sum) + max - x[gold];
}

/** The index of the largest of `x`. */
function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let k = 1; k < x.length; k++) if (x[k] > x[best]) best = k;
  return best;
}

/** How {@link evaluateTask} reads the labelled file. */
export interface EvaluateTaskOptions {
  /** The file's layout; default from its extension. */
  format?: LabelledFormat;
  /** The text's field (default `'text'`; `'tokens'` for a token classifier). */
  textColumn?: string;
  /** The second text's field (default `'text_pair'`, when a row has it). */
  pairColumn?: string;
  /** The label's field (default `'label'`; `'tags'` for a token classifier). */
  labelColumn?: string;
  /** Joins a multi-label row's labels in a CSV or TSV field; default `','`. */
  labelSeparator?: string;
  /** Tokens an example keeps; default the model's positions. */
  maxLen?: number;
  /** Skip rows that cannot be used (a label the model does not know, …) instead of failing; default `false`. */
  skipBadRows?: boolean;
  /** Called with each bad row skipped. */
  onBadRow?: (error: DataError) => void;
  /** Examples a pass; default 64. */
  batchSize?: number;
}

/**
 * `model`'s task head on the labelled file `path` (CSV, TSV, JSON Lines or CoNLL, read as
 * `finetune` reads its data, the labels mapped by the model's label names), dropout off: the
 * loss and the task's metrics, as a fine-tuning run's evaluations report them. A model
 * without a task head is a `RangeError`; a bad row a {@link DataError} (or skipped).
 */
export async function evaluateTask(
  model: BertModel,
  path: string,
  options: EvaluateTaskOptions = {},
): Promise<TaskEvaluation> {
  const task = model.config.task;
  if (!task) throw new RangeError('model: has no task head (evaluate scores MLM and NSP for a pretrained model)');
  const token = task.kind === 'token_classification';
  const columns = labelledColumns(token, options);
  const set = await LabelledSet.read(path, token, {
    format: options.format,
    columns,
    labels: { kind: task.kind, names: [...(model.labels ?? [])] },
    tokenizer: model.tokenizer,
    maxLen: options.maxLen ?? model.config.maxPositions,
    onBadRow: options.skipBadRows ? (error) => options.onBadRow?.(error) : undefined,
  });
  return await scoreTask(model, set, options.batchSize);
}

/**
 * Evaluates `model`'s task head on `set` (its labels mapped as the head's), dropout off,
 * `batchSize` examples a pass: the loss and the task's metrics. A model without a head, or
 * with another than the set's, is a `RangeError`.
 *
 * @internal
 */
export async function scoreTask(model: BertModel, set: LabelledSet, batchSize = EVAL_BATCH): Promise<TaskEvaluation> {
  const task = model.config.task;
  const { kind, names } = set.labels;
  if (!task || task.kind !== kind || task.numLabels !== names.length) {
    throw new RangeError(
      `model: its head (${task ? `${task.kind}, ${task.numLabels} labels` : 'none'}) is not the data's (${kind}, ${names.length} labels)`,
    );
  }
  if (set.size === 0) throw new RangeError('data: no example to evaluate');
  const c = names.length;
  let lossSum = 0;
  let scored = 0;
  const predicted = new Float64Array(kind === 'multi_label_classification' ? set.size * c : set.size);
  const gold = new Float64Array(predicted.length);
  const predictedTags: string[][] = new Array(set.size);
  const goldTags: string[][] = new Array(set.size);
  for (const batch of set.batches(batchSize, { epoch: 0, seed: 0, shuffle: false, groupByLength: true })) {
    const logits = (await model.taskLogits(batch.sequences)).data;
    const l = batch.sequences.seqLen;
    for (const [r, i] of batch.rows.entries()) {
      const target = set.target(i);
      if (kind === 'token_classification') {
        const labels = target as Int32Array;
        const [p, g]: [string[], string[]] = [[], []];
        for (let t = 0; t < labels.length; t++) {
          if (labels[t] === IGNORED_LABEL) continue;
          const x = logits.subarray((r * l + t) * c, (r * l + t + 1) * c);
          lossSum += crossEntropy(x, labels[t]);
          scored++;
          p.push(names[argmax(x)]);
          g.push(names[labels[t]]);
        }
        predictedTags[i] = p;
        goldTags[i] = g;
        continue;
      }
      const x = logits.subarray(r * c, (r + 1) * c);
      lossSum += rowLoss(kind, x, target, c);
      scored += kind === 'single_label_classification' ? 1 : c;
      if (kind === 'multi_label_classification') {
        for (let k = 0; k < c; k++) predicted[i * c + k] = x[k] > 0 ? 1 : 0; // sigmoid > 0.5
        for (const k of target as Int32Array) gold[i * c + k] = 1;
      } else if (kind === 'regression') {
        predicted[i] = x[0];
        gold[i] = target as number;
      } else {
        predicted[i] = argmax(x);
        gold[i] = target as number;
      }
    }
  }
  const loss = scored === 0 ? 0 : lossSum / scored;
  const detail =
    kind === 'token_classification'
      ? entityMetrics(predictedTags, goldTags)
      : kind === 'regression'
        ? regressionMetrics(predicted, gold)
        : kind === 'multi_label_classification'
          ? multiLabelMetrics(predicted, gold, names)
          : classificationMetrics(predicted, gold, names);
  const metrics: Record<string, number> = { loss };
  for (const name of TASK_METRICS[kind]) {
    const value = (detail as unknown as Record<string, unknown>)[name];
    if (typeof value === 'number') metrics[name] = value;
  }
  return { loss, examples: set.size, metrics, detail };
}
