// The GPU checks of issue 7, run on the GPU machine by scripts/gpu-check.sh (plain JS over
// the built dist/, so the machine needs only node). Prints a JSON report:
// - which addon loaded and the devices it sees;
// - CPU-vs-GPU parity: same weights and batch, dropout 0: both losses and every gradient
//   (relative error = max |gpu − cpu| / max |cpu|, bound 1e-4);
// - the public API on 'cuda', as the test suite uses it on the CPU: a short pretraining run
//   (losses finite, MLM falling), the crane example (shapes, context-dependent vectors, the
//   same vectors as the CPU from the same weights), save → load → bit-identical encode, and
//   a RangeError for a GPU that is not there;
// - with two or more GPUs: data-parallel training over them (NCCL all-reduce) against one
//   GPU on the whole batch, dropout 0 (losses and every gradient within 1e-4);
// - sentence pairs/sec of one training step at B = 512 and B = 1 (textbook config).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BertModel, devices, encode, nativeVariant, pretrain, RESERVED_TOKENS, Vocab } from '../dist/index.js';

// TSBERT_GPU_CHECK_DEVICE=cpu runs every check with the CPU in the GPU's place: a dry run of
// this script where there is no GPU (the figures then mean nothing).
const GPU = process.env.TSBERT_GPU_CHECK_DEVICE ?? 'cuda';
const report = { variant: nativeVariant, devices: devices(), checkedDevice: GPU };
const vocab = Vocab.fromJSON({ tokens: [...RESERVED_TOKENS, ...Array.from({ length: 20256 - 5 }, (_, i) => `w${i}`)] });
const model = (device, dropout) =>
  BertModel.create(vocab, { seed: 1, device, config: dropout === undefined ? {} : { dropout } }).native;

function batch(vocab, b, l, p, seed) {
  let s = seed >>> 0;
  const next = (lo, hi) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s % (hi - lo));
  };
  const tokens = new Int32Array(b * l).fill(1),
    segments = new Int32Array(b * l),
    validLens = new Int32Array(b);
  const predPositions = new Int32Array(b * p),
    mlmWeights = new Float32Array(b * p),
    mlmLabels = new Int32Array(b * p),
    nspLabels = new Int32Array(b);
  for (let r = 0; r < b; r++) {
    const valid = next(p + 2, l + 1);
    validLens[r] = valid;
    const split = next(1, valid);
    for (let j = 0; j < valid; j++) {
      tokens[r * l + j] = next(5, vocab);
      segments[r * l + j] = j >= split ? 1 : 0;
    }
    for (let k = 0; k < p; k++) {
      predPositions[r * p + k] = next(1, valid);
      mlmWeights[r * p + k] = 1;
      mlmLabels[r * p + k] = next(5, vocab);
    }
    nspLabels[r] = r % 2;
  }
  return {
    batchSize: b,
    seqLen: l,
    numPreds: p,
    tokens,
    segments,
    validLens,
    predPositions,
    mlmWeights,
    mlmLabels,
    nspLabels,
  };
}

const rel = (a, b) => {
  let d = 0,
    m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return m === 0 ? d : d / m;
};

// TSBERT_GPU_PROFILE=1 (scripts/gpu-check.sh under nsys): only a few B = 512 steps to profile
if (process.env.TSBERT_GPU_PROFILE === '1') {
  const gpu = model(GPU);
  const input = batch(20256, 512, 64, 10, 5);
  for (let i = 0; i < 5; i++) await gpu.trainStep(input);
  process.exit(0);
}

// parity
{
  const cpu = model('cpu', 0);
  const gpu = model(GPU, 0);
  const b = batch(20256, 64, 64, 10, 3);
  const [lc, lg] = [await cpu.trainStep(b), await gpu.trainStep(b)];
  const worst = { name: '', err: 0 };
  for (const name of cpu.paramNames()) {
    if (name.endsWith('W_k.bias')) continue; // exact-zero gradient: rounding noise on both sides
    const err = rel(gpu.grad(name), cpu.grad(name));
    if (err > worst.err) Object.assign(worst, { name, err });
  }
  report.parity = {
    cpu: lc,
    gpu: lg,
    mlmRel: Math.abs(lg.mlmLoss - lc.mlmLoss) / lc.mlmLoss,
    nspRel: Math.abs(lg.nspLoss - lc.nspLoss) / lc.nspLoss,
    worstGradient: worst,
  };
  report.parity.pass = report.parity.mlmRel <= 1e-4 && report.parity.nspRel <= 1e-4 && worst.err <= 1e-4;
}

// the public API on 'cuda'
{
  const words = [
    'a crane is flying over the river',
    'the crane driver came to work',
    'he just left the house',
    'the big dog sat on the mat',
    'a small bird flew over the tree',
  ];
  let s = 7;
  const pick = (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
  const data = Array.from(
    { length: 300 },
    () => ` ${Array.from({ length: 2 + pick(3) }, () => words[pick(words.length)]).join(' . ')} . `,
  );
  const sizes = { hidden: 32, ffnHidden: 64, heads: 2, layers: 2, dropout: 0 };
  const run = await pretrain({ data, steps: 30, batchSize: 32, maxLen: 24, seed: 1, config: sizes, device: GPU });
  const h = run.history;
  const first = h.slice(0, 5).reduce((a, r) => a + r.mlmLoss, 0) / 5,
    last = h.slice(-5).reduce((a, r) => a + r.mlmLoss, 0) / 5;
  const a = encode(run.model, ['a', 'crane', 'is', 'flying']);
  const b = encode(run.model, ['a', 'crane', 'driver', 'came'], ['he', 'just', 'left']);
  const [ea, eb] = [await a, await b];
  const crane = (e) => Array.from(e.data.subarray(2 * sizes.hidden, 3 * sizes.hidden));
  const dir = mkdtempSync(join(tmpdir(), 'tsbert-gpu-'));
  await run.model.save(dir);
  const onCpu = await BertModel.load(dir, { device: 'cpu' });
  const onGpu = await BertModel.load(dir, { device: GPU });
  const [ec, eg] = [
    await encode(onCpu, ['a', 'crane', 'is', 'flying']),
    await encode(onGpu, ['a', 'crane', 'is', 'flying']),
  ];
  let missing;
  try {
    BertModel.create(run.vocab, { device: `cuda:${devices().cudaDevices}` });
  } catch (e) {
    missing = `${e.constructor.name}: ${e.message}`;
  }
  report.api = {
    summary: run.summary,
    allFinite: h.every((r) => Number.isFinite(r.mlmLoss) && Number.isFinite(r.nspLoss)),
    mlmFirst5: first,
    mlmLast5: last,
    shapes: [ea.shape, eb.shape],
    craneDiffers: crane(ea).some((x, i) => x !== crane(eb)[i]),
    reloadIdentical: eg.data.every((x, i) => x === ea.data[i]),
    cpuVsGpuRel: rel(eg.data, ec.data),
    missingGpu: missing,
  };
  report.api.pass =
    report.api.allFinite &&
    last < first &&
    report.api.craneDiffers &&
    report.api.reloadIdentical &&
    report.api.cpuVsGpuRel <= 1e-4 &&
    JSON.stringify(report.api.shapes) ===
      JSON.stringify([
        [1, 6, 32],
        [1, 10, 32],
      ]) &&
    /^RangeError/.test(missing ?? '');
}

// data parallel over every GPU (NCCL) against one GPU
{
  const n = devices().cudaDevices;
  if (n < 2) {
    report.dataParallel = { skipped: `${n} GPU(s): NCCL needs two or more` };
  } else {
    const all = Array.from({ length: n }, (_, i) => `cuda:${i}`);
    const one = model('cuda:0', 0),
      many = model(all, 0);
    const b = batch(20256, 64, 64, 10, 9);
    const [l1, ln] = [await one.trainStep(b), await many.trainStep(b)];
    const worst = { name: '', err: 0 };
    for (const name of one.paramNames()) {
      if (name.endsWith('W_k.bias')) continue;
      const err = rel(many.grad(name), one.grad(name));
      if (err > worst.err) Object.assign(worst, { name, err });
    }
    report.dataParallel = { gpus: n, one: l1, many: ln, worstGradient: worst };
    report.dataParallel.pass =
      Math.abs(ln.mlmLoss - l1.mlmLoss) / l1.mlmLoss <= 1e-4 &&
      Math.abs(ln.nspLoss - l1.nspLoss) / l1.nspLoss <= 1e-4 &&
      worst.err <= 1e-4;
  }
}

// throughput
report.throughput = {};
for (const b of [512, 1]) {
  const gpu = model(GPU);
  const input = batch(20256, b, 64, 10, 5);
  for (let i = 0; i < 3; i++) await gpu.trainStep(input);
  const steps = b === 1 ? 50 : 20;
  const t = performance.now();
  for (let i = 0; i < steps; i++) await gpu.trainStep(input);
  const ms = (performance.now() - t) / steps;
  report.throughput[`B=${b}`] = { msPerStep: ms, pairsPerSec: (b / ms) * 1000 };
}
console.log(JSON.stringify(report, null, 2));
