/**
 * `npm run bench:trees -- --trees ../before,. [--rounds 6]`: the same jobs through two (or more)
 * checkouts of tsbert, each built (`npm run build:native`), in alternating order over the
 * rounds, each job in a fresh process: what a refactoring's "no slower" is judged by on a
 * machine whose speed drifts by tens of percent from minute to minute. Jobs: all-MiniLM-L6-v2
 * (bench/.cache, see bench:hf) embedding bench:hf's 1000 WikiText-2 validation sentences at batch 32 and
 * 200 at batch 1 (best of 3 each), through each tree's own API (`embed(model, …)`, or the older
 * `model.embed(…)`), and the process's peak RSS. Prints each round and the means.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

import { Command } from 'commander';

import { positiveInteger, validationSentences } from './support.js';

const MODEL = resolve(import.meta.dirname, '.cache/all-MiniLM-L6-v2');

/** One job in this process: the embedding rates through the tree at `tree`. */
async function job(tree: string): Promise<void> {
  const api = await import(resolve(tree, 'src/index.ts'));
  const sentences = validationSentences(1000);
  const model = await api.BertModel.load(MODEL);
  const embed = (texts: string[], batchSize: number) =>
    api.embed ? api.embed(model, texts, { batchSize }) : model.embed(texts, { batchSize });
  const rate = async (texts: string[], batchSize: number) => {
    await embed(texts.slice(0, batchSize), batchSize);
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      await embed(texts, batchSize);
      best = Math.min(best, (performance.now() - started) / 1000);
    }
    return texts.length / best;
  };
  const b32 = await rate(sentences, 32);
  const b1 = await rate(sentences.slice(0, 200), 1);
  console.log(JSON.stringify({ b32, b1, rssMiB: process.resourceUsage().maxRSS / 1024 }));
}

const flags = new Command('bench:trees')
  .option('--trees <paths>', 'checkouts to compare, comma-separated', '.')
  .option('--rounds <n>', 'rounds (the order alternates)', positiveInteger, 6)
  .option('--job <tree>', 'run one job through this checkout (internal)')
  .parse()
  .opts<{ trees: string; rounds: number; job?: string }>();

if (flags.job) {
  await job(flags.job);
} else {
  const trees = flags.trees.split(',').map((t) => resolve(t));
  const runs = new Map<string, { b32: number; b1: number; rssMiB: number }[]>(trees.map((t) => [t, []]));
  console.log(`bench:trees: all-MiniLM-L6-v2 embed, sentences/sec (best of 3), ${flags.rounds} rounds`);
  console.log('| round | tree | batch 32 | batch 1 | peak RSS |\n| ---: | --- | ---: | ---: | ---: |');
  for (let round = 1; round <= flags.rounds; round++) {
    for (const tree of round % 2 === 1 ? trees : [...trees].reverse()) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--job', tree], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      if (r.status !== 0) throw new Error(`the job through ${tree} failed (exit status ${r.status})`);
      const result = JSON.parse(r.stdout.trim().split('\n').at(-1) as string);
      runs.get(tree)?.push(result);
      console.log(
        `| ${round} | ${tree} | ${result.b32.toFixed(1)} | ${result.b1.toFixed(1)} | ${Math.round(result.rssMiB)} MiB |`,
      );
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log('\n| tree | batch 32 (mean) | batch 1 (mean) | peak RSS (mean) |\n| --- | ---: | ---: | ---: |');
  for (const [tree, rs] of runs) {
    console.log(
      `| ${tree} | ${mean(rs.map((r) => r.b32)).toFixed(1)} | ${mean(rs.map((r) => r.b1)).toFixed(1)} | ${Math.round(mean(rs.map((r) => r.rssMiB)))} MiB |`,
    );
  }
}
