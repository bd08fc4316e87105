/**
 * The task metrics (src/training/task-metrics.ts) are the reference tools' own: on seeded cases,
 * every number equals (to 1e-10) what scikit-learn computes for single-label classification
 * (accuracy, per-class and macro precision/recall/F1, supports, confusion matrix) and for
 * multi-label (exact match, micro and macro F1, per-label scores), what SciPy and scikit-learn
 * compute for a regression (Pearson, Spearman with tied ranks, MSE), and what seqeval (default
 * mode) computes for entities in IOB1, IOB2, IOE1, IOE2 and IOBES tags (micro precision/recall/F1,
 * token accuracy, the per-type report and `get_entities`'s spans). The reference values are in
 * __test__/fixtures/task-metrics.json, made once by bench/reference/make_metric_fixtures.py, so
 * this test needs no Python.
 */
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import {
  type ClassScores,
  classificationMetrics,
  entitiesOf,
  entityMetrics,
  multiLabelMetrics,
  regressionMetrics,
} from '../../src/training/task-metrics.js';

interface SingleCase {
  name: string;
  names: string[];
  gold: number[];
  predicted: number[];
  accuracy: number;
  macroPrecision: number;
  macroRecall: number;
  macroF1: number;
  perClass: ClassScores[];
  confusion: number[][];
}

interface MultiCase {
  name: string;
  names: string[];
  gold: number[][];
  predicted: number[][];
  exactMatch: number;
  microF1: number;
  macroF1: number;
  perClass: ClassScores[];
}

interface RegressionCase {
  name: string;
  gold: number[];
  predicted: number[];
  pearson: number;
  spearman: number;
  mse: number;
}

interface EntityCase {
  name: string;
  gold: string[][];
  predicted: string[][];
  precision: number;
  recall: number;
  f1: number;
  accuracy: number;
  perType: ClassScores[];
  goldEntities: [string, number, number][];
  predictedEntities: [string, number, number][];
}

const fixture: { single: SingleCase[]; multi: MultiCase[]; regression: RegressionCase[]; entities: EntityCase[] } =
  JSON.parse(readFileSync(new URL('../fixtures/task-metrics.json', import.meta.url), 'utf8'));

/** `actual` equals the reference `expected` to 1e-10. */
const close = (actual: number, expected: number) => expect(actual).toBeCloseTo(expected, 10);

/** The same classes, in the same order, with the same scores. */
function expectScores(actual: ClassScores[], expected: ClassScores[]) {
  expect(actual.map((s) => s.label)).toEqual(expected.map((s) => s.label));
  for (const [i, e] of expected.entries()) {
    close(actual[i].precision, e.precision);
    close(actual[i].recall, e.recall);
    close(actual[i].f1, e.f1);
    expect(actual[i].support).toBe(e.support);
  }
}

const keys = (entities: [string, number, number][]) => entities.map(([type, start, end]) => `${type} ${start} ${end}`);

describe('single-label metrics are scikit-learn’s', () => {
  it.each(fixture.single.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const m = classificationMetrics(c.predicted, c.gold, c.names);
    close(m.accuracy, c.accuracy);
    close(m.macroPrecision, c.macroPrecision);
    close(m.macroRecall, c.macroRecall);
    close(m.macroF1, c.macroF1);
    expectScores(m.perClass, c.perClass);
    expect(m.confusion).toEqual(c.confusion);
  });
});

describe('multi-label metrics are scikit-learn’s', () => {
  it.each(fixture.multi.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const m = multiLabelMetrics(c.predicted.flat(), c.gold.flat(), c.names);
    close(m.exactMatch, c.exactMatch);
    close(m.microF1, c.microF1);
    close(m.macroF1, c.macroF1);
    expectScores(m.perClass, c.perClass);
  });
});

describe('regression metrics are SciPy’s and scikit-learn’s', () => {
  it.each(fixture.regression.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const m = regressionMetrics(c.predicted, c.gold);
    close(m.pearson, c.pearson);
    close(m.spearman, c.spearman);
    close(m.mse, c.mse);
  });
});

describe('entity metrics are seqeval’s', () => {
  it.each(fixture.entities.map((c) => [c.name, c] as const))('%s', (_, c) => {
    expect(entitiesOf(c.gold)).toEqual(keys(c.goldEntities));
    expect(entitiesOf(c.predicted)).toEqual(keys(c.predictedEntities));
    const m = entityMetrics(c.predicted, c.gold);
    close(m.precision, c.precision);
    close(m.recall, c.recall);
    close(m.f1, c.f1);
    close(m.accuracy, c.accuracy);
    expectScores(m.perType, c.perType);
  });

  it('covers every scheme', () => {
    expect(fixture.entities.map((c) => c.name)).toEqual(
      expect.arrayContaining(['IOB1', 'IOB2', 'IOE1', 'IOE2', 'IOBES']),
    );
  });
});
