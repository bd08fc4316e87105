/**
 * Loss curves as SVG, drawn with Vega-Lite (the textbook's animated MLM/NSP plot, static).
 *
 * @module
 */

import { parse, View } from 'vega';
import { compile } from 'vega-lite';

import type { StepRecord } from './pretrain.js';

/** An SVG document plotting the MLM and NSP losses of `history` against the step. */
export async function lossCurvesSvg(history: readonly StepRecord[]): Promise<string> {
  const values = history.flatMap((r) => [
    { step: r.step, loss: r.mlmLoss, curve: 'MLM' },
    { step: r.step, loss: r.nspLoss, curve: 'NSP' },
  ]);
  const spec = compile({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'BERT pretraining loss',
    width: 480,
    height: 300,
    data: { values },
    mark: { type: 'line', point: history.length <= 60 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field: 'loss', type: 'quantitative', title: 'loss' },
      color: { field: 'curve', type: 'nominal', title: null },
    },
  }).spec;
  const view = new View(parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
