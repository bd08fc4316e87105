/**
 * `npm run bench:inference [-- --threads N --rounds N --rows minilm,bert-base --dtypes f32,q8]`: issue 25's goals
 * — tsbert's CPU inference against onnxruntime with its BERT fusions
 * (`onnxruntime.transformers.optimizer.optimize_model(model_type='bert', num_heads,
 * hidden_size)`), the same number of threads each (default: every core), in the same run:
 *
 * - all-MiniLM-L6-v2 `embed` (mean pooling, L2 normalisation, tokenization included on both
 *   sides) of 1000 WikiText-2 validation sentences sorted by token length, at batch 32, and of
 *   the first 200 at batch 1: sentences/sec. onnxruntime runs the model exported to ONNX and
 *   fused, with transformers' fast tokenizer and the pooling in numpy.
 * - a BERT-base-sized model with random weights (bert-base-uncased's config.json, made once by
 *   the Python side), the last hidden states of fixed random ids, 128 tokens, at batch 1 and
 *   32: sequences/sec.
 * - the textbook model's encode at B = 1 is `npm run bench:peers`'s, not repeated here.
 *
 * Each row in two dtypes (`--dtypes`, default both): f32, and int8 — tsbert loaded with
 * `{ dtype: 'q8' }` (int8 weights per output channel, activations per row, int32 sums; its
 * kernel reported) against onnxruntime's dynamically quantised model
 * (`onnxruntime.quantization.quantize_dynamic(<the fused model>, weight_type=QuantType.QInt8)`,
 * made once beside the fused one; how, in its quantized.json, printed at the end).
 *
 * Rounds alternate: each runs every implementation once on every row, the order of the
 * implementations rotated a round; each job is a fresh process (tsbert: bench/inference-job.ts
 * compiled to JavaScript and run by plain `node`, as an application would run tsbert; onnxruntime: bench/reference/inference_ref.py run), so its peak RSS is its own. A job's figure
 * is its best timed pass after warm-up; a row's is the median of the rounds (the range
 * printed). Checked in the same run (the batches of 32): f32 — the MiniLM embeddings of both
 * sides (least cosine over the 1000 sentences ≥ 0.9999) and the BERT-base states (max abs
 * difference ≤ 1e-3); q8 — tsbert's q8 MiniLM embeddings against its f32 ones (least cosine ≥
 * 0.99, the mean printed), and, for comparison without a verdict, onnxruntime int8's against
 * its f32 ones and both sides' q8 BERT-base states against their f32 ones (cosine per token).
 * With q8 but not f32 in `--dtypes`, the f32 outputs come from one untimed f32 job each first.
 * Prints markdown tables: each goal's verdict (speed ≥ 1.0× onnxruntime's and peak RSS ≤
 * onnxruntime's, in each dtype), q8 against f32 on each side, tsbert's resident memory as a job
 * goes, the checks; writes bench/out/inference/results.json. Exit status 1 when a job failed or
 * a check did not pass (a goal not met is a verdict, not a failure).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';

import { Command } from 'commander';
import { compiledScript } from './compiled-script.js';
import {
  BENCH_DTYPES,
  listOf,
  median,
  miniLMFolder,
  outDir,
  positiveInteger,
  runPython,
  validationSentences,
  venvPython,
  WIKITEXT_VALID,
} from './support.js';

const SENTENCES = 1000;
/** tsbert's job, compiled to JavaScript: run without a TypeScript loader in its memory. */
const JOB = await compiledScript(join(import.meta.dirname, 'inference-job.ts'));
const ROWS = ['minilm', 'bert-base'] as const;
type Row = (typeof ROWS)[number];
const IMPLS = ['tsbert', 'onnxruntime'] as const;
type Impl = (typeof IMPLS)[number];
const DTYPES = BENCH_DTYPES;
type Dtype = (typeof DTYPES)[number];

const flags = new Command('bench:inference')
  .option('--threads <n>', 'threads for every implementation', positiveInteger, availableParallelism())
  .option('--rounds <n>', 'rounds (each runs every implementation once on every row)', positiveInteger, 3)
  .option('--rows <list>', `comma-separated rows: ${ROWS.join(',')}`, listOf(ROWS), [...ROWS])
  .option('--dtypes <list>', `comma-separated dtypes: ${DTYPES.join(',')} (q8: int8 on both sides)`, listOf(DTYPES), [
    ...DTYPES,
  ])
  .parse()
  .opts<{ threads: number; rounds: number; rows: Row[]; dtypes: Dtype[] }>();
const dtypes = DTYPES.filter((d) => flags.dtypes.includes(d));

const python = venvPython();
const dir = outDir('inference');
const minilm = miniLMFolder('bench:inference');
let rows = flags.rows;
if (rows.includes('minilm') && !existsSync(WIKITEXT_VALID)) {
  console.log(`bench:inference: ${WIKITEXT_VALID} is absent (no WikiText-2 beside the repository); no MiniLM row`);
  rows = rows.filter((r) => r !== 'minilm');
}
if (rows.length === 0) process.exit(0);
if (rows.includes('minilm')) writeFileSync(join(dir, 'sentences.json'), JSON.stringify(validationSentences(SENTENCES)));
// the exports, fusions and quantised models (and the BERT-base-sized model), made once and cached under `dir`
const prepareArgs = ['--rows', rows.join(','), '--dtypes', dtypes.join(',')];
runPython(python, 'inference_ref.py', ['prepare', '--dir', dir, '--minilm', minilm, ...prepareArgs]);

interface Cell {
  row: Row;
  batch: number;
  dtype: Dtype;
  /** Whether each side writes its last result (float32) for the checks: the batches of 32. */
  saves: boolean;
}
const BATCHES: Record<Row, number[]> = { minilm: [32, 1], 'bert-base': [1, 32] };
const cells: Cell[] = rows.flatMap((row) =>
  BATCHES[row].flatMap((batch) => dtypes.map((dtype) => ({ row, batch, dtype, saves: batch === 32 }))),
);
/** The f32 outputs the q8 checks compare with, when f32 is not timed: one untimed job each. */
const references: Cell[] = dtypes.includes('f32')
  ? []
  : rows.map((row) => ({ row, batch: 32, dtype: 'f32', saves: true }));
const LABELS: Record<Row, { what: string; unit: string }> = {
  minilm: { what: 'all-MiniLM-L6-v2 embed', unit: 'sentences' },
  'bert-base': { what: 'BERT-base-sized encode, 128 tokens', unit: 'sequences' },
};
const savePath = (impl: Impl, c: { row: Row; batch: number; dtype: Dtype }) =>
  join(dir, `${impl}-${c.row}-b${c.batch}-${c.dtype}.f32`);
for (const c of [...cells, ...references]) for (const impl of IMPLS) rmSync(savePath(impl, c), { force: true });

interface Job {
  perSec: number;
  seconds: number[];
  peakRssMiB: number;
  /** tsbert q8: the int8 kernel. */
  kernel?: string;
  /** tsbert: resident memory after loading (and JavaScript's buffers then), the first pass, the end. */
  rssMiB?: { loaded: number; arrayBuffers: number; firstPass: number; end: number };
  fusions?: Record<string, number>;
  /** onnxruntime q8: how the quantised model was made (its quantized.json). */
  quantized?: { source: string; extra_options: Record<string, string>; errors: string[]; ops: Record<string, number> };
  versions?: Record<string, string>;
}

/** One job of `impl` on `cell` in a fresh process; undefined when it failed (said why). */
function runJob(impl: Impl, c: Cell, extra: string[] = []): Job | undefined {
  const args = [
    '--row',
    c.row,
    '--dtype',
    c.dtype,
    '--batch-size',
    String(c.batch),
    '--threads',
    String(flags.threads),
  ];
  if (c.saves) args.push('--save', savePath(impl, c));
  args.push(...extra);
  const r =
    impl === 'tsbert'
      ? spawnSync(process.execPath, [JOB, '--dir', dir, '--minilm', minilm, ...args], {
          encoding: 'utf8',
          env: { ...process.env, RAYON_NUM_THREADS: String(flags.threads) },
        })
      : spawnSync(
          python,
          [join(import.meta.dirname, 'reference/inference_ref.py'), 'run', '--dir', dir, '--minilm', minilm, ...args],
          { encoding: 'utf8' },
        );
  if (r.status !== 0) {
    const why = r.error?.message ?? `exit status ${r.status}, signal ${r.signal}`;
    console.error(
      `${impl} ${c.row} ${c.dtype} B = ${c.batch} failed (${why}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`,
    );
    return undefined;
  }
  return JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Job;
}

console.log(
  `bench:inference: ${flags.threads} thread(s) each, ${flags.rounds} round(s), dtypes ${dtypes.join(',')}, CPU ${cpus()[0]?.model ?? 'unknown'}`,
);
let failures = 0;
for (const c of references) {
  for (const impl of IMPLS) {
    if (!runJob(impl, c, ['--repeats', '1'])) failures++;
  }
  console.error(`${c.row} f32 B = ${c.batch}: the f32 outputs for the q8 checks (one untimed job each)`);
}
const jobs = new Map<Cell, Record<Impl, Job[]>>(cells.map((c) => [c, { tsbert: [], onnxruntime: [] }]));
for (let round = 0; round < flags.rounds; round++) {
  for (const c of cells) {
    const order = IMPLS.map((_, i) => IMPLS[(i + round) % IMPLS.length]);
    const said: string[] = [];
    for (const impl of order) {
      const job = runJob(impl, c);
      if (!job) {
        failures++;
        continue;
      }
      jobs.get(c)?.[impl].push(job);
      said.push(`${impl} ${job.perSec.toFixed(1)}/s, ${job.peakRssMiB.toFixed(0)} MiB`);
    }
    console.error(`round ${round + 1}/${flags.rounds}, ${c.row} ${c.dtype} B = ${c.batch}: ${said.join('; ')}`);
  }
}

interface Figure {
  /** The median of the rounds' figures. */
  perSec: number;
  /** The slowest and fastest round's. */
  range: [number, number];
  /** The median of the rounds' peak RSS. */
  peakRssMiB: number;
  rounds: { perSec: number; peakRssMiB: number; seconds: number[] }[];
}
function figure(list: Job[]): Figure | undefined {
  if (list.length === 0) return undefined;
  const speeds = list.map((j) => j.perSec);
  return {
    perSec: median(speeds),
    range: [Math.min(...speeds), Math.max(...speeds)],
    peakRssMiB: median(list.map((j) => j.peakRssMiB)),
    rounds: list.map(({ perSec, peakRssMiB, seconds }) => ({ perSec, peakRssMiB, seconds })),
  };
}
const shown = (f: Figure | undefined) =>
  f ? `${f.perSec.toFixed(1)} (${f.range.map((v) => v.toFixed(1)).join('–')})` : 'failed';
const mib = (f: Figure | undefined) => (f ? `${f.peakRssMiB.toFixed(0)} MiB` : '—');
const kernelOf = (c: Cell) => jobs.get(c)?.tsbert.find((j) => j.kernel)?.kernel;
const dtypeShown = (c: Cell) => (c.dtype === 'q8' ? `q8 (tsbert ${kernelOf(c) ?? '?'}; onnxruntime int8)` : 'f32');

console.log('');
console.log(
  '| row | dtype | batch | tsbert /s (range) | onnxruntime /s (range) | tsbert / onnxruntime | peak RSS tsbert | peak RSS onnxruntime | goal: ≥ 1.0× and RSS ≤ |',
);
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
const figures = new Map<Cell, { tsbert?: Figure; onnxruntime?: Figure }>();
const results = cells.map((c) => {
  const lists = jobs.get(c) as Record<Impl, Job[]>;
  const [t, o] = [figure(lists.tsbert), figure(lists.onnxruntime)];
  figures.set(c, { tsbert: t, onnxruntime: o });
  const ratio = t && o ? t.perSec / o.perSec : undefined;
  let verdict = 'n/a';
  if (t && o && ratio !== undefined) {
    const missed = [...(ratio >= 1 ? [] : ['speed']), ...(t.peakRssMiB <= o.peakRssMiB ? [] : ['memory'])];
    verdict = missed.length === 0 ? 'PASS' : `FAIL (${missed.join(', ')})`;
  }
  const { what, unit } = LABELS[c.row];
  console.log(
    `| ${what} (${unit}/s) | ${dtypeShown(c)} | ${c.batch} | ${shown(t)} | ${shown(o)} | ${ratio === undefined ? '—' : `${ratio.toFixed(2)}×`} | ${mib(t)} | ${mib(o)} | ${verdict} |`,
  );
  const kernel = kernelOf(c);
  return { row: c.row, dtype: c.dtype, batch: c.batch, unit, kernel, tsbert: t, onnxruntime: o, ratio, verdict };
});

// each side's q8 against its own f32 (when both were timed)
const pairs = cells
  .filter((c) => c.dtype === 'q8')
  .map((q) => [cells.find((f) => f.dtype === 'f32' && f.row === q.row && f.batch === q.batch), q] as const)
  .filter((pair): pair is readonly [Cell, Cell] => pair[0] !== undefined);
if (pairs.length > 0) {
  console.log('');
  console.log(
    '| row | batch | tsbert q8 / f32 speed | onnxruntime int8 / f32 speed | peak RSS q8 − f32: tsbert | onnxruntime |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [f, q] of pairs) {
    const side = (impl: Impl) => {
      const [a, b] = [figures.get(f)?.[impl], figures.get(q)?.[impl]];
      return a && b
        ? { speed: `${(b.perSec / a.perSec).toFixed(2)}×`, rss: `${(b.peakRssMiB - a.peakRssMiB).toFixed(0)} MiB` }
        : { speed: '—', rss: '—' };
    };
    const [t, o] = [side('tsbert'), side('onnxruntime')];
    console.log(`| ${LABELS[f.row].what} | ${f.batch} | ${t.speed} | ${o.speed} | ${t.rss} | ${o.rss} |`);
  }
}

// where tsbert's memory goes, as a job runs (the last round's job)
console.log('');
console.log(
  '| tsbert job | resident after load (JS buffers then) | after the first pass | at the end | peak (ru_maxrss) |',
);
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const c of cells) {
  const job = jobs.get(c)?.tsbert.at(-1);
  const r = job?.rssMiB;
  if (!job || !r) continue;
  console.log(
    `| ${c.row} ${c.dtype} B = ${c.batch} | ${r.loaded.toFixed(0)} MiB (${r.arrayBuffers.toFixed(0)} MiB) | ${r.firstPass.toFixed(0)} MiB | ${r.end.toFixed(0)} MiB | ${job.peakRssMiB.toFixed(0)} MiB |`,
  );
}

/** Little-endian float32 values of `path`, or undefined when a job did not write it. */
const readF32 = (path: string) => {
  if (!existsSync(path)) return undefined;
  const bytes = readFileSync(path);
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
};
/** The least and mean cosine of `a`'s and `b`'s rows of `width` values; undefined without both. */
function cosines(a: Float32Array | undefined, b: Float32Array | undefined, width: number) {
  if (a === undefined || b === undefined || a.length !== b.length || a.length % width !== 0) return undefined;
  const n = a.length / width;
  let [least, sum] = [1, 0];
  for (let i = 0; i < n; i++) {
    let [dot, na, nb] = [0, 0, 0];
    for (let j = i * width; j < (i + 1) * width; j++) {
      dot += a[j] * b[j];
      na += a[j] * a[j];
      nb += b[j] * b[j];
    }
    const cos = dot / Math.sqrt(na * nb);
    least = Math.min(least, cos);
    sum += cos;
  }
  return { least, mean: sum / n };
}
interface Check {
  what: string;
  measured: number | undefined;
  mean?: number;
  /** The limit of a check with a verdict; none for one shown for comparison. */
  limit?: number;
  ok?: boolean;
}
const checks: Check[] = [];
const output = (impl: Impl, row: Row, dtype: Dtype) => readF32(savePath(impl, { row, batch: 32, dtype }));
const HIDDEN: Record<Row, number> = { minilm: 384, 'bert-base': 768 };
const savedRows = [...new Set([...cells, ...references].filter((c) => c.saves).map((c) => c.row))];
for (const row of savedRows) {
  const timed = (dtype: Dtype) => cells.some((c) => c.row === row && c.saves && c.dtype === dtype);
  if (timed('f32') && row === 'minilm') {
    const c = cosines(output('tsbert', row, 'f32'), output('onnxruntime', row, 'f32'), HIDDEN[row]);
    const what = `f32: MiniLM embeddings, tsbert against onnxruntime: least cosine over ${SENTENCES} sentences ≥ 0.9999`;
    checks.push({ what, measured: c?.least, mean: c?.mean, limit: 0.9999, ok: c !== undefined && c.least >= 0.9999 });
  } else if (timed('f32')) {
    const [a, b] = [output('tsbert', row, 'f32'), output('onnxruntime', row, 'f32')];
    let most: number | undefined;
    if (a !== undefined && b !== undefined && a.length === b.length) {
      most = 0;
      for (let j = 0; j < a.length; j++) most = Math.max(most, Math.abs(a[j] - b[j]));
    }
    const what = 'f32: BERT-base-sized last hidden states, batch 32 × 128: max abs difference ≤ 1e-3';
    checks.push({ what, measured: most, limit: 1e-3, ok: most !== undefined && most <= 1e-3 });
  }
  if (!timed('q8')) continue;
  const [t, o] = IMPLS.map((impl) => cosines(output(impl, row, 'q8'), output(impl, row, 'f32'), HIDDEN[row]));
  if (row === 'minilm') {
    const what = `q8: MiniLM embeddings, tsbert q8 against tsbert f32: least cosine over ${SENTENCES} sentences ≥ 0.99`;
    checks.push({ what, measured: t?.least, mean: t?.mean, limit: 0.99, ok: t !== undefined && t.least >= 0.99 });
    const same = `q8: MiniLM embeddings, onnxruntime int8 against onnxruntime f32: least cosine (for comparison)`;
    checks.push({ what: same, measured: o?.least, mean: o?.mean });
  } else {
    const what = (side: string) =>
      `q8: BERT-base-sized last hidden states, ${side} against its f32, per token (32 × 128): least cosine (for comparison)`;
    checks.push({ what: what('tsbert q8'), measured: t?.least, mean: t?.mean });
    checks.push({ what: what('onnxruntime int8'), measured: o?.least, mean: o?.mean });
  }
}
console.log('');
console.log('| check (the last round’s outputs) | measured | verdict |');
console.log('| --- | ---: | --- |');
for (const { what, measured, mean, limit, ok } of checks) {
  let value = 'no output';
  if (measured !== undefined) {
    value = limit !== undefined && limit < 0.5 ? measured.toExponential(2) : measured.toFixed(limit === 0.9999 ? 7 : 5);
    if (mean !== undefined) value += ` (mean ${mean.toFixed(5)})`;
  }
  console.log(`| ${what} | ${value} | ${ok === undefined ? '—' : ok ? 'PASS' : 'FAIL'} |`);
}

const ortJob = cells.flatMap((c) => jobs.get(c)?.onnxruntime ?? []);
/** By row, what the onnxruntime jobs said of their model (the fusions: of the f32 model either dtype's starts from). */
const ortOf = (key: 'fusions' | 'quantized') =>
  Object.fromEntries(
    rows
      .map((row) => [
        row,
        cells.flatMap((c) => (c.row === row ? (jobs.get(c)?.onnxruntime ?? []) : [])).find((j) => j[key])?.[key],
      ])
      .filter(([, v]) => v !== undefined),
  );
const fusions = ortOf('fusions');
const quantized = ortOf('quantized') as Record<string, NonNullable<Job['quantized']>>;
console.log('');
console.log(
  `onnxruntime ${ortJob[0]?.versions?.onnxruntime ?? '?'}, fused operators: ${Object.entries(fusions)
    .map(([row, f]) => `${row} ${JSON.stringify(f)}`)
    .join('; ')}`,
);
for (const [row, q] of Object.entries(quantized)) {
  const how =
    q.source === 'fused'
      ? `the fused model${Object.keys(q.extra_options).length > 0 ? ` with extra_options ${JSON.stringify(q.extra_options)}` : ''}`
      : 'the unfused export (quantising the fused model failed)';
  const before = q.errors.length > 0 ? ` — before: ${q.errors.join('; ')}` : '';
  console.log(
    `onnxruntime int8, ${row}: quantize_dynamic(QInt8) of ${how}${before}; operators ${JSON.stringify(q.ops)}`,
  );
}
const kernels = [...new Set(results.flatMap((r) => (r.kernel ? [r.kernel] : [])))];
if (kernels.length > 0) console.log(`tsbert q8 kernel: ${kernels.join(', ')}`);
console.log(
  "The textbook model's encode at B = 1 (tsbert against onnxruntime with the same fusions): see npm run bench:peers.",
);
writeFileSync(
  join(dir, 'results.json'),
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      threads: flags.threads,
      rounds: flags.rounds,
      dtypes,
      cpu: cpus()[0]?.model,
      versions: ortJob[0]?.versions,
      fusions,
      quantized,
      kernels,
      results,
      tsbertMemory: cells.map((c) => ({
        row: c.row,
        dtype: c.dtype,
        batch: c.batch,
        rssMiB: jobs.get(c)?.tsbert.at(-1)?.rssMiB,
      })),
      checks,
    },
    null,
    1,
  )}\n`,
);
if (failures > 0 || checks.some((c) => c.ok === false)) process.exitCode = 1;
