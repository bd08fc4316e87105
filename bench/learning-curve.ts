/**
 * `npm run bench:curve`: the same learning curve from tsbert and from the PyTorch reference
 * (bench/reference/learning_curve.py). Textbook model, vocabulary and maxLen (WikiText-2,
 * minFreq 5, L = 64), B = 64, the textbook's Adam lr, dropout 0 so both
 * sides compute the same function; identical initial weights (tsbert's, loaded in PyTorch by
 * name) and the identical 200 batches (the first 200 of epoch 0, seed 0, written once for
 * Python). Per-step losses from both; the verdict: the final MLM and NSP losses agree within 2%,
 * both at step 200 and as the mean of the last 10 steps of each curve. Draws both curves of both
 * implementations on one plot, bench/learning-curve.svg. Exits 0 with a message when
 * WikiText-2 is absent; 1 on FAIL.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { PRETRAIN_DEFAULTS } from '../src/pretrain.js';
import { outDir, runPython, startBoth, textbookBatches, textbookConfig, venvPython, WIKITEXT } from './support.js';

const STEPS = 200;
const B = 64;
const LR = PRETRAIN_DEFAULTS.lr;
const LAST = 10;
const TOLERANCE = 0.02;
const SVG = join(import.meta.dirname, 'learning-curve.svg');

interface Curve {
  mlm: number[];
  nsp: number[];
  seconds: number;
}

if (!existsSync(WIKITEXT)) {
  console.log(`bench:curve: ${WIKITEXT} is absent (no WikiText-2 beside the repository); nothing to compare`);
  process.exit(0);
}
const python = venvPython();
const dir = outDir('curve');

const { vocabSize, batches, source } = await textbookBatches(B, STEPS);
const config = textbookConfig(vocabSize, { dropout: 0 });
console.log(
  `learning curve: tsbert against PyTorch (bench/reference/tsbert_ref.py), ${STEPS} steps, float32 on the CPU`,
);
console.log(`data: ${source}; vocabulary ${vocabSize}`);
console.log(
  `config: hidden ${config.hidden}, FFN ${config.ffnHidden}, ${config.heads} heads, ${config.layers} layers, dropout 0; B = ${B}, L = ${batches[0].seqLen}, P = ${batches[0].numPreds}; Adam lr ${LR}; identical initial weights (tsbert's, seed 0)`,
);

const model = await startBoth(dir, config, LR, batches, { steps: STEPS });

const ours: Curve = { mlm: [], nsp: [], seconds: 0 };
const started = performance.now();
for (let i = 0; i < STEPS; i++) {
  const { mlmLoss, nspLoss } = await model.trainStep(batches[i]);
  ours.mlm.push(mlmLoss);
  ours.nsp.push(nspLoss);
  if ((i + 1) % 50 === 0) console.log(`tsbert step ${i + 1}: mlm ${mlmLoss.toFixed(4)}, nsp ${nspLoss.toFixed(4)}`);
}
ours.seconds = (performance.now() - started) / 1000;
writeFileSync(join(dir, 'tsbert.json'), `${JSON.stringify(ours)}\n`);

runPython(python, 'learning_curve.py', ['--dir', dir, '--svg', SVG]);
const torch = JSON.parse(readFileSync(join(dir, 'torch.json'), 'utf8')) as Curve;

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const tail = (xs: number[]) => mean(xs.slice(-LAST));
const f = (x: number) => x.toFixed(4);
console.log('');
console.log('| step | tsbert MLM | PyTorch MLM | tsbert NSP | PyTorch NSP |');
console.log('| ---: | ---: | ---: | ---: | ---: |');
for (const s of [1, 2, 3, 10, 25, 50, 100, 150, 200]) {
  console.log(
    `| ${s} | ${f(ours.mlm[s - 1])} | ${f(torch.mlm[s - 1])} | ${f(ours.nsp[s - 1])} | ${f(torch.nsp[s - 1])} |`,
  );
}
const final = {
  mlm: { ours: tail(ours.mlm), torch: tail(torch.mlm) },
  nsp: { ours: tail(ours.nsp), torch: tail(torch.nsp) },
};
const relDiff = (x: { ours: number; torch: number }) => Math.abs(x.ours - x.torch) / x.torch;
console.log(
  `| mean of steps ${STEPS - LAST + 1}–${STEPS} | ${f(final.mlm.ours)} | ${f(final.mlm.torch)} | ${f(final.nsp.ours)} | ${f(final.nsp.torch)} |`,
);
console.log('');
const firstApart = (a: number[], b: number[], tol: number) =>
  a.findIndex((x, i) => Math.abs(x - b[i]) > tol * Math.abs(b[i])) + 1;
console.log(
  `steps until the curves first differ by more than 0.1%: MLM ${firstApart(ours.mlm, torch.mlm, 1e-3) || 'never'}, NSP ${firstApart(ours.nsp, torch.nsp, 1e-3) || 'never'}` +
    ` (same function and data; float32 differences grow as training goes on)`,
);
console.log(`time for ${STEPS} steps: tsbert ${ours.seconds.toFixed(1)} s, PyTorch ${torch.seconds.toFixed(1)} s`);
console.log(`plot: ${SVG}`);
console.log('');
const last = {
  mlm: { ours: ours.mlm[STEPS - 1], torch: torch.mlm[STEPS - 1] },
  nsp: { ours: ours.nsp[STEPS - 1], torch: torch.nsp[STEPS - 1] },
};
const pct = (x: { ours: number; torch: number }) => `${(100 * relDiff(x)).toFixed(2)}%`;
const ok = [final.mlm, final.nsp, last.mlm, last.nsp].every((x) => relDiff(x) <= TOLERANCE);
console.log(
  `${ok ? 'PASS' : 'FAIL'}: final losses differ by ${pct(final.mlm)} (MLM) and ${pct(final.nsp)} (NSP) as the mean of the last ${LAST} steps of each curve,` +
    ` ${pct(last.mlm)} and ${pct(last.nsp)} at step ${STEPS}; bound ${100 * TOLERANCE}%`,
);
if (!ok) process.exitCode = 1;
