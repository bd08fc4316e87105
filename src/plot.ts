/**
 * Loss curves as SVG, drawn with Vega-Lite (the textbook's animated MLM/NSP plot): the
 * training losses a step, and the held-out losses at each evaluation.
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
  // loaded when a plot is drawn: Vega is ESM with top-level await, which require() of the library could not load
  const [{ parse, View }, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const spec = compile({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'BERT pretraining loss',
    width: 480,
    height: 300,
    data: { values },
    mark: { type: 'line', point: steps.length <= 60 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field: 'loss', type: 'quantitative', title: 'loss' },
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
