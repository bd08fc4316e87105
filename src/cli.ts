#!/usr/bin/env node
/**
 * The `tsbert` command: `tsbert pretrain --data PATH ...` and `tsbert encode --model DIR "..."`.
 *
 * @module
 */
import { constants } from 'node:fs';
import { access, mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

import { SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { TEXTBOOK_SIZES } from './config.js';
import type { Device } from './device.js';
import { TrainingDivergedError } from './errors.js';
import { BertModel } from './model.js';
import { lossCurvesSvg } from './plot.js';
import { PRETRAIN_DEFAULTS, pretrain } from './pretrain.js';

function integer(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}.`);
    return n;
  };
}

function number(name: string, ok: (n: number) => boolean, what: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || !ok(n))
      throw new InvalidArgumentError(`${name} must be ${what}.`);
    return n;
  };
}

/** The words of a sentence as the vocabulary holds them: lowercased, split on whitespace. */
const words = (sentence: string) => sentence.toLowerCase().split(/\s+/).filter(Boolean);

const preview = (values: Float32Array, n = 6) =>
  `[${Array.from(values.slice(0, n), (v) => v.toFixed(4)).join(', ')}${values.length > n ? ', …' : ''}]`;

interface PretrainFlags {
  data: string;
  steps: number;
  batchSize: number;
  maxLen: number;
  hidden: number;
  layers: number;
  heads: number;
  ffnHidden: number;
  dropout: number;
  lr: number;
  seed: number;
  minFreq: number;
  device: Device;
  out: string;
}

/** Exit status of a run stopped by Ctrl-C (128 + SIGINT), after what was trained is saved. */
const INTERRUPTED = 130;

/**
 * Checks that `dir` can receive the model before any work is done: an existing folder we can
 * write in, or a path whose nearest existing parent is one. An `Error` naming `--out` otherwise.
 */
async function checkOutputFolder(dir: string): Promise<void> {
  let probe = resolve(dir);
  for (;;) {
    const info = await stat(probe).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined; // look further up
      throw new Error(`--out: '${dir}': ${error.code ?? error.message}`);
    });
    if (info) {
      if (!info.isDirectory()) {
        const what = probe === resolve(dir) ? 'is a file, not a folder' : `lies under the file '${probe}'`;
        throw new Error(`--out: '${dir}' ${what}`);
      }
      await access(probe, constants.W_OK).catch(() => {
        throw new Error(`--out: '${dir}': cannot write in '${probe}'`);
      });
      return;
    }
    probe = dirname(probe);
  }
}

async function runPretrain(flags: PretrainFlags): Promise<void> {
  await checkOutputFolder(flags.out);
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  const bar = new SingleBar({
    format: 'step {value}/{total} |{bar}| MLM {mlm} | NSP {nsp} | {pps} pairs/sec | ETA {eta_formatted}',
    stream: process.stderr,
    hideCursor: true,
    noTTYOutput: true, // a line every few seconds in logs and pipes
    notTTYSchedule: 5000,
  });
  if (process.stderr.isTTY) console.error(`preparing ${flags.data} ...`);
  let started = false;
  try {
    const run = pretrain({
      data: flags.data,
      steps: flags.steps,
      batchSize: flags.batchSize,
      maxLen: flags.maxLen,
      config: {
        hidden: flags.hidden,
        layers: flags.layers,
        heads: flags.heads,
        ffnHidden: flags.ffnHidden,
        dropout: flags.dropout,
      },
      lr: flags.lr,
      seed: flags.seed,
      minFreq: flags.minFreq,
      device: flags.device,
      signal: controller.signal,
      onStep: (r) => {
        const values = { mlm: r.mlmLoss.toFixed(3), nsp: r.nspLoss.toFixed(3), pps: r.pairsPerSec.toFixed(1) };
        if (!started) {
          bar.start(flags.steps, 0, values);
          started = true;
        }
        bar.update(r.step, values);
      },
    });
    const { model, history, summary } = await run.catch((error: unknown) => {
      if (!(error instanceof TrainingDivergedError)) throw error;
      throw new Error(`${error.message}; nothing was saved, '${flags.out}' is as it was`, { cause: error });
    });
    bar.stop();
    if (summary.aborted) {
      console.error(`interrupted after ${summary.steps} steps; saving what was trained`);
      process.exitCode = INTERRUPTED;
    }
    console.log(`MLM loss ${summary.mlmLoss.toFixed(3)}, NSP loss ${summary.nspLoss.toFixed(3)}`);
    console.log(`${summary.pairsPerSec.toFixed(1)} sentence pairs/sec on ${summary.device}`);
    await model.save(flags.out);
    await mkdir(flags.out, { recursive: true });
    const plot = join(flags.out, 'loss.svg');
    await writeFile(plot, await lossCurvesSvg(history));
    console.log(`model saved to ${flags.out}; loss curves in ${plot}`);
  } finally {
    bar.stop();
    process.off('SIGINT', stop);
  }
}

async function runEncode(sentence: string, flags: { model: string; pair?: string }): Promise<void> {
  const model = await BertModel.load(flags.model);
  const encoding = await model.encode(words(sentence), flags.pair === undefined ? undefined : words(flags.pair));
  console.log(`tokens: ${encoding.tokens.join(' ')}`);
  console.log(`shape: [${encoding.shape.join(', ')}]`);
  for (const [i, t] of encoding.tokens.entries()) {
    console.log(`${String(i).padStart(3)} ${t.padEnd(12)} ${preview(encoding.token(i).data)}`);
  }
}

/** The command-line program. */
function program(): Command {
  const [d, t] = [PRETRAIN_DEFAULTS, TEXTBOOK_SIZES];
  const cli = new Command('tsbert')
    .description('BERT pretraining and contextual encoding (WikiText-2, MLM + NSP)')
    .showHelpAfterError(false)
    .configureOutput({ outputError: (text, write) => write(`tsbert: ${text.replace(/^error: /, '')}`) });
  cli
    .command('pretrain')
    .description('pretrain a BERT model with MLM + NSP on a WikiText-format corpus')
    .requiredOption('--data <path>', 'wiki.train.tokens, or a folder holding it')
    .option('--steps <n>', 'training steps', integer('--steps', 1), d.steps)
    .option('--batch-size <n>', 'sentence pairs a step', integer('--batch-size', 1), d.batchSize)
    .option('--max-len <n>', 'tokens per pair', integer('--max-len', 5), d.maxLen)
    .option('--hidden <n>', 'hidden width', integer('--hidden', 1), t.hidden)
    .option('--layers <n>', 'encoder blocks', integer('--layers', 1), t.layers)
    .option('--heads <n>', 'attention heads', integer('--heads', 1), t.heads)
    .option('--ffn-hidden <n>', 'feed-forward width', integer('--ffn-hidden', 1), t.ffnHidden)
    .option(
      '--dropout <p>',
      'dropout probability',
      number('--dropout', (n) => n >= 0 && n < 1, 'in [0, 1)'),
      t.dropout,
    )
    .option(
      '--lr <x>',
      "Adam's learning rate",
      number('--lr', (n) => n > 0, 'a positive number'),
      d.lr,
    )
    .option('--seed <n>', 'random seed', integer('--seed', 0), d.seed)
    .option('--min-freq <n>', 'least count of a vocabulary word', integer('--min-freq', 1), d.minFreq)
    .option('--device <name>', "'auto', 'cpu', 'cuda' or 'cuda:N'", d.device)
    .option('--out <dir>', 'folder to save the model and its loss plot in', 'tsbert-model')
    .action((flags: PretrainFlags) => runPretrain(flags));
  cli
    .command('encode')
    .description('print the contextual embedding of every token of a sentence (pair)')
    .argument('<sentence>', 'the first sentence, words separated by spaces')
    .requiredOption('--model <dir>', 'a folder written by `tsbert pretrain`')
    .option('--pair <sentence>', 'a second sentence')
    .action(runEncode);
  return cli;
}

/** Runs the program on `argv`; any failure is one line on stderr and exit code 1. */
async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await program().exitOverride().parseAsync(argv);
  } catch (error) {
    const e = error as { code?: string; exitCode?: number; message?: string };
    if (e.code?.startsWith('commander.')) {
      process.exitCode = e.exitCode ?? 1; // commander has printed its one line already
    } else {
      console.error(`tsbert: ${e.message ?? String(error)}`);
      process.exitCode = 1;
    }
  }
}

await main();
