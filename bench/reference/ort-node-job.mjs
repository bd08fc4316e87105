/**
 * onnxruntime-node's side of `npm run bench:ort-node` (bench/ort-node.ts): the last hidden states
 * of the BERT-base-sized model's first B rows of ids.json (128 tokens, segments 0, every position
 * valid), as bench/reference/inference_ref.py runs them in Python — the same .onnx file (fused
 * f32, or its int8 quantize_dynamic), feeds, threads (intra-op N, inter-op 1, CPU) and calls
 * (3 untimed and 20 timed at B < 8, else 1 and 3; the best counted) — but in a Node process, as
 * a Node application runs onnxruntime.
 *
 *     node bench/reference/ort-node-job.mjs MODULE_DIR MODEL.onnx IDS.json B THREADS
 *
 * MODULE_DIR: the folder whose node_modules holds onnxruntime-node (bench:setup installs it in
 * bench/.cache/onnxruntime-node). Prints one JSON line: { perSec, seconds, peakRssMiB, version }.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [moduleDir, model, idsFile, batch, threads] = process.argv.slice(2);
const ort = createRequire(join(moduleDir, 'package.json'))('onnxruntime-node');
const b = Number(batch);
const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: Number(threads),
  interOpNumThreads: 1,
  executionProviders: ['cpu'],
});
const rows = JSON.parse(readFileSync(idsFile, 'utf8')).rows.slice(0, b);
const dims = [rows.length, rows[0].length];
const n = dims[0] * dims[1];
const feeds = {
  input_ids: new ort.Tensor('int64', BigInt64Array.from(rows.flat(), BigInt), dims),
  attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), dims),
  token_type_ids: new ort.Tensor('int64', new BigInt64Array(n), dims),
};
const inputs = Object.fromEntries(session.inputNames.map((name) => [name, feeds[name]]));
const [warmup, repeats] = b >= 8 ? [1, 3] : [3, 20];
const seconds = [];
for (let i = 0; i < warmup + repeats; i++) {
  const started = performance.now();
  await session.run(inputs);
  if (i >= warmup) seconds.push((performance.now() - started) / 1000);
}
const version = createRequire(join(moduleDir, 'package.json'))('onnxruntime-node/package.json').version;
console.log(
  JSON.stringify({
    perSec: b / Math.min(...seconds),
    seconds,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    version,
  }),
);
