/**
 * The GPU checks, run on the GPU machine by `scripts/gpu-check.sh run` (bundled by
 * `scripts/gpu-check.sh pack` into one file with the library, so the machine needs only node).
 * Prints a JSON report:
 * - which addon loaded and the devices it sees;
 * - CPU-vs-GPU parity: same weights and batch, dropout 0: both losses and every gradient
 *   (relative error = max |gpu − cpu| / max |cpu|, bound 1e-4);
 * - the public API on the GPU, as the test suite uses it on the CPU: a short pretraining run
 *   (losses finite, MLM falling), the crane example (shapes, context-dependent vectors, the
 *   same vectors as the CPU from the same weights), save → load → bit-identical encode, and a
 *   RangeError for a GPU that is not there;
 * - with two or more GPUs: data-parallel training over them (NCCL all-reduce) against one GPU
 *   on the whole batch, dropout 0 (losses and every gradient within 1e-4);
 * - sentence pairs/sec of a training step at B = 512 and B = 1 (textbook config), whose
 *   weights and batches it also writes to $OUT/step-B/ for bench/reference/bench_step.py to
 *   time PyTorch on the same GPU;
 * - with `TSBERT_GPU_INFERENCE_DIR` set: `encodeSequences` of the MiniLM- and BERT-base-sized
 *   models that bench/reference/gpu_inference_ref.py made there, at B = 1 and 32 (128 tokens),
 *   sequences a second of the best call; its states of the first row go beside each model for
 *   that script's comparison with PyTorch.
 *
 * `TSBERT_GPU_CHECK_DEVICE=cpu` runs every check with the CPU in the GPU's place: a dry run
 * where there is no GPU (the figures then mean nothing). For a profiler, `TSBERT_GPU_PROFILE=train`
 * only takes 2 steps at B = 512, and `TSBERT_GPU_PROFILE=encode` only encodes the BERT-base-sized
 * model's 32 rows twice (with `TSBERT_GPU_INFERENCE_DIR`).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { rngFor, Stream } from '../src/data/random.js';
import { syntheticBatch } from '../src/data/synthetic.js';
import { RESERVED_TOKENS, Vocab } from '../src/data/vocab.js';
import { type DeviceName, devices, nativeDevices } from '../src/device.js';
import { BertModel } from '../src/model.js';
import { native, nativeVariant } from '../src/native.js';
import { PRETRAIN_DEFAULTS, pretrain } from '../src/pretrain.js';
import { encode } from '../src/tasks/encode.js';
import type { Tensor } from '../src/tensor.js';
import { idSequences, startBoth, textbookConfig, WIKITEXT2_VOCAB_SIZE } from './support.js';

const { diagnostics } = native();

const GPU = (process.env.TSBERT_GPU_CHECK_DEVICE ?? 'cuda') as DeviceName;
const OUT = process.env.OUT ?? mkdtempSync(join(tmpdir(), 'tsbert-gpu-check-'));
const V = WIKITEXT2_VOCAB_SIZE;
const report: Record<string, unknown> = { variant: nativeVariant(), devices: devices(), checkedDevice: GPU };

/** The textbook model on `device` (seed 0), as the native model whose gradients can be read. */
async function nativeModel(device: DeviceName | DeviceName[], dropout?: number) {
  const config = textbookConfig(V, dropout === undefined ? {} : { dropout });
  const dir = mkdtempSync(join(tmpdir(), 'tsbert-gpu-model-'));
  return startBoth(dir, config, PRETRAIN_DEFAULTS.lr, [batch(2, 1)], {}, nativeDevices(device));
}

/** A synthetic textbook batch of `b` rows. */
const batch = (b: number, seed: number) => syntheticBatch(V, { batchSize: b, seed });

/** max |a − b| / max |b|. */
function rel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let [d, m] = [0, 0];
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return m === 0 ? d : d / m;
}

type NativeModel = Awaited<ReturnType<typeof nativeModel>>;

/** The worst relative gradient error of `model` against `reference` (the key bias left out: its gradient is rounding noise around an exact 0). */
function worstGradient(model: NativeModel, reference: NativeModel) {
  const worst = { name: '', err: 0 };
  for (const name of diagnostics.paramNames(reference)) {
    if (name.endsWith('W_k.bias')) continue;
    const [g, r] = [diagnostics.grad(model, name), diagnostics.grad(reference, name)];
    const err = g && r ? rel(g, r) : Number.POSITIVE_INFINITY;
    if (err > worst.err) Object.assign(worst, { name, err });
  }
  return worst;
}

/** What one check found, or the error it threw (so that one failing check does not end the run). */
async function checked(check: () => Promise<unknown>): Promise<unknown> {
  try {
    return await check();
  } catch (e) {
    return { error: e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e), pass: false };
  }
}

const PROFILE = process.env.TSBERT_GPU_PROFILE;
if (PROFILE === 'train') {
  const gpu = await nativeModel(GPU);
  const input = batch(PRETRAIN_DEFAULTS.batchSize, 5);
  for (let i = 0; i < 2; i++) await gpu.trainStep(input);
  process.exit(0);
}
if (PROFILE === 'encode') {
  const dir = join(process.env.TSBERT_GPU_INFERENCE_DIR ?? '', 'bert-base');
  const model = await BertModel.load(dir, { device: GPU });
  const sequences = idSequences(dir, 32);
  for (let i = 0; i < 2; i++) await model.encodeSequences(sequences);
  process.exit(0);
}

report.parity = await checked(async () => {
  const [cpu, gpu] = [await nativeModel('cpu', 0), await nativeModel(GPU, 0)];
  const b = batch(64, 3);
  const [lc, lg] = [await cpu.trainStep(b), await gpu.trainStep(b)];
  const worst = worstGradient(gpu, cpu);
  const mlmRel = Math.abs(lg.mlmLoss - lc.mlmLoss) / lc.mlmLoss;
  const nspRel = Math.abs(lg.nspLoss - lc.nspLoss) / lc.nspLoss;
  return {
    cpu: lc,
    gpu: lg,
    mlmRel,
    nspRel,
    worstGradient: worst,
    pass: Math.max(mlmRel, nspRel, worst.err) <= 1e-4,
  };
});

report.api = await checked(async () => {
  const sentences = [
    'a crane is flying over the river',
    'the crane driver came to work',
    'he just left the house',
    'the big dog sat on the mat',
    'a small bird flew over the tree',
  ];
  const rng = rngFor(7, Stream.Synthetic);
  const data = Array.from({ length: 300 }, () => {
    const picked = Array.from({ length: 2 + rng.below(3) }, () => sentences[rng.below(sentences.length)]);
    return ` ${picked.join(' . ')} . `;
  });
  const sizes = { hidden: 32, ffnHidden: 64, heads: 2, layers: 2, dropout: 0 };
  const run = await pretrain({ data, steps: 30, batchSize: 32, maxLen: 24, seed: 1, config: sizes, device: GPU });
  const h = run.history;
  const mean = (rs: typeof h) => rs.reduce((a, r) => a + r.mlmLoss, 0) / rs.length;
  const [first, last] = [mean(h.slice(0, 5)), mean(h.slice(-5))];
  const ea = await encode(run.model, ['a', 'crane', 'is', 'flying']);
  const eb = await encode(run.model, ['a', 'crane', 'driver', 'came'], ['he', 'just', 'left']);
  const dir = mkdtempSync(join(tmpdir(), 'tsbert-gpu-'));
  await run.model.save(dir);
  const onCpu = await BertModel.load(dir, { device: 'cpu' });
  const onGpu = await BertModel.load(dir, { device: GPU });
  const [ec, eg] = [
    await encode(onCpu, ['a', 'crane', 'is', 'flying']),
    await encode(onGpu, ['a', 'crane', 'is', 'flying']),
  ];
  let missing: string | undefined;
  try {
    BertModel.create(Vocab.fromJSON({ tokens: [...RESERVED_TOKENS, 'w'] }), {
      device: `cuda:${devices().cudaDevices}`,
    });
  } catch (e) {
    missing = `${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
  const api = {
    summary: run.summary,
    allFinite: h.every((r) => Number.isFinite(r.mlmLoss) && Number.isFinite(r.nspLoss)),
    mlmFirst5: first,
    mlmLast5: last,
    shapes: [ea.shape, eb.shape],
    craneDiffers: rel(ea.token(2).data, eb.token(2).data) > 0,
    reloadIdentical: eg.data.every((x, i) => x === ea.data[i]),
    cpuVsGpuRel: rel(eg.data, ec.data),
    missingGpu: missing,
  };
  const shapesOk =
    JSON.stringify(api.shapes) ===
    JSON.stringify([
      [1, 6, 32],
      [1, 10, 32],
    ]);
  return {
    ...api,
    pass:
      api.allFinite &&
      last < first &&
      api.craneDiffers &&
      api.reloadIdentical &&
      api.cpuVsGpuRel <= 1e-4 &&
      shapesOk &&
      /^RangeError/.test(missing ?? ''),
  };
});

// data parallel over every GPU (NCCL) against one GPU
report.dataParallel = await checked(async () => {
  const n = devices().cudaDevices;
  if (n < 2) {
    return { skipped: `${n} GPU(s): NCCL needs two or more` };
  }
  const all = Array.from({ length: n }, (_, i) => `cuda:${i}` as DeviceName);
  const [one, many] = [await nativeModel('cuda:0', 0), await nativeModel(all, 0)];
  const b = batch(64, 9);
  const [l1, ln] = [await one.trainStep(b), await many.trainStep(b)];
  const worst = worstGradient(many, one);
  const lossRel = Math.max(
    Math.abs(ln.mlmLoss - l1.mlmLoss) / l1.mlmLoss,
    Math.abs(ln.nspLoss - l1.nspLoss) / l1.nspLoss,
  );
  return {
    gpus: n,
    one: l1,
    many: ln,
    worstGradient: worst,
    pass: Math.max(lossRel, worst.err) <= 1e-4,
  };
});

// throughput; the same weights and batch for PyTorch's bench_step.py
report.throughput = await checked(async () => {
  const throughput: Record<string, unknown> = {};
  for (const b of [PRETRAIN_DEFAULTS.batchSize, 1]) {
    const dir = join(OUT, `step-${b}`);
    mkdirSync(dir, { recursive: true });
    const input = batch(b, 5);
    const warmup = 3;
    const repeats = b === 1 ? 50 : 20;
    const model = await startBoth(
      dir,
      textbookConfig(V),
      PRETRAIN_DEFAULTS.lr,
      [input],
      { warmup, repeats },
      nativeDevices(GPU),
    );
    for (let i = 0; i < warmup; i++) await model.trainStep(input);
    const t = performance.now();
    for (let i = 0; i < repeats; i++) await model.trainStep(input);
    const ms = (performance.now() - t) / repeats;
    throughput[`B=${b}`] = { msPerStep: ms, pairsPerSec: (b / ms) * 1000 };
  }
  return throughput;
});

// inference: encodeSequences of the models gpu_inference_ref.py made, timed as it times PyTorch
const INFERENCE = process.env.TSBERT_GPU_INFERENCE_DIR;
if (INFERENCE) {
  const rows: Record<string, unknown> = {};
  for (const row of ['minilm', 'bert-base']) {
    const dir = join(INFERENCE, row);
    let model: BertModel | undefined; // loaded once for both batch sizes
    for (const [b, warmup, repeats] of [
      [1, 3, 20],
      [32, 3, 10],
    ]) {
      rows[`${row} B=${b}`] = await checked(async () => {
        model ??= await BertModel.load(dir, { device: GPU });
        const sequences = idSequences(dir, b);
        for (let i = 0; i < warmup; i++) await model.encodeSequences(sequences);
        const ms: number[] = [];
        let states: Tensor | undefined;
        for (let i = 0; i < repeats; i++) {
          const started = performance.now();
          states = await model.encodeSequences(sequences);
          ms.push(performance.now() - started);
        }
        if (b === 1 && states) {
          const { data } = states;
          writeFileSync(join(dir, 'tsbert-b1.f32'), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        }
        return { perSec: b / (Math.min(...ms) / 1000), ms };
      });
    }
  }
  report.inference = rows;
  writeFileSync(join(INFERENCE, 'tsbert.json'), JSON.stringify(rows));
}
console.log(JSON.stringify(report, null, 2));
