/**
 * Loss curves as SVG, drawn with Vega-Lite (the textbook's animated MLM/NSP plot): the
 * training losses a step, and the held-out losses (and a fine-tuning run's metric) at each
 * evaluation.
 *
 * @module
 */

import type { EvalRecord, StepRecord } from './training/history.js';

/** Points a curve is drawn with at most: longer histories are averaged over runs of steps. */
const MAX_POINTS = 1000;

/** `records` averaged over consecutive runs so that at most {@link MAX_POINTS} remain. */
function thinned(records: readonly StepRecord[]): { step: number; mlm: number; nsp: number }[] {
  const every = Math.ceil(records.length / MAX_POINTS);
  const out: { step: number; mlm: number; nsp: number }[] = [];
  for (let i = 0; i < records.length; i += every) {
    const run = records.slice(i, i + every);
    const mean = (f: (r: StepRecord) => number) => run.reduce((s, r) => s + f(r), 0) / run.length;
    out.push({ step: run[run.length - 1].step, mlm: mean((r) => r.mlmLoss), nsp: mean((r) => r.nspLoss) });
  }
  return out;
}

/** An SVG document plotting the MLM and NSP losses of `steps` (and of `evals`, held out) against the step. */
export async function lossCurvesSvg(steps: readonly StepRecord[], evals: readonly EvalRecord[] = []): Promise<string> {
  const values = [
    ...thinned(steps).flatMap((r) => [
      { step: r.step, loss: r.mlm, curve: 'MLM (train)' },
      { step: r.step, loss: r.nsp, curve: 'NSP (train)' },
    ]),
    ...evals.flatMap((r) => [
      { step: r.step, loss: r.mlmLoss, curve: 'MLM (held out)' },
      { step: r.step, loss: r.nspLoss, curve: 'NSP (held out)' },
    ]),
  ];
  return await curvesSvg('BERT pretraining loss', 'loss', values, steps.length <= 60);
}

/**
 * An SVG document plotting a fine-tuning run: the training loss of `steps`, and at each of
 * `evals` the held-out loss and the metric that picks the best model (`metric`, read from
 * each evaluation's `metrics`).
 */
export async function fineTuneCurvesSvg(
  steps: readonly { step: number; loss: number }[],
  evals: readonly { step: number; loss: number; metrics: Record<string, number> }[],
  metric: string,
): Promise<string> {
  const every = Math.ceil(steps.length / MAX_POINTS);
  const train: { step: number; value: number; curve: string }[] = [];
  for (let i = 0; i < steps.length; i += every) {
    const run = steps.slice(i, i + every);
    train.push({
      step: run[run.length - 1].step,
      value: run.reduce((s, r) => s + r.loss, 0) / run.length,
      curve: 'loss (train)',
    });
  }
  const values = [
    ...train.map((r) => ({ step: r.step, loss: r.value, curve: r.curve })),
    ...evals.flatMap((r) => [
      { step: r.step, loss: r.loss, curve: 'loss (held out)' },
      { step: r.step, loss: r.metrics[metric], curve: `${metric} (held out)` },
    ]),
  ];
  return await curvesSvg('BERT fine-tuning', 'loss and metric', values, steps.length <= 60);
}

/** Lines of `values` (`step`, `loss`, `curve`) against the step as an SVG document, held-out curves dashed. */
async function curvesSvg(
  title: string,
  yTitle: string,
  values: { step: number; loss: number; curve: string }[],
  points: boolean,
): Promise<string> {
  // loaded when a plot is drawn: Vega is ESM with top-level await, which require() of the library could not load
  const [{ parse, View }, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const spec = compile({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 480,
    height: 300,
    data: { values },
    mark: { type: 'line', point: points },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field: 'loss', type: 'quantitative', title: yTitle },
      color: { field: 'curve', type: 'nominal', title: null },
      strokeDash: {
        condition: { test: "indexof(datum.curve, 'held out') >= 0", value: [6, 3] },
        value: [1, 0],
      },
    },
  }).spec;
  const view = new View(parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
