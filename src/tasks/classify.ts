/**
 * Text classification with a sequence-classification head: {@link classify}, as the
 * text-classification pipeline of transformers (and transformers.js) scores texts and pairs;
 * {@link rerank}, documents ordered by a cross-encoder's score of (query, document).
 *
 * @module
 */
import type { BertModel } from '../model.js';
import { checked, integerFrom, oneOf } from '../training/options.js';

/** A label and its score. */
export interface LabelScore {
  /** The label's name (`model.labels`). */
  label: string;
  /** Its probability (softmax or sigmoid), or the raw output (`functionToApply: 'none'`, a regression's value). */
  score: number;
}

/** How {@link classify} scores. */
export interface ClassifyOptions {
  /** Labels an input, best first; `null` for all; default 1. */
  topK?: number | null;
  /**
   * `'softmax'` over the labels, `'sigmoid'` a label, or `'none'` (the raw outputs). Default as
   * transformers: none for a regression, sigmoid for multi-label or a single label, softmax
   * otherwise.
   */
  functionToApply?: 'softmax' | 'sigmoid' | 'none';
  /** Inputs a native pass; default 32. */
  batchSize?: number;
}

/** A text, or a pair of texts (`[premise, hypothesis]`, `[query, document]`). */
export type ClassifyInput = string | readonly [string, string];

/**
 * The labels of each input, best first (`topK` of them), scored by the model's
 * sequence-classification head. Inputs longer than the model's positions are cut (a pair's
 * longer text first, as Hugging Face does).
 *
 * @example
 * ```ts
 * const model = await BertModel.load('textattack/bert-base-uncased-SST-2', { inferenceOnly: true });
 * await classify(model, ['a gripping film', 'dull and too long']);
 * // [[{ label: 'LABEL_1', score: 0.99 }], [{ label: 'LABEL_0', score: 0.98 }]]
 * ```
 */
export async function classify(
  model: BertModel,
  inputs: readonly ClassifyInput[],
  options: ClassifyOptions = {},
): Promise<LabelScore[][]> {
  const task = model.config.task;
  if (!task || task.kind === 'token_classification') {
    const has = task ? 'a token-classification head' : 'no task head';
    throw new RangeError(`model: classify needs a sequence-classification head, and this model has ${has}`);
  }
  if (!Array.isArray(inputs)) throw new TypeError('inputs: expected an array of texts or pairs of texts');
  const bad = inputs.findIndex(
    (x) => typeof x !== 'string' && !(Array.isArray(x) && x.length === 2 && x.every((t) => typeof t === 'string')),
  );
  if (bad >= 0) throw new TypeError(`inputs[${bad}]: expected a string or a pair of strings`);
  const { batchSize = 32, topK = 1 } = options;
  checked('batchSize', integerFrom(1), batchSize);
  if (topK !== null) checked('topK', integerFrom(1), topK);
  const automatic =
    task.kind === 'regression'
      ? 'none'
      : task.kind === 'multi_label_classification' || task.numLabels === 1
        ? 'sigmoid'
        : 'softmax';
  const apply = checked(
    'functionToApply',
    oneOf(['softmax', 'sigmoid', 'none'] as const),
    options.functionToApply ?? automatic,
  );
  const labels = model.labels as readonly string[]; // a task head always has its label names
  return (await headScores(model, inputs, apply, batchSize)).map((scores) => {
    const ranked = scores.map((score, i) => ({ label: labels[i], score })).sort((x, y) => y.score - x.score);
    return topK === null ? ranked : ranked.slice(0, topK);
  });
}

/** A document and its relevance to the query. */
export interface RankedDocument {
  /** Its position in the documents given. */
  index: number;
  /** The document. */
  document: string;
  /** The model's score of the (query, document) pair: the sigmoid of its one output. */
  score: number;
}

/**
 * The `documents` ordered by their relevance to `query`, most relevant first (`topK` of them,
 * default all), as a cross-encoder scores them: a sequence-classification model with one label
 * (the ms-marco MiniLM cross-encoders) reads each (query, document) pair.
 *
 * @example
 * ```ts
 * const model = await BertModel.load('cross-encoder/ms-marco-MiniLM-L6-v2', { inferenceOnly: true });
 * await rerank(model, 'how do cranes fly', ['cranes soar on thermals', 'a crane lifts steel']);
 * ```
 */
export async function rerank(
  model: BertModel,
  query: string,
  documents: readonly string[],
  options: { topK?: number; batchSize?: number } = {},
): Promise<RankedDocument[]> {
  const task = model.config.task;
  if (!task || task.kind === 'token_classification' || task.numLabels !== 1) {
    const has = task ? `a ${task.kind} head of ${task.numLabels} labels` : 'no task head';
    throw new RangeError(
      `model: rerank needs a cross-encoder (a sequence head of one label), and this model has ${has}`,
    );
  }
  if (typeof query !== 'string') throw new TypeError('query: expected a string');
  if (!Array.isArray(documents)) throw new TypeError('documents: expected an array of strings');
  const bad = documents.findIndex((d) => typeof d !== 'string');
  if (bad >= 0) throw new TypeError(`documents[${bad}]: expected a string`);
  const { topK = documents.length, batchSize = 32 } = options;
  if (documents.length > 0) checked('topK', integerFrom(1), topK);
  checked('batchSize', integerFrom(1), batchSize);
  const pairs = documents.map((d) => [query, d] as const);
  const scores = await headScores(model, pairs, 'sigmoid', batchSize);
  return documents
    .map((document, index) => ({ index, document, score: scores[index][0] }))
    .sort((x, y) => y.score - x.score)
    .slice(0, topK);
}

/** The scores of the model's sequence head for each input through `apply`, `batchSize` inputs a pass. */
async function headScores(
  model: BertModel,
  inputs: readonly ClassifyInput[],
  apply: 'softmax' | 'sigmoid' | 'none',
  batchSize: number,
): Promise<number[][]> {
  const c = model.config.task?.numLabels ?? 0;
  const passes = [];
  for (let start = 0; start < inputs.length; start += batchSize) {
    const chunk = inputs.slice(start, start + batchSize);
    const texts = model.tokenizer.encodeBatch(
      chunk.map((x) => (typeof x === 'string' ? ([x] as const) : ([x[0], x[1]] as const))),
      { maxLength: model.config.maxPositions },
    );
    passes.push(model.tokenizer.pad(texts));
  }
  const out: number[][] = [];
  for (const [p, logits] of (await model.taskLogitsOfPasses(passes)).entries()) {
    for (let row = 0; row < passes[p].batchSize; row++) {
      out.push(scored(Array.from(logits.data.subarray(row * c, (row + 1) * c)), apply));
    }
  }
  return out;
}

/** `raw` through `apply`. */
function scored(raw: number[], apply: 'softmax' | 'sigmoid' | 'none'): number[] {
  if (apply === 'none') return raw;
  if (apply === 'sigmoid') return raw.map((x) => 1 / (1 + Math.exp(-x)));
  const max = Math.max(...raw);
  const exps = raw.map((x) => Math.exp(x - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}
