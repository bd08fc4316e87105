/**
 * `npm run bench:peers [-- --threads N --batch-sizes 1,512 --rounds 3]`: tsbert against the peers a user
 * would pick, on this machine's CPU, in the same run, the same number of threads each
 * (default: every core): training — Hugging Face transformers' `BertForPreTraining` (MLM on
 * the gathered positions, untied decoder: the textbook model's computation) and the textbook's
 * own d2l code, both on PyTorch; encoding — transformers and onnxruntime (BERT fusions). The
 * textbook configuration (WikiText-2's vocabulary 20256, hidden 128, 2 layers, L 64, P 10,
 * Adam lr 0.01) on the first batch of B pairs of WikiText-2's epoch 0 (synthetic where the
 * corpus is absent). Every job runs in a fresh process (tsbert: `bench/native.ts --job`
 * compiled to JavaScript and run by plain `node`; the others: `bench/reference/peers.py`), so its peak RSS is its own; median after warm-up.
 * Prints pairs/sec, the ratio of tsbert to the fastest peer, peak RSS, and the verdict of each
 * goal of the speed issue. Files go to bench/out/peers/.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

import { Command } from 'commander';

import { PRETRAIN_DEFAULTS } from '../src/pretrain.js';
import { compiledScript } from './compiled-script.js';
import {
  median,
  outDir,
  positiveInteger,
  textbookBatches,
  textbookConfig,
  venvPython,
  writeBatches,
} from './support.js';

const flags = new Command('bench:peers')
  .option('--threads <n>', 'threads for every implementation', positiveInteger, availableParallelism())
  .option('--batch-sizes <list>', 'comma-separated batch sizes', (v) => v.split(',').map(positiveInteger), [1, 512])
  .option('--rounds <n>', 'turns each implementation takes', positiveInteger, 3)
  .parse()
  .opts<{ threads: number; batchSizes: number[]; rounds: number }>();

const python = venvPython();
/** Warm-up and timed runs by batch size: small batches are quick and noisy. */
/** tsbert's job (bench/native.ts), compiled to JavaScript: run without a TypeScript loader in its memory. */
const NATIVE_JOB = await compiledScript(join(import.meta.dirname, 'native.ts'));
const runsFor = (b: number) => (b >= 64 ? { warmup: 5, repeats: 7 } : { warmup: 30, repeats: 101 });

interface Measured {
  pairsPerSec: number;
  medianMs: number;
  peakRssMiB: number;
  /** The slowest and fastest round's pairs/sec. */
  range?: [number, number];
}

/** One figure of several rounds: the median speed, the largest peak RSS, the range. */
function combine(rounds: Measured[]): Measured | undefined {
  if (rounds.length === 0) return undefined;
  const speeds = rounds.map((m) => m.pairsPerSec);
  return {
    pairsPerSec: median(speeds),
    medianMs: median(rounds.map((m) => m.medianMs)),
    peakRssMiB: Math.max(...rounds.map((m) => m.peakRssMiB)),
    range: [Math.min(...speeds), Math.max(...speeds)],
  };
}

/** tsbert's job in a fresh process (bench/native.ts). */
function tsbert(job: 'train' | 'encode', b: number): Measured {
  const { warmup, repeats } = runsFor(b);
  const args = [
    '--batch-size',
    b,
    '--threads',
    flags.threads,
    '--job',
    job,
    '--json',
    '--warmup',
    warmup,
    '--steps',
    repeats,
  ];
  const r = spawnSync(process.execPath, [NATIVE_JOB, ...args.map(String)], {
    encoding: 'utf8',
    env: { ...process.env, RAYON_NUM_THREADS: String(flags.threads) },
  });
  if (r.status !== 0) throw new Error(`bench/native.ts failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1) as string);
  const ms = out[job].ms as number[];
  return { pairsPerSec: out[job].pairsPerSec, medianMs: median(ms), peakRssMiB: out.peakRssMiB };
}

/** A peer's job in a fresh process (bench/reference/peers.py); undefined when it failed (said why). */
function peer(name: string, job: 'train' | 'encode', dir: string): Measured | undefined {
  const script = join(import.meta.dirname, 'reference', 'peers.py');
  const r = spawnSync(
    python,
    [script, '--peer', name, '--job', job, '--dir', dir, '--threads', String(flags.threads)],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) {
    console.error(`${name} ${job} failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return undefined;
  }
  const out = JSON.parse(readFileSync(join(dir, `${name}-${job}.json`), 'utf8'));
  return { pairsPerSec: out.pairs_per_sec, medianMs: median(out.ms), peakRssMiB: out.peak_rss_mib };
}

const PEERS = { train: ['hf', 'd2l'], encode: ['hf', 'ort'] } as const;
const NAMES: Record<string, string> = {
  tsbert: 'tsbert',
  hf: 'transformers BertForPreTraining (PyTorch)',
  d2l: "the textbook's d2l code (PyTorch)",
  ort: 'onnxruntime (BERT fusions)',
};

const results: Record<string, Record<string, Record<string, Measured | undefined>>> = {};
const verdicts: string[] = [];
for (const b of flags.batchSizes) {
  const dir = outDir(`peers/b${b}`);
  const { vocabSize, batches, source } = await textbookBatches(b);
  writeBatches(join(dir, 'batches.safetensors'), batches);
  const config = textbookConfig(vocabSize);
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify({ config, lr: PRETRAIN_DEFAULTS.lr, ...runsFor(b) })}\n`);
  console.log(`\nB = ${b} (${source}), ${flags.threads} threads each`);
  console.log(`| job | implementation | ms (median) | pairs/sec | rounds' range | tsbert / it | peak RSS |`);
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
  results[b] = {};
  for (const job of ['train', 'encode'] as const) {
    const names = ['tsbert', ...PEERS[job]];
    const rounds: Record<string, Measured[]> = Object.fromEntries(names.map((n) => [n, []]));
    for (let r = 0; r < flags.rounds; r++) {
      for (const name of names.map((_, i) => names[(i + r) % names.length])) {
        const m = name === 'tsbert' ? tsbert(job, b) : peer(name, job, dir);
        if (m) rounds[name].push(m);
      }
    }
    const row = Object.fromEntries(names.map((n) => [n, combine(rounds[n])]));
    results[b][job] = row;
    const ours = row.tsbert as Measured;
    for (const [name, m] of Object.entries(row)) {
      if (!m) continue;
      const ratio = name === 'tsbert' ? '' : `${(ours.pairsPerSec / m.pairsPerSec).toFixed(2)}×`;
      console.log(
        `| ${job} | ${NAMES[name]} | ${m.medianMs.toFixed(2)} | ${m.pairsPerSec.toFixed(1)} | ${m.range?.map((v) => v.toFixed(1)).join('–')} | ${ratio} | ${m.peakRssMiB.toFixed(0)} MiB |`,
      );
    }
    const peers = PEERS[job].map((n) => row[n]).filter((m): m is Measured => m !== undefined);
    if (peers.length === 0) continue;
    const fastest = Math.max(...peers.map((m) => m.pairsPerSec));
    if (job === 'train') {
      const ok = ours.pairsPerSec >= 1.5 * fastest;
      verdicts.push(
        `training, B = ${b}: ${(ours.pairsPerSec / fastest).toFixed(2)}× the fastest PyTorch peer (goal ≥ 1.5×): ${ok ? 'MET' : 'NOT MET'}`,
      );
      if (b >= 64) {
        const least = Math.min(...peers.map((m) => m.peakRssMiB));
        verdicts.push(
          `training memory, B = ${b}: peak RSS ${ours.peakRssMiB.toFixed(0)} MiB against PyTorch's least ${least.toFixed(0)} MiB (goal ≤): ${ours.peakRssMiB <= least ? 'MET' : 'NOT MET'}`,
        );
      }
    } else if (row.ort) {
      const ok = ours.pairsPerSec >= row.ort.pairsPerSec;
      verdicts.push(
        `encoding, B = ${b}: ${(ours.pairsPerSec / row.ort.pairsPerSec).toFixed(2)}× onnxruntime (goal ≥ 1×): ${ok ? 'MET' : 'NOT MET'}`,
      );
    }
  }
}
console.log('');
for (const v of verdicts) console.log(v);
writeFileSync(
  join(outDir('peers'), 'results.json'),
  `${JSON.stringify({ threads: flags.threads, rounds: flags.rounds, results }, null, 1)}\n`,
);
