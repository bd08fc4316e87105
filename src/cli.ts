#!/usr/bin/env node
/**
 * The `tsbert` command: `tsbert pretrain`, `finetune`, `evaluate`, `encode`, `embed`, `fill-mask`,
 * `classify`, `tag` and `rerank`.
 *
 * @module
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { addFinetuneCommand, evaluationLines } from './cli/finetune.js';
import {
  addOptionFlags,
  checkOutputFolder,
  DTYPE_HELP,
  flagParser,
  interruptible,
  modelToInfer,
  parseDtype,
  runFolderOf,
} from './cli/flags.js';
import { lineChunks } from './cli/input.js';
import { addTaskCommands } from './cli/tasks.js';
import { type ModelSizes, TEXTBOOK_SIZES } from './config.js';
import type { CorpusFormat } from './data/formats.js';
import { LABELLED_FORMATS, type LabelledFormat } from './data/labelled-files.js';
import { corpusFiles } from './data/sources.js';
import type { ModelDtype } from './model.js';
import { PRETRAIN_DEFAULTS, type PretrainOptions, pretrain } from './pretrain.js';
import { POOLING_MODES, type PoolingMode } from './sentence-transformers.js';
import { embed } from './tasks/embed.js';
import { encode } from './tasks/encode.js';
import { fillMask } from './tasks/fill-mask.js';
import { EVAL_DEFAULTS, evaluate } from './training/evaluation.js';
import { FINETUNE_OPTIONS } from './training/finetune-options.js';
import { HISTORY_FILE } from './training/history.js';
import { defaultOf, integerFrom, oneOf, RUN_OPTIONS, type RunOption, type RunOptionName } from './training/options.js';
import { evaluateTask } from './training/task-evaluation.js';

/** `--pooling`'s modes, joined by commas. */
function parsePooling(text: string): PoolingMode[] {
  const modes = text.split(',').map((m) => m.trim());
  const bad = modes.find((m) => !POOLING_MODES.includes(m as PoolingMode));
  if (bad !== undefined) {
    throw new InvalidArgumentError(`--pooling: '${bad}' is not one of ${POOLING_MODES.join(', ')}.`);
  }
  return modes as PoolingMode[];
}

const preview = (values: Float32Array, n = 6) =>
  `[${Array.from(values.slice(0, n), (v) => v.toFixed(4)).join(', ')}${values.length > n ? ', …' : ''}]`;

/** The `pretrain` flags given, as commander parses them (camelCase: the run options' names), and `--no-valid`. */
type PretrainFlags = Partial<Record<RunOptionName, unknown>> & { valid?: string | false };

/** Where `tsbert pretrain` writes its run when `--out` is not given. */
const DEFAULT_OUT = 'tsbert-model';

/**
 * The options of a run from the flags given on the command line (the others are left to
 * `pretrain`'s defaults, so that a resumed run can tell what was asked): the model sizes into
 * `config`.
 */
function pretrainOptions(flags: PretrainFlags): PretrainOptions & { out: string } {
  const options: Record<string, unknown> = {};
  const config: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    const option: RunOption = RUN_OPTIONS[name as RunOptionName];
    if (option?.size) config[name] = value;
    else options[name] = value;
  }
  if (Object.keys(config).length > 0) options.config = config;
  return { ...options, out: runFolderOf(flags, DEFAULT_OUT) };
}

async function runPretrain(flags: PretrainFlags): Promise<void> {
  const options = pretrainOptions(flags);
  const out = options.out;
  await checkOutputFolder(out);
  const { summary, checkpoint } = await interruptible(out, (signal) =>
    pretrain({ ...options, signal, progress: true }),
  );
  console.log(`MLM loss ${summary.mlmLoss.toFixed(3)}, NSP loss ${summary.nspLoss.toFixed(3)}`);
  console.log(`${summary.pairsPerSec.toFixed(1)} sentence pairs/sec on ${summary.device}`);
  const h = summary.heldOut;
  if (h) {
    console.log(
      `held out (${h.examples} pairs): MLM loss ${h.mlmLoss.toFixed(3)}, accuracy ${(100 * h.mlmAccuracy).toFixed(1)}%; NSP loss ${h.nspLoss.toFixed(3)}, accuracy ${(100 * h.nspAccuracy).toFixed(1)}%`,
    );
  }
  console.log(`model saved to ${out}; loss curves in ${join(out, 'loss.svg')}, history in ${join(out, HISTORY_FILE)}`);
  if (checkpoint) console.log(`checkpoint: ${checkpoint} (tsbert pretrain --resume ${out} --steps N goes on)`);
}

interface EvaluateFlags {
  model: string;
  dtype: ModelDtype;
  data: string;
  maxLen?: number;
  examples: number;
  seed: number;
  format: CorpusFormat | LabelledFormat | 'auto';
  textField?: string;
  textColumn?: string;
  pairColumn?: string;
  labelColumn?: string;
  labelSeparator?: string;
  skipBadRows?: boolean;
}

/** The corpus layouts of a pretrained model's evaluation. */
const CORPUS_FORMATS = ['wikitext', 'lines', 'jsonl'];

async function runEvaluate(flags: EvaluateFlags): Promise<void> {
  const model = await modelToInfer(flags.model, flags.dtype);
  if (model.config.task) {
    const format = flags.format === 'auto' ? undefined : flags.format;
    if (format !== undefined && !(LABELLED_FORMATS as readonly string[]).includes(format)) {
      throw new Error(`--format: a task model reads ${LABELLED_FORMATS.join(', ')} or auto, not '${format}'`);
    }
    let skipped = 0;
    const result = await evaluateTask(model, flags.data, {
      ...flags,
      format: format as LabelledFormat | undefined,
      onBadRow: (error) => {
        if (++skipped <= 10) console.error(`skipped: ${error.message}`);
      },
    });
    console.log(`scored: ${flags.data} (${model.config.task.kind}, labels ${(model.labels ?? []).join(', ')})`);
    for (const line of evaluationLines(result)) console.log(line);
    if (skipped > 0) console.log(`${skipped} bad rows skipped`);
    return;
  }
  if (!CORPUS_FORMATS.includes(flags.format) && flags.format !== 'auto') {
    throw new Error(
      `--format: a pretrained model's corpus is ${CORPUS_FORMATS.join(', ')} or auto, not '${flags.format}'`,
    );
  }
  const format = flags.format as CorpusFormat | 'auto';
  const m = await evaluate(model, flags.data, { ...flags, format });
  const files = await corpusFiles(flags.data, format, true);
  console.log(`scored: ${files.length === 1 ? files[0].path : `${files.length} files of ${flags.data}`}`);
  console.log(`examples: ${m.examples}`);
  console.log(`MLM loss ${m.mlmLoss.toFixed(4)}, accuracy ${(100 * m.mlmAccuracy).toFixed(2)}%`);
  console.log(`NSP loss ${m.nspLoss.toFixed(4)}, accuracy ${(100 * m.nspAccuracy).toFixed(2)}%`);
}

async function runEncode(sentence: string, flags: { model: string; pair?: string; dtype: ModelDtype }): Promise<void> {
  const model = await modelToInfer(flags.model, flags.dtype);
  const encoding = await encode(model, sentence, flags.pair);
  console.log(`tokens: ${encoding.tokens.join(' ')}`);
  console.log(`shape: [${encoding.shape.join(', ')}]`);
  for (const [i, t] of encoding.tokens.entries()) {
    console.log(`${String(i).padStart(3)} ${t.padEnd(12)} ${preview(encoding.token(i).data)}`);
  }
}

/** Texts embedded and written at a time: the output streams, memory stays flat. */
const EMBED_CHUNK = 1024;

interface EmbedFlags {
  model: string;
  dtype: ModelDtype;
  input: string;
  pooling?: PoolingMode[];
  normalize?: boolean;
  maxLength?: number;
  batchSize: number;
}

async function runEmbed(flags: EmbedFlags): Promise<void> {
  const model = await modelToInfer(flags.model, flags.dtype);
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
      const vectors = await embed(model, texts, flags);
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

async function runFillMask(text: string, flags: { model: string; topK: number; dtype: ModelDtype }): Promise<void> {
  const model = await modelToInfer(flags.model, flags.dtype);
  for (const { position, predictions } of await fillMask(model, text, { topK: flags.topK })) {
    console.log(`mask at token ${position}:`);
    for (const p of predictions) console.log(`  ${p.token.padEnd(16)} ${p.probability.toFixed(4)}`);
  }
}

/** This package's version, from its `package.json` (beside `dist/` and `src/` alike). */
function packageVersion(): string {
  const text = readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

/** The command-line program. */
function program(): Command {
  const d = PRETRAIN_DEFAULTS;
  const cli = new Command('tsbert')
    .description('BERT pretraining, fine-tuning and encoding (WikiText-2, MLM + NSP; classifiers, NER, rerankers)')
    .version(packageVersion(), '-V, --version', "tsbert's version")
    .showHelpAfterError(false)
    .configureOutput({ outputError: (text, write) => write(`tsbert: ${text.replace(/^error: /, '')}`) });
  addOptionFlags(
    cli
      .command('pretrain')
      .description('pretrain a BERT model with MLM + NSP (WikiText-2 by default; any corpus, streamed)'),
    RUN_OPTIONS,
    (name) =>
      (RUN_OPTIONS[name as RunOptionName] as RunOption).size
        ? TEXTBOOK_SIZES[name as keyof ModelSizes]
        : defaultOf(name as RunOptionName),
  )
    .option('--no-valid', 'no held-out evaluation')
    .action((flags: PretrainFlags) => runPretrain(flags));
  cli
    .command('evaluate')
    .description(
      "a saved model on held-out data: MLM and NSP loss and accuracy of a pretrained model; a task model's loss and metrics on labelled data",
    )
    .requiredOption(
      '--model <dir|id>',
      "a model folder (tsbert's or Hugging Face's) with MLM and NSP heads or a task head, or a Hub id (required)",
    )
    .requiredOption(
      '--data <path>',
      'the held-out corpus (a file, folder or glob), or for a task model a labelled file (CSV, TSV, JSON Lines, CoNLL) (required)',
    )
    .option(
      '--max-len <n>',
      'tokens per pair (default: 64, or the model positions if fewer; a task model: its positions)',
      flagParser('--max-len', RUN_OPTIONS.maxLen.rule),
    )
    .option(
      '--examples <n>',
      'sentence pairs (a seeded sample)',
      flagParser('--examples', RUN_OPTIONS.evalExamples.rule),
      EVAL_DEFAULTS.examples,
    )
    .option('--seed <n>', 'seeds the sample and the masks', flagParser('--seed', RUN_OPTIONS.seed.rule), d.seed)
    .option(
      '--format <kind>',
      `'wikitext', 'lines', 'jsonl' (a task model: ${LABELLED_FORMATS.map((f) => `'${f}'`).join(', ')}) or 'auto'`,
      flagParser('--format', oneOf(['auto', ...new Set([...CORPUS_FORMATS, ...LABELLED_FORMATS])])),
      'auto',
    )
    .option('--text-field <name>', 'JSON Lines: the field holding the text')
    .option('--text-column <name>', FINETUNE_OPTIONS.textColumn.help)
    .option('--pair-column <name>', FINETUNE_OPTIONS.pairColumn.help)
    .option('--label-column <name>', FINETUNE_OPTIONS.labelColumn.help)
    .option('--label-separator <s>', FINETUNE_OPTIONS.labelSeparator.help)
    .option('--skip-bad-rows', FINETUNE_OPTIONS.skipBadRows.help)
    .option('--dtype <dtype>', DTYPE_HELP, parseDtype, 'f32')
    .action(runEvaluate);
  addFinetuneCommand(cli);
  addTaskCommands(cli);
  cli
    .command('encode')
    .description('print the contextual embedding of every token of a text (pair)')
    .argument('<text>', 'the first text')
    .requiredOption(
      '--model <dir|id>',
      "a model folder (tsbert's, written by `tsbert pretrain`, or Hugging Face's) or a Hub id (required)",
    )
    .option('--pair <text>', 'a second text')
    .option('--dtype <dtype>', DTYPE_HELP, parseDtype, 'f32')
    .action(runEncode);
  cli
    .command('embed')
    .description('one vector a line of the input, written as a JSON array a line')
    .requiredOption(
      '--model <dir|id>',
      "a model folder (tsbert's or Hugging Face's) or a Hub id (e.g. sentence-transformers/all-MiniLM-L6-v2) (required)",
    )
    .requiredOption('--input <file>', "the texts, one a line ('-' for standard input) (required)")
    .option(
      '--pooling <modes>',
      `sentence-transformers' pooling, one or several joined by commas: ${POOLING_MODES.join(', ')} (default: the folder's, else mean)`,
      parsePooling,
    )
    .option('--normalize', "divide each vector by its L2 norm (default: the folder's Normalize module)")
    .option('--no-normalize', 'do not, even if the folder has a Normalize module')
    .option(
      '--max-length <n>',
      "tokens a text keeps (default: the folder's max_seq_length, else the model's positions)",
      flagParser('--max-length', integerFrom(1)),
    )
    .option('--batch-size <n>', 'texts a native call', flagParser('--batch-size', integerFrom(1)), 32)
    .option('--dtype <dtype>', DTYPE_HELP, parseDtype, 'f32')
    .action(runEmbed);
  cli
    .command('fill-mask')
    .description("the most probable tokens for each mask token of a text ([MASK] or <mask>: either is the model's)")
    .argument('<text>', 'a text with one or more mask tokens')
    .requiredOption(
      '--model <dir|id>',
      "a model folder with an MLM head (tsbert's or Hugging Face's) or a Hub id (required)",
    )
    .option('--top-k <n>', 'candidates a mask', flagParser('--top-k', integerFrom(1)), 5)
    .option('--dtype <dtype>', DTYPE_HELP, parseDtype, 'f32')
    .action(runFillMask);
  return cli;
}

/**
 * A flag given twice (`--steps 5 --steps 9`) is an `Error` naming it: commander would keep the
 * last without a word.
 */
function refuseRepeatedFlags(args: readonly string[]): void {
  const seen = new Set<string>();
  for (const arg of args) {
    if (arg === '--') return;
    const flag = /^(--[a-z][a-z-]*)(=|$)/.exec(arg)?.[1];
    if (!flag) continue;
    if (seen.has(flag)) throw new Error(`${flag} is given twice; give each flag once`);
    seen.add(flag);
  }
}

/** Runs the program on `argv`; any failure is one line on stderr and exit code 1 (or the `exitCode` it carries). */
async function main(argv: string[] = process.argv): Promise<void> {
  try {
    refuseRepeatedFlags(argv.slice(2));
    await program().exitOverride().parseAsync(argv);
  } catch (error) {
    const e = error as { code?: string; exitCode?: number; message?: string };
    if (e.code?.startsWith('commander.')) {
      process.exitCode = e.exitCode ?? 1; // commander has printed its one line already
    } else {
      console.error(`tsbert: ${e.message ?? String(error)}`);
      process.exitCode = e.exitCode ?? 1;
    }
  }
}

await main();
