#!/usr/bin/env node
/**
 * The `tsbert` command: `tsbert pretrain --data PATH ...` and `tsbert encode --model DIR "..."`.
 *
 * @module
 */
import { once } from 'node:events';
import { constants, createReadStream } from 'node:fs';
import { access, mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

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
  const encoding = await model.encode(sentence, flags.pair);
  console.log(`tokens: ${encoding.tokens.join(' ')}`);
  console.log(`shape: [${encoding.shape.join(', ')}]`);
  for (const [i, t] of encoding.tokens.entries()) {
    console.log(`${String(i).padStart(3)} ${t.padEnd(12)} ${preview(encoding.token(i).data)}`);
  }
}

/** Texts embedded and written at a time: the output streams, memory stays flat. */
const EMBED_CHUNK = 1024;

/** The lines of `input` (a file, or `-` for standard input), `size` at a time. */
async function* lineChunks(input: string, size: number): AsyncGenerator<string[]> {
  const stream = input === '-' ? process.stdin : createReadStream(input, 'utf8');
  if (input !== '-') {
    await new Promise<void>((ready, fail) => {
      stream.once('open', () => ready());
      stream.once('error', (error: NodeJS.ErrnoException) =>
        fail(new Error(`--input: '${input}': ${error.code === 'ENOENT' ? 'no such file' : error.message}`)),
      );
    });
  }
  let chunk: string[] = [];
  for await (const line of createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })) {
    chunk.push(line);
    if (chunk.length === size) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length > 0) yield chunk;
}

interface EmbedFlags {
  model: string;
  input: string;
  pooling: 'mean' | 'cls';
  normalize: boolean;
  batchSize: number;
}

async function runEmbed(flags: EmbedFlags): Promise<void> {
  const model = await BertModel.load(flags.model);
  const bar = new SingleBar({
    format: 'embedded {value} texts | {rate} texts/sec',
    stream: process.stderr,
    hideCursor: true,
  });
  const terminal = process.stderr.isTTY;
  if (terminal) bar.start(0, 0, { rate: '0' });
  const started = performance.now();
  let done = 0;
  try {
    for await (const texts of lineChunks(flags.input, EMBED_CHUNK)) {
      const vectors = await model.embed(texts, flags);
      const hidden = vectors.shape[1];
      const lines = texts.map((_, i) =>
        JSON.stringify(Array.from(vectors.data.subarray(i * hidden, (i + 1) * hidden))),
      );
      if (!process.stdout.write(`${lines.join('\n')}\n`)) await once(process.stdout, 'drain');
      done += texts.length;
      if (terminal) bar.update(done, { rate: (done / ((performance.now() - started) / 1000)).toFixed(1) });
    }
  } finally {
    bar.stop();
  }
}

async function runFillMask(text: string, flags: { model: string; topK: number }): Promise<void> {
  const model = await BertModel.load(flags.model);
  for (const { position, predictions } of await model.fillMask(text, { topK: flags.topK })) {
    console.log(`mask at token ${position}:`);
    for (const p of predictions) console.log(`  ${p.token.padEnd(16)} ${p.probability.toFixed(4)}`);
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
    .description('print the contextual embedding of every token of a text (pair)')
    .argument('<text>', 'the first text')
    .requiredOption('--model <dir>', "a model folder: tsbert's (written by `tsbert pretrain`) or Hugging Face's")
    .option('--pair <text>', 'a second text')
    .action(runEncode);
  cli
    .command('embed')
    .description('one vector a line of the input, written as a JSON array a line')
    .requiredOption('--model <dir>', "a model folder: tsbert's or Hugging Face's (e.g. all-MiniLM-L6-v2)")
    .requiredOption('--input <file>', "the texts, one a line ('-' for standard input)")
    .option('--pooling <kind>', "'mean' (sentence-transformers') or 'cls'", 'mean')
    .option('--normalize', 'divide each vector by its L2 norm', false)
    .option('--batch-size <n>', 'texts a native call', integer('--batch-size', 1), 32)
    .action(runEmbed);
  cli
    .command('fill-mask')
    .description('the most probable tokens for each mask token ([MASK]) of a text')
    .argument('<text>', 'a text with one or more mask tokens')
    .requiredOption('--model <dir>', "a model folder with an MLM head: tsbert's or Hugging Face's")
    .option('--top-k <n>', 'candidates a mask', integer('--top-k', 1), 5)
    .action(runFillMask);
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
