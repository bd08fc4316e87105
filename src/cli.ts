#!/usr/bin/env node
/**
 * The `tsbert` command: `tsbert pretrain`, `evaluate`, `encode`, `embed` and `fill-mask`.
 *
 * @module
 */
import { once } from 'node:events';
import { constants, createReadStream } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

import { SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { TEXTBOOK_SIZES } from './config.js';
import { DATA_DEFAULTS } from './data/defaults.js';
import type { CorpusFormat } from './data/formats.js';
import type { Device } from './device.js';
import { TrainingDivergedError } from './errors.js';
import { BertModel } from './model.js';
import { PRETRAIN_DEFAULTS, type PretrainOptions, pretrain } from './pretrain.js';
import { EVAL_DEFAULTS, evaluate } from './training/evaluation.js';
import { HISTORY_FILE } from './training/history.js';
import { SCHEDULE_KINDS, type ScheduleKind } from './training/schedule.js';

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

/** The `pretrain` flags, as commander parses them (camelCase). */
interface PretrainFlags {
  data?: string;
  valid?: string | false;
  format: CorpusFormat | 'auto';
  textField?: string;
  dataMemory: number;
  steps: number;
  batchSize: number;
  maxLen: number;
  hidden: number;
  layers: number;
  heads: number;
  ffnHidden: number;
  dropout: number;
  lr: number;
  warmupSteps: number;
  schedule: ScheduleKind;
  clipNorm?: number;
  accumulate: number;
  optimizer: 'adam' | 'adamw';
  weightDecay?: number;
  seed: number;
  minFreq: number;
  device: Device;
  evalEvery: number;
  evalExamples: number;
  out: string;
  saveEvery: number;
  keepCheckpoints: number;
  resume?: string;
  from?: string;
}

/** Exit status of a run stopped by Ctrl-C (128 + SIGINT) or SIGTERM (128 + 15), after what was trained is saved. */
const INTERRUPTED: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

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

/** A progress bar on stderr (a line every few seconds when it is not a terminal). */
function progressBar(format: string): SingleBar {
  return new SingleBar({
    format,
    stream: process.stderr,
    hideCursor: true,
    noTTYOutput: true,
    notTTYSchedule: 5000,
  });
}

const MIB = 2 ** 20;

/** The options of a run from the flags given on the command line (defaults are the API's, so a resumed run can tell what was asked). */
function pretrainOptions(flags: PretrainFlags, given: (name: keyof PretrainFlags) => boolean): PretrainOptions {
  const pick = <K extends keyof PretrainFlags>(name: K) => (given(name) ? flags[name] : undefined);
  const sizes = (['hidden', 'layers', 'heads', 'ffnHidden', 'dropout'] as const).filter(given);
  return {
    data: flags.data,
    valid: pick('valid'),
    format: pick('format'),
    textField: pick('textField'),
    dataMemory: given('dataMemory') ? flags.dataMemory * MIB : undefined,
    steps: flags.steps,
    batchSize: pick('batchSize'),
    maxLen: pick('maxLen'),
    config: sizes.length > 0 ? Object.fromEntries(sizes.map((k) => [k, flags[k]])) : undefined,
    lr: pick('lr'),
    warmupSteps: pick('warmupSteps'),
    schedule: pick('schedule'),
    clipNorm: pick('clipNorm'),
    accumulate: pick('accumulate'),
    optimizer: pick('optimizer'),
    weightDecay: pick('weightDecay'),
    seed: pick('seed'),
    minFreq: pick('minFreq'),
    device: flags.device,
    evalEvery: pick('evalEvery'),
    evalExamples: pick('evalExamples'),
    out: flags.out,
    saveEvery: pick('saveEvery'),
    keepCheckpoints: pick('keepCheckpoints'),
    resume: flags.resume,
    from: flags.from,
  };
}

async function runPretrain(flags: PretrainFlags, command: Command): Promise<void> {
  await checkOutputFolder(flags.out);
  const controller = new AbortController();
  let signal: string | undefined;
  const stop = (name: string) => {
    signal = name;
    controller.abort();
  };
  for (const name of Object.keys(INTERRUPTED)) process.once(name, stop);
  const bar = progressBar(
    'step {value}/{total} |{bar}| MLM {mlm} | NSP {nsp} | lr {lr} | {pps} pairs/sec{valid} | ETA {eta_formatted}',
  );
  const reading = progressBar('{stage} |{bar}| {percentage}% | {value}/{total} MB');
  const terminal = process.stderr.isTTY;
  let held = '';
  let stage: 'download' | 'read' | 'train' | undefined;
  const showBytes = (next: 'download' | 'read', done: number, total: number | undefined) => {
    if (!total || !(terminal || total > 64 * MIB)) return; // a bar for what takes a while
    if (stage !== next) {
      reading.stop();
      stage = next;
      reading.start(Math.ceil(total / MIB), 0, {
        stage: next === 'download' ? 'downloading WikiText-2' : 'reading the corpus',
      });
    }
    reading.update(Math.floor(done / MIB));
  };
  const given = (name: keyof PretrainFlags) => command.getOptionValueSource(name) === 'cli';
  if (terminal) console.error(`preparing ${flags.data ?? 'WikiText-2'} ...`);
  try {
    const run = pretrain({
      ...pretrainOptions(flags, given),
      signal: controller.signal,
      onDownload: (p) => showBytes('download', p.received, p.total),
      onDataProgress: (done, total) => showBytes('read', done, total),
      onEval: (r) => {
        held = ` | held out: MLM ${r.mlmLoss.toFixed(3)} (${(100 * r.mlmAccuracy).toFixed(1)}%), NSP ${r.nspLoss.toFixed(3)} (${(100 * r.nspAccuracy).toFixed(1)}%)`;
        if (stage !== 'train') console.error(`step ${r.step}${held}`);
      },
      onStep: (r) => {
        const values = {
          mlm: r.mlmLoss.toFixed(3),
          nsp: r.nspLoss.toFixed(3),
          lr: r.lr.toPrecision(3),
          pps: r.pairsPerSec.toFixed(1),
          valid: held,
        };
        if (stage !== 'train') {
          reading.stop();
          stage = 'train';
          bar.start(flags.steps, r.step - 1, values);
        }
        bar.update(r.step, values);
      },
    });
    const { summary, checkpoint } = await run.catch(async (error: unknown) => {
      if (!(error instanceof TrainingDivergedError)) throw error;
      throw new Error(`${error.message}; the model in '${flags.out}' was not overwritten`, { cause: error });
    });
    bar.stop();
    if (summary.aborted) {
      console.error(`interrupted (${signal ?? 'stopped'}) at step ${summary.lastStep}; saving what was trained`);
      process.exitCode = INTERRUPTED[signal ?? 'SIGINT'];
    }
    console.log(`MLM loss ${summary.mlmLoss.toFixed(3)}, NSP loss ${summary.nspLoss.toFixed(3)}`);
    console.log(`${summary.pairsPerSec.toFixed(1)} sentence pairs/sec on ${summary.device}`);
    const h = summary.heldOut;
    if (h) {
      console.log(
        `held out (${h.examples} pairs): MLM loss ${h.mlmLoss.toFixed(3)}, accuracy ${(100 * h.mlmAccuracy).toFixed(1)}%; NSP loss ${h.nspLoss.toFixed(3)}, accuracy ${(100 * h.nspAccuracy).toFixed(1)}%`,
      );
    }
    console.log(
      `model saved to ${flags.out}; loss curves in ${join(flags.out, 'loss.svg')}, history in ${join(flags.out, HISTORY_FILE)}`,
    );
    if (checkpoint) console.log(`checkpoint: ${checkpoint} (tsbert pretrain --resume ${flags.out} --steps N goes on)`);
  } finally {
    bar.stop();
    reading.stop();
    for (const name of Object.keys(INTERRUPTED)) process.off(name, stop);
  }
}

interface EvaluateFlags {
  model: string;
  data: string;
  maxLen?: number;
  examples: number;
  seed: number;
  format: CorpusFormat | 'auto';
  textField?: string;
}

async function runEvaluate(flags: EvaluateFlags): Promise<void> {
  const model = await BertModel.load(flags.model);
  const m = await evaluate(model, flags.data, flags);
  console.log(`examples: ${m.examples}`);
  console.log(`MLM loss ${m.mlmLoss.toFixed(4)}, accuracy ${(100 * m.mlmAccuracy).toFixed(2)}%`);
  console.log(`NSP loss ${m.nspLoss.toFixed(4)}, accuracy ${(100 * m.nspAccuracy).toFixed(2)}%`);
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
  const oneOf =
    <T extends string>(name: string, values: readonly T[]) =>
    (value: string): T => {
      if (!values.includes(value as T)) throw new InvalidArgumentError(`${name} must be one of ${values.join(', ')}.`);
      return value as T;
    };
  cli
    .command('pretrain')
    .description('pretrain a BERT model with MLM + NSP (WikiText-2 by default; any corpus, streamed)')
    .option(
      '--data <path>',
      'a file, a folder (its wiki.train.tokens, or every file) or a glob; default: WikiText-2, downloaded once',
    )
    .option('--valid <path>', 'held-out corpus (default: wiki.valid.tokens beside the training file)')
    .option('--no-valid', 'no held-out evaluation')
    .option(
      '--format <kind>',
      "'wikitext', 'lines' (a sentence a line, documents apart), 'jsonl' or 'auto'",
      oneOf('--format', ['auto', 'wikitext', 'lines', 'jsonl'] as const),
      'auto',
    )
    .option('--text-field <name>', "JSON Lines: the field holding the text (default 'text')")
    .option(
      '--data-memory <MB>',
      'memory the data may hold (token ids past it go to a temporary file)',
      integer('--data-memory', 1),
      DATA_DEFAULTS.memory / MIB,
    )
    .option('--steps <n>', 'the step to train up to', integer('--steps', 1), d.steps)
    .option('--batch-size <n>', 'sentence pairs a batch', integer('--batch-size', 1), d.batchSize)
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
      'the (peak) learning rate',
      number('--lr', (n) => n > 0, 'a positive number'),
      d.lr,
    )
    .option('--warmup-steps <n>', 'steps of linear learning-rate warmup', integer('--warmup-steps', 0), d.warmupSteps)
    .option(
      '--schedule <kind>',
      "after the warmup: 'constant', 'linear' or 'cosine' (decay to 0 at --steps)",
      oneOf('--schedule', SCHEDULE_KINDS),
      d.schedule,
    )
    .option(
      '--clip-norm <x>',
      'clip gradients to this global L2 norm',
      number('--clip-norm', (n) => n > 0, 'a positive number'),
    )
    .option('--accumulate <n>', 'batches a step (gradient accumulation)', integer('--accumulate', 1), d.accumulate)
    .option(
      '--optimizer <kind>',
      "'adam' or 'adamw' (decoupled weight decay)",
      oneOf('--optimizer', ['adam', 'adamw'] as const),
      d.optimizer,
    )
    .option(
      '--weight-decay <x>',
      'weight decay (default 0; 0.01 with adamw)',
      number('--weight-decay', (n) => n >= 0, 'a number ≥ 0'),
    )
    .option('--seed <n>', 'random seed', integer('--seed', 0), d.seed)
    .option('--min-freq <n>', 'least count of a vocabulary word', integer('--min-freq', 1), d.minFreq)
    .option('--device <name>', "'auto', 'cpu', 'cuda' or 'cuda:N'", d.device)
    .option(
      '--eval-every <n>',
      'held-out evaluation every n steps (0: at the end only)',
      integer('--eval-every', 0),
      d.evalEvery,
    )
    .option('--eval-examples <n>', 'held-out sentence pairs', integer('--eval-examples', 1), d.evalExamples)
    .option('--out <dir>', 'the run folder: model, loss.svg, history.jsonl, checkpoints/', 'tsbert-model')
    .option(
      '--save-every <n>',
      'a checkpoint every n steps (0: at the end and when stopped)',
      integer('--save-every', 0),
      d.saveEvery,
    )
    .option('--keep-checkpoints <n>', 'checkpoints kept', integer('--keep-checkpoints', 1), d.keepCheckpoints)
    .option('--resume <dir>', 'continue the run of a checkpoint, or of a run folder (its latest)')
    .option('--from <dir>', "continued pretraining from a saved model (tsbert's or Hugging Face's BertForPreTraining)")
    .action((flags: PretrainFlags, command: Command) => runPretrain(flags, command));
  cli
    .command('evaluate')
    .description('held-out MLM and NSP loss and accuracy of a saved model')
    .requiredOption('--model <dir>', "a model folder with MLM and NSP heads: tsbert's or Hugging Face's")
    .requiredOption('--data <path>', 'the held-out corpus (a file, folder or glob)')
    .option('--max-len <n>', 'tokens per pair (default: 64, or the model positions if fewer)', integer('--max-len', 5))
    .option('--examples <n>', 'sentence pairs (a seeded sample)', integer('--examples', 1), EVAL_DEFAULTS.examples)
    .option('--seed <n>', 'seeds the sample and the masks', integer('--seed', 0), d.seed)
    .option(
      '--format <kind>',
      "'wikitext', 'lines', 'jsonl' or 'auto'",
      oneOf('--format', ['auto', 'wikitext', 'lines', 'jsonl'] as const),
      'auto',
    )
    .option('--text-field <name>', 'JSON Lines: the field holding the text')
    .action(runEvaluate);
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
