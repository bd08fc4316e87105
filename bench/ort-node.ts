/**
 * `npm run bench:ort-node [-- --threads N --rounds N --dtypes f32,q8]`: the BERT-base-sized rows
 * of `npm run bench:inference` against onnxruntime-node — onnxruntime in a Node process, as a
 * Node application (transformers.js, fastembed-js) runs it — instead of onnxruntime's Python
 * package. The same .onnx files (fused f32; its int8 `quantize_dynamic`), ids, threads and calls
 * (bench/reference/ort-node-job.mjs), against the same tsbert job (bench/inference-job.ts,
 * compiled), in alternating rounds, each job a fresh process: sequences/s (the median of the
 * rounds, each job's best call) and peak RSS (`ru_maxrss`, the median).
 *
 * In a Node host the output arrays of the timed calls stay in memory until V8 collects them,
 * on both sides; a Python host frees each at once. Needs `npm run bench:setup` (which installs
 * onnxruntime-node in bench/.cache/onnxruntime-node, without its CUDA download) and makes the
 * models as bench:inference does. Writes bench/out/inference/ort-node.json.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
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
  venvPython,
} from './support.js';

const JOB = await compiledScript(join(import.meta.dirname, 'inference-job.ts'));
const ORT_JOB = join(import.meta.dirname, 'reference/ort-node-job.mjs');
const MODULES = join(import.meta.dirname, '.cache/onnxruntime-node');
const flags = new Command('bench:ort-node')
  .option('--threads <n>', 'threads for both', positiveInteger, availableParallelism())
  .option('--rounds <n>', 'rounds (each runs both once on every row)', positiveInteger, 3)
  .option('--dtypes <list>', `comma-separated: ${BENCH_DTYPES.join(',')}`, listOf(BENCH_DTYPES), [...BENCH_DTYPES])
  .parse()
  .opts<{ threads: number; rounds: number; dtypes: string[] }>();
const { dtypes } = flags;
if (!existsSync(join(MODULES, 'node_modules/onnxruntime-node'))) {
  console.error(`bench:ort-node: no onnxruntime-node in ${MODULES}: run npm run bench:setup first`);
  process.exit(1);
}
const dir = outDir('inference');
const bert = join(dir, 'bert-base');
runPython(venvPython(), 'inference_ref.py', [
  'prepare',
  ...['--dir', dir, '--minilm', miniLMFolder('bench:ort-node'), '--rows', 'bert-base', '--dtypes', dtypes.join(',')],
]);

interface Job {
  perSec: number;
  peakRssMiB: number;
  version?: string;
}
/** One job in a fresh process; exits the bench when it fails. */
function run(impl: 'tsbert' | 'onnxruntime-node', dtype: string, batch: number): Job {
  const threads = String(flags.threads);
  const r =
    impl === 'tsbert'
      ? spawnSync(
          process.execPath,
          [
            JOB,
            '--row',
            'bert-base',
            '--dtype',
            dtype,
            '--batch-size',
            String(batch),
            '--threads',
            threads,
            '--dir',
            dir,
          ],
          { encoding: 'utf8', env: { ...process.env, RAYON_NUM_THREADS: threads } },
        )
      : spawnSync(
          process.execPath,
          [
            ORT_JOB,
            MODULES,
            join(bert, dtype === 'q8' ? 'model-q8.onnx' : 'model-fused.onnx'),
            join(bert, 'ids.json'),
          ].concat([String(batch), threads]),
          { encoding: 'utf8' },
        );
  if (r.status !== 0) {
    console.error(
      `${impl} ${dtype} B = ${batch} failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`,
    );
    process.exit(1);
  }
  return JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Job;
}

const cells = dtypes.flatMap((dtype) => [1, 32].map((batch) => ({ dtype, batch })));
const jobs = cells.map(() => ({ tsbert: [] as Job[], ort: [] as Job[] }));
for (let round = 0; round < flags.rounds; round++) {
  for (const [i, { dtype, batch }] of cells.entries()) {
    const first = round % 2 === 0;
    const [a, b] = first ? (['tsbert', 'onnxruntime-node'] as const) : (['onnxruntime-node', 'tsbert'] as const);
    const ja = run(a, dtype, batch);
    const jb = run(b, dtype, batch);
    const [t, o] = first ? [ja, jb] : [jb, ja];
    jobs[i].tsbert.push(t);
    jobs[i].ort.push(o);
    console.error(
      `round ${round + 1}/${flags.rounds}, ${dtype} B = ${batch}: tsbert ${t.perSec.toFixed(1)}/s, ${t.peakRssMiB.toFixed(0)} MiB; onnxruntime-node ${o.perSec.toFixed(1)}/s, ${o.peakRssMiB.toFixed(0)} MiB`,
    );
  }
}

const version = jobs[0].ort[0]?.version ?? '?';
console.log(
  `\nBERT-base-sized encode, 128 tokens: tsbert against onnxruntime-node ${version}, ${flags.threads} thread(s) each, ${flags.rounds} round(s) (median)\n`,
);
console.log(
  '| dtype | batch | tsbert /s | onnxruntime-node /s | tsbert / onnxruntime-node | peak RSS tsbert | peak RSS onnxruntime-node |',
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
const results = cells.map(({ dtype, batch }, i) => {
  const [t, o] = [jobs[i].tsbert, jobs[i].ort];
  const row = {
    dtype,
    batch,
    tsbert: { perSec: median(t.map((j) => j.perSec)), peakRssMiB: median(t.map((j) => j.peakRssMiB)) },
    onnxruntimeNode: { perSec: median(o.map((j) => j.perSec)), peakRssMiB: median(o.map((j) => j.peakRssMiB)) },
  };
  console.log(
    `| ${dtype} | ${batch} | ${row.tsbert.perSec.toFixed(1)} | ${row.onnxruntimeNode.perSec.toFixed(1)} | ${(row.tsbert.perSec / row.onnxruntimeNode.perSec).toFixed(2)}× | ${row.tsbert.peakRssMiB.toFixed(0)} MiB | ${row.onnxruntimeNode.peakRssMiB.toFixed(0)} MiB |`,
  );
  return row;
});
writeFileSync(join(dir, 'ort-node.json'), `${JSON.stringify({ version, threads: flags.threads, results }, null, 2)}\n`);
