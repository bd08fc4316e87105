/**
 * What the `tsbert` commands share: flags read by the run options' rules, the output folder
 * checked before any work, and the exit statuses of a stopped run.
 *
 * @internal
 * @module
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';

import { type Command, InvalidArgumentError } from 'commander';
import { TrainingDivergedError } from '../errors.js';
import { BertModel, MODEL_DTYPES, type ModelDtype } from '../model.js';
import { CHECKPOINTS_DIR } from '../training/checkpoints.js';
import type { Rule, RunOption } from '../training/options.js';

/**
 * The parser of a flag's argument by `rule` (a number where the rule takes numbers), times
 * `unit`; a value the rule does not take is commander's one-line error naming the flag.
 */
export function flagParser<T>(flag: string, rule: Rule<T>, unit = 1) {
  return (text: string): T => {
    const value = rule.is(text) ? text : Number(text);
    if (text.trim() === '' || !rule.is(value) || !rule.accepts(value as T)) {
      throw new InvalidArgumentError(`${flag} must be ${rule.expected}.`);
    }
    return (typeof value === 'number' ? value * unit : value) as T;
  };
}

/** `--dtype`'s help: how a loaded model computes. */
export const DTYPE_HELP = `how the model computes: ${MODEL_DTYPES.join(' or ')} (q8: int8 dense layers, faster; it cannot train)`;

/**
 * The model of `--model` for a command that only infers (encode, embed, fill-mask, evaluate,
 * classify, tag, rerank): in `dtype`, loaded to infer only (see `LoadOptions.inferenceOnly`).
 */
export function modelToInfer(dir: string, dtype: ModelDtype): Promise<BertModel> {
  return BertModel.load(dir, { dtype, inferenceOnly: true });
}

/** `--dtype`'s parser: one of {@link MODEL_DTYPES}, else commander's one-line error. */
export function parseDtype(text: string): ModelDtype {
  if (!(MODEL_DTYPES as readonly string[]).includes(text)) {
    throw new InvalidArgumentError(`--dtype must be ${MODEL_DTYPES.join(' or ')}.`);
  }
  return text as ModelDtype;
}

/** Exit status of a run stopped by Ctrl-C (128 + SIGINT) or SIGTERM (128 + 15), after what was trained is saved. */
export const INTERRUPTED: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Checks that `dir` can receive the model before any work is done: an existing folder we can
 * write in, or a path whose nearest existing parent is one. An `Error` naming `--out` otherwise.
 */
export async function checkOutputFolder(dir: string): Promise<void> {
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

/**
 * Adds the options of `table` that have a flag to `command`: each read by its rule (a value it
 * does not take is commander's one-line error naming the flag), its default (`fallback`, else
 * the option's) in the help.
 */
export function addOptionFlags(
  command: Command,
  table: Readonly<Record<string, RunOption>>,
  fallback: (name: string) => unknown,
): Command {
  for (const [name, option] of Object.entries(table)) {
    if (!option.flag) continue;
    const unit = option.flagUnit ?? 1;
    const value = fallback(name);
    const shown = typeof value === 'number' ? value / unit : value;
    const help =
      value === undefined || /\(default/.test(option.help ?? '') ? option.help : `${option.help} (default: ${shown})`;
    if (option.flag.includes('<')) {
      command.option(option.flag, help ?? '', flagParser(option.flag.split(' ')[0], option.rule, unit));
    } else {
      command.option(option.flag, help ?? '');
    }
  }
  return command;
}

/**
 * The output folder of a command's run: `--out`, else the folder of the run `--resume` names
 * (a run folder, or the run folder of a checkpoint folder `DIR/checkpoints/step-N`), else
 * `fallback`.
 */
export function runFolderOf(flags: { out?: unknown; resume?: unknown }, fallback: string): string {
  if (typeof flags.out === 'string') return flags.out;
  if (typeof flags.resume !== 'string') return fallback;
  const parent = dirname(resolve(flags.resume));
  return basename(parent) === CHECKPOINTS_DIR ? dirname(parent) : flags.resume;
}

/**
 * Runs a training run with a signal that Ctrl-C (SIGINT) and SIGTERM abort: stopped before its
 * first step, an `Error` saying nothing was written (exit status 130 or 143); stopped later,
 * what was trained is saved by the run and the exit status says how it was stopped. A diverged
 * run is an `Error` saying the model in `out` was not overwritten.
 */
export async function interruptible<T extends { summary: { aborted: boolean; lastStep: number } }>(
  out: string,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let signal: string | undefined;
  const stop = (name: string) => {
    signal = name;
    controller.abort();
  };
  for (const name of Object.keys(INTERRUPTED)) process.once(name, stop);
  try {
    const result = await run(controller.signal).catch((error: unknown) => {
      if (controller.signal.aborted && error === controller.signal.reason) {
        const message = `interrupted (${signal}) before the first step: nothing was written to '${out}'`;
        throw Object.assign(new Error(message, { cause: error }), { exitCode: INTERRUPTED[signal ?? 'SIGINT'] });
      }
      if (!(error instanceof TrainingDivergedError)) throw error;
      throw new Error(`${error.message}; the model in '${out}' was not overwritten`, { cause: error });
    });
    if (result.summary.aborted) {
      console.error(`interrupted (${signal ?? 'stopped'}) at step ${result.summary.lastStep}; saving what was trained`);
      process.exitCode = INTERRUPTED[signal ?? 'SIGINT'];
    }
    return result;
  } finally {
    for (const name of Object.keys(INTERRUPTED)) process.off(name, stop);
  }
}
