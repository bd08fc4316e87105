/**
 * The metrics of a fine-tuned head on held-out examples, as the usual tools compute them:
 * accuracy, per-class and macro precision/recall/F1 and a confusion matrix (scikit-learn's
 * definitions, 0 where a ratio has no denominator); entities by seqeval's default
 * (conlleval) rules, micro-averaged, with token accuracy; Pearson's and Spearman's
 * correlations and the mean squared error of a regression.
 *
 * @module
 */

/** Precision, recall and F1 of one class or entity type. */
export interface ClassScores {
  /** The class (or entity type). */
  label: string;
  /** Right predictions of it over all predictions of it. */
  precision: number;
  /** Right predictions of it over all examples of it. */
  recall: number;
  /** Their harmonic mean. */
  f1: number;
  /** Examples (or entities) of it in the gold labels. */
  support: number;
}

/** Metrics of a single-label classifier. */
export interface ClassificationMetrics {
  /** Share of examples whose most probable class is the gold one. */
  accuracy: number;
  /** Mean of the classes' precisions. */
  macroPrecision: number;
  /** Mean of the classes' recalls. */
  macroRecall: number;
  /** Mean of the classes' F1. */
  macroF1: number;
  /** Each class's scores, in id order. */
  perClass: ClassScores[];
  /** `confusion[gold][predicted]`: counts, classes in id order. */
  confusion: number[][];
}

/** Metrics of a multi-label classifier (a label is predicted when its sigmoid is over 0.5). */
export interface MultiLabelMetrics {
  /** Share of examples whose predicted label set is exactly the gold one. */
  exactMatch: number;
  /** F1 over all (example, label) decisions together. */
  microF1: number;
  /** Mean of the labels' F1. */
  macroF1: number;
  /** Each label's scores. */
  perClass: ClassScores[];
}

/** Metrics of a regression. */
export interface RegressionMetrics {
  /** Pearson's correlation of predictions and targets. */
  pearson: number;
  /** Spearman's rank correlation (ties get their mean rank). */
  spearman: number;
  /** Mean squared error. */
  mse: number;
}

/** Metrics of a token classifier (over words: each word's first sub-word). */
export interface EntityMetrics {
  /** Entities predicted exactly (type and span) over entities predicted. */
  precision: number;
  /** Entities predicted exactly over gold entities. */
  recall: number;
  /** Their harmonic mean. */
  f1: number;
  /** Share of words tagged right. */
  accuracy: number;
  /** Each entity type's scores. */
  perType: ClassScores[];
}

const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);
const harmonic = (p: number, r: number) => (p + r === 0 ? 0 : (2 * p * r) / (p + r));
const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

/** Scores from true positives, predicted and gold counts. */
function scores(label: string, right: number, predicted: number, gold: number): ClassScores {
  const precision = ratio(right, predicted);
  const recall = ratio(right, gold);
  return { label, precision, recall, f1: harmonic(precision, recall), support: gold };
}

/** Single-label metrics of `predicted` against `gold` class ids, for classes `names`. */
export function classificationMetrics(
  predicted: ArrayLike<number>,
  gold: ArrayLike<number>,
  names: readonly string[],
): ClassificationMetrics {
  const k = names.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let right = 0;
  for (let i = 0; i < gold.length; i++) {
    confusion[gold[i]][predicted[i]]++;
    if (gold[i] === predicted[i]) right++;
  }
  const perClass = names.map((name, c) => {
    const column = confusion.reduce((n, row) => n + row[c], 0);
    const row = confusion[c].reduce((a, b) => a + b, 0);
    return scores(name, confusion[c][c], column, row);
  });
  return {
    accuracy: ratio(right, gold.length),
    macroPrecision: mean(perClass.map((s) => s.precision)),
    macroRecall: mean(perClass.map((s) => s.recall)),
    macroF1: mean(perClass.map((s) => s.f1)),
    perClass,
    confusion,
  };
}

/** Multi-label metrics: `predicted` and `gold` are `rows × names.length` 0/1 values. */
export function multiLabelMetrics(
  predicted: ArrayLike<number>,
  gold: ArrayLike<number>,
  names: readonly string[],
): MultiLabelMetrics {
  const k = names.length;
  const rows = gold.length / k;
  const tp = new Array<number>(k).fill(0);
  const pp = new Array<number>(k).fill(0);
  const gp = new Array<number>(k).fill(0);
  let exact = 0;
  for (let r = 0; r < rows; r++) {
    let same = true;
    for (let c = 0; c < k; c++) {
      const p = predicted[r * k + c] > 0 ? 1 : 0;
      const g = gold[r * k + c] > 0 ? 1 : 0;
      tp[c] += p & g;
      pp[c] += p;
      gp[c] += g;
      if (p !== g) same = false;
    }
    if (same) exact++;
  }
  const perClass = names.map((name, c) => scores(name, tp[c], pp[c], gp[c]));
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const micro = scores('all', sum(tp), sum(pp), sum(gp));
  return { exactMatch: ratio(exact, rows), microF1: micro.f1, macroF1: mean(perClass.map((s) => s.f1)), perClass };
}

/** Pearson's correlation (0 when either side is constant). */
function pearsonOf(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i] / n;
    my += y[i] / n;
  }
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? 0 : sxy / Math.sqrt(sxx * syy);
}

/** 1-based ranks, ties given their mean rank. */
function ranks(x: ArrayLike<number>): Float64Array {
  const order = Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[a] - x[b]);
  const out = new Float64Array(x.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && x[order[j + 1]] === x[order[i]]) j++;
    for (let k = i; k <= j; k++) out[order[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return out;
}

/** Regression metrics of `predicted` against `gold`. */
export function regressionMetrics(predicted: ArrayLike<number>, gold: ArrayLike<number>): RegressionMetrics {
  let se = 0;
  for (let i = 0; i < gold.length; i++) se += (predicted[i] - gold[i]) ** 2;
  return {
    pearson: pearsonOf(predicted, gold),
    spearman: pearsonOf(ranks(predicted), ranks(gold)),
    mse: ratio(se, gold.length),
  };
}

/** A tag's prefix (`B`, `I`, `E`, `S`, `O`; BILOU's `L` and `U` read as `E` and `S`) and its type. */
function splitTag(tag: string): [string, string] {
  if (tag === 'O') return ['O', '_'];
  const dash = tag.indexOf('-');
  const prefix = dash < 0 ? tag[0] : tag.slice(0, dash);
  const type = dash < 0 ? tag.slice(1) || '_' : tag.slice(dash + 1) || '_';
  const bilou: Record<string, string> = { L: 'E', U: 'S' };
  return [bilou[prefix] ?? prefix, type];
}

/**
 * The entities of sentences of tags, as seqeval's `get_entities` finds them (conlleval's
 * rules: an `I-` after `O` or after another type starts an entity): `type start end` keys,
 * positions over the sentences end to end.
 */
export function entitiesOf(sentences: readonly (readonly string[])[]): string[] {
  const tags = sentences.flatMap((s) => [...s, 'O']);
  const found: string[] = [];
  let prevTag = 'O';
  let prevType = '';
  let begin = 0;
  for (let i = 0; i <= tags.length; i++) {
    const [tag, type] = splitTag(i < tags.length ? tags[i] : 'O');
    const ends =
      prevTag === 'E' ||
      prevTag === 'S' ||
      ((prevTag === 'B' || prevTag === 'I') && (tag === 'B' || tag === 'S' || tag === 'O')) ||
      (prevTag !== 'O' && prevTag !== '.' && prevType !== type);
    if (ends) found.push(`${prevType} ${begin} ${i - 1}`);
    const starts =
      tag === 'B' ||
      tag === 'S' ||
      ((prevTag === 'E' || prevTag === 'S' || prevTag === 'O') && (tag === 'E' || tag === 'I')) ||
      (tag !== 'O' && tag !== '.' && prevType !== type);
    if (starts) begin = i;
    prevTag = tag;
    prevType = type;
  }
  return found;
}

/** Entity metrics of predicted against gold tag sentences (of equal lengths). */
export function entityMetrics(
  predicted: readonly (readonly string[])[],
  gold: readonly (readonly string[])[],
): EntityMetrics {
  const goldEntities = entitiesOf(gold);
  const predictedEntities = new Set(entitiesOf(predicted));
  const typeOf = (key: string) => key.slice(0, key.indexOf(' '));
  const types = [...new Set([...goldEntities, ...predictedEntities].map(typeOf))].sort();
  const right = goldEntities.filter((e) => predictedEntities.has(e));
  const count = (keys: Iterable<string>, type: string) => [...keys].filter((k) => typeOf(k) === type).length;
  const all = scores('all', right.length, predictedEntities.size, goldEntities.length);
  let words = 0;
  let tagged = 0;
  for (const [s, sentence] of gold.entries()) {
    for (const [w, tag] of sentence.entries()) {
      words++;
      if (predicted[s][w] === tag) tagged++;
    }
  }
  return {
    precision: all.precision,
    recall: all.recall,
    f1: all.f1,
    accuracy: ratio(tagged, words),
    perType: types.map((t) => scores(t, count(right, t), count(predictedEntities, t), count(goldEntities, t))),
  };
}
