/**
 * The options of a pretraining run, each declared once: its default, the values it takes, its
 * command-line flag and help, whether a resumed run may change it, and whether the run keeps
 * it (in its checkpoints). `pretrain`'s defaults and checks, the CLI's flags and the resume
 * check all derive from {@link RUN_OPTIONS} (nanoGPT's `train.py` + `configurator.py`, in
 * spirit); fine-tuning reuses the rules.
 *
 * @module
 */
import { DATA_DEFAULTS } from '../data/defaults.js';
import type { CorpusSource } from '../data/sources.js';
import type { Device } from '../device.js';
import { native } from '../native.js';
import { SCHEDULE_KINDS } from './schedule.js';

/**
 * The values an option takes: of one JavaScript kind (another is a `TypeError`), and among
 * those, the ones `accepts` takes (another is a `RangeError`).
 */
export interface Rule<T> {
  /** What the values are, in words (`'a positive integer'`). */
  expected: string;
  /** Whether `value` is of the option's kind. */
  is(value: unknown): boolean;
  /** Whether a value of the right kind is one. */
  accepts(value: T): boolean;
}

const isNumber = (value: unknown) => typeof value === 'number';
const isString = (value: unknown) => typeof value === 'string';

/** An integer ≥ `least`. */
export const integerFrom = (least: number): Rule<number> => ({
  expected: least === 1 ? 'a positive integer' : `an integer ≥ ${least}`,
  is: isNumber,
  accepts: (n) => Number.isInteger(n) && n >= least,
});

/** A finite number > 0. */
export const POSITIVE: Rule<number> = {
  expected: 'a positive number',
  is: isNumber,
  accepts: (n) => Number.isFinite(n) && n > 0,
};

/** A finite number ≥ 0. */
export const NON_NEGATIVE: Rule<number> = {
  expected: 'a number ≥ 0',
  is: isNumber,
  accepts: (n) => Number.isFinite(n) && n >= 0,
};

/** A probability of dropping: a number in [0, 1). */
export const PROBABILITY: Rule<number> = {
  expected: 'a number in [0, 1)',
  is: isNumber,
  accepts: (n) => Number.isFinite(n) && n >= 0 && n < 1,
};

/** `true` or `false`. */
export const BOOLEAN: Rule<boolean> = {
  expected: 'true or false',
  is: (value) => typeof value === 'boolean',
  accepts: () => true,
};

/** A non-empty string. */
export const TEXT: Rule<string> = { expected: 'a non-empty string', is: isString, accepts: (s) => s !== '' };

/** A corpus: a path or glob, or the lines themselves. */
export const CORPUS: Rule<CorpusSource> = {
  expected: 'a path, a glob or an array of lines',
  is: (value) => isString(value) || (Array.isArray(value) && value.every(isString)),
  accepts: (source) => source !== '',
};

/** A held-out corpus, or `false` for none. */
export const HELD_OUT: Rule<CorpusSource | false> = {
  expected: 'a path, a glob, an array of lines or false',
  is: (value) => value === false || CORPUS.is(value),
  accepts: (source) => source === false || CORPUS.accepts(source),
};

/** Where to run: a device name or a list of them (whose names `resolveDevice` checks). */
export const DEVICE: Rule<Device> = {
  expected: "'auto', 'cpu', 'cuda', 'cuda:N' or a list of devices",
  is: (value) => isString(value) || (Array.isArray(value) && value.every(isString)),
  accepts: () => true,
};

/** One of `values`. */
export const oneOf = <T extends string>(values: readonly T[]): Rule<T> => ({
  expected: `one of ${values.map((v) => `'${v}'`).join(', ')}`,
  is: isString,
  accepts: (v) => values.includes(v),
});

/** A value as a message shows it: strings quoted. */
const shown = (value: unknown) => (typeof value === 'string' ? `'${value}'` : String(value));

/**
 * `value` if `rule` takes it; else a `TypeError` (another kind) or `RangeError` naming `name`
 * and saying what is expected.
 */
export function checked<T>(name: string, rule: Rule<T>, value: unknown): T {
  const message = `${name}: expected ${rule.expected}, got ${shown(value)}`;
  if (!rule.is(value)) throw new TypeError(message);
  if (!rule.accepts(value as T)) throw new RangeError(message);
  return value as T;
}

/** One option of a run. */
export interface RunOption<T = unknown> {
  /** The values it takes. */
  rule: Rule<T>;
  /** Its value when not given (a function: read when first needed); none: it has none. */
  default?: T | (() => T);
  /** Its command-line flag (`'--batch-size <n>'`; without an argument for `true`); none: the API only. */
  flag?: string;
  /** What it does, for the command's help. */
  help?: string;
  /** Bytes a unit of the flag's value is (`--data-memory` is in MiB, `dataMemory` in bytes). */
  flagUnit?: number;
  /** A model size: the CLI flag sets `config[name]`. */
  size?: true;
  /** Whether a resumed run may take a new value (the others are the run's). */
  renewable?: true;
  /** Whether the run's checkpoints keep it (as resolved when the run began). */
  kept?: true;
}

const MIB = 2 ** 20;

/** Every option of `pretrain` and `tsbert pretrain` but the callbacks and the data sources. */
export const RUN_OPTIONS = {
  data: {
    rule: CORPUS,
    flag: '--data <path>',
    help: 'a file, a folder (its wiki.train.tokens, or every file) or a glob; default: WikiText-2, downloaded once',
    renewable: true,
  },
  valid: {
    rule: HELD_OUT,
    flag: '--valid <path>',
    help: 'held-out corpus (default: wiki.valid.tokens beside the training file)',
    renewable: true,
  },
  format: {
    rule: oneOf(['auto', 'wikitext', 'lines', 'jsonl'] as const),
    default: 'auto' as const,
    flag: '--format <kind>',
    help: "'wikitext', 'lines' (a sentence a line, documents apart), 'jsonl' or 'auto'",
    kept: true,
  },
  textField: {
    rule: TEXT,
    flag: '--text-field <name>',
    help: "JSON Lines: the field holding the text (default 'text')",
    kept: true,
  },
  dataMemory: {
    rule: integerFrom(1),
    default: DATA_DEFAULTS.memory,
    flag: '--data-memory <MB>',
    flagUnit: MIB,
    help: 'memory the data may hold (token ids past it go to a temporary file)',
    kept: true,
  },
  steps: { rule: integerFrom(1), default: 50, flag: '--steps <n>', help: 'the step to train up to', renewable: true },
  batchSize: {
    rule: integerFrom(1),
    default: 512,
    flag: '--batch-size <n>',
    help: 'sentence pairs a batch',
    kept: true,
  },
  maxLen: {
    rule: integerFrom(5),
    default: DATA_DEFAULTS.maxLen,
    flag: '--max-len <n>',
    help: 'tokens per pair',
    kept: true,
  },
  hidden: { rule: integerFrom(1), flag: '--hidden <n>', help: 'hidden width', size: true },
  layers: { rule: integerFrom(1), flag: '--layers <n>', help: 'encoder blocks', size: true },
  heads: { rule: integerFrom(1), flag: '--heads <n>', help: 'attention heads', size: true },
  ffnHidden: { rule: integerFrom(1), flag: '--ffn-hidden <n>', help: 'feed-forward width', size: true },
  dropout: { rule: PROBABILITY, flag: '--dropout <p>', help: 'dropout probability', size: true },
  lr: {
    rule: POSITIVE,
    default: () => native().defaultAdam().lr,
    flag: '--lr <x>',
    help: 'the (peak) learning rate',
    kept: true,
  },
  warmupSteps: {
    rule: integerFrom(0),
    default: 0,
    flag: '--warmup-steps <n>',
    help: 'steps of linear learning-rate warmup',
    kept: true,
  },
  schedule: {
    rule: oneOf(SCHEDULE_KINDS),
    default: 'constant' as const,
    flag: '--schedule <kind>',
    help: "after the warmup: 'constant', 'linear' or 'cosine' (decay to 0 at --steps)",
    kept: true,
  },
  clipNorm: { rule: POSITIVE, flag: '--clip-norm <x>', help: 'clip gradients to this global L2 norm', kept: true },
  accumulate: {
    rule: integerFrom(1),
    default: 1,
    flag: '--accumulate <n>',
    help: 'batches a step (gradient accumulation)',
    kept: true,
  },
  optimizer: {
    rule: oneOf(['adam', 'adamw'] as const),
    default: 'adam' as const,
    flag: '--optimizer <kind>',
    help: "'adam' or 'adamw' (decoupled weight decay)",
    kept: true,
  },
  weightDecay: {
    rule: NON_NEGATIVE,
    flag: '--weight-decay <x>',
    help: 'weight decay (default 0; 0.01 with adamw)',
    kept: true,
  },
  seed: { rule: integerFrom(0), default: DATA_DEFAULTS.seed, flag: '--seed <n>', help: 'random seed', kept: true },
  minFreq: {
    rule: integerFrom(1),
    default: DATA_DEFAULTS.minFreq,
    flag: '--min-freq <n>',
    help: 'least count of a vocabulary word',
    kept: true,
  },
  device: {
    rule: DEVICE,
    default: 'auto' as const,
    flag: '--device <name>',
    help: "'auto', 'cpu', 'cuda' or 'cuda:N'",
    renewable: true,
  },
  memoryLimit: { rule: integerFrom(1), renewable: true },
  evalEvery: {
    rule: integerFrom(0),
    default: 0,
    flag: '--eval-every <n>',
    help: 'held-out evaluation every n steps (0: at the end only)',
    renewable: true,
    kept: true,
  },
  evalExamples: {
    rule: integerFrom(1),
    default: 2048,
    flag: '--eval-examples <n>',
    help: 'held-out sentence pairs',
    kept: true,
  },
  out: {
    rule: TEXT,
    flag: '--out <dir>',
    help: 'the run folder: model, loss.svg, history.jsonl, checkpoints/ (default tsbert-model)',
    renewable: true,
  },
  overwrite: {
    rule: BOOLEAN,
    default: false,
    flag: '--overwrite',
    help: 'replace what another run left in --out (its model, checkpoints and history) instead of refusing the folder',
    renewable: true,
  },
  saveEvery: {
    rule: integerFrom(0),
    default: 0,
    flag: '--save-every <n>',
    help: 'a checkpoint every n steps (0: at the end and when stopped)',
    renewable: true,
    kept: true,
  },
  keepCheckpoints: {
    rule: integerFrom(1),
    default: 3,
    flag: '--keep-checkpoints <n>',
    help: 'checkpoints kept',
    renewable: true,
    kept: true,
  },
  resume: {
    rule: TEXT,
    flag: '--resume <dir>',
    help: 'continue the run of a checkpoint, or of a run folder (its latest)',
  },
  from: {
    rule: TEXT,
    flag: '--from <dir|id>',
    help: "continued pretraining from a saved model (tsbert's or Hugging Face's BertForPreTraining) or a Hub id",
    kept: true,
  },
} satisfies Record<string, RunOption>;

/** The name of a run option. */
export type RunOptionName = keyof typeof RUN_OPTIONS;

/** The value type of option `K`. */
export type RunOptionValue<K extends RunOptionName> = (typeof RUN_OPTIONS)[K]['rule'] extends Rule<infer T> ? T : never;

/**
 * The options that have a default.
 *
 * @inline
 */
export type DefaultedRunOption = {
  [K in RunOptionName]: (typeof RUN_OPTIONS)[K] extends Required<Pick<RunOption, 'default'>> ? K : never;
}[RunOptionName];

/** The defaults of the run options that have one. */
export type RunDefaults = { readonly [K in DefaultedRunOption]: RunOptionValue<K> };

/** The default of option `name` (its function called), if it has one. */
export function defaultOf<K extends RunOptionName>(name: K): RunOptionValue<K> | undefined {
  const option: RunOption = RUN_OPTIONS[name];
  return (typeof option.default === 'function' ? (option.default as () => unknown)() : option.default) as
    | RunOptionValue<K>
    | undefined;
}

/** Every option's default, read when asked for (the learning rate's from the addon). */
export const RUN_DEFAULTS: RunDefaults = Object.freeze(
  Object.defineProperties(
    {},
    Object.fromEntries(
      (Object.entries(RUN_OPTIONS) as [RunOptionName, RunOption][])
        .filter(([, option]) => option.default !== undefined)
        .map(([name]) => [name, { get: () => defaultOf(name), enumerable: true }]),
    ),
  ),
) as RunDefaults;

/** Option `name`'s value: `value` checked by its rule, or its default when `value` is absent. */
export function resolveOption<K extends RunOptionName>(name: K, value: unknown): RunOptionValue<K> | undefined {
  if (value === undefined) return defaultOf(name);
  return checked(name, RUN_OPTIONS[name].rule as Rule<RunOptionValue<K>>, value);
}

/** The options a run keeps (its checkpoints' `run.json` holds them). */
export type KeptRunOption = {
  [K in RunOptionName]: (typeof RUN_OPTIONS)[K] extends { kept: true } ? K : never;
}[RunOptionName];

/** The names of {@link KeptRunOption}. */
export const KEPT: readonly KeptRunOption[] = Object.freeze(
  (Object.keys(RUN_OPTIONS) as RunOptionName[]).filter(
    (name): name is KeptRunOption => (RUN_OPTIONS[name] as RunOption).kept === true,
  ),
);

/** The options a resumed run may give anew (the others are the run's). */
export const RENEWABLE: readonly RunOptionName[] = Object.freeze(
  (Object.keys(RUN_OPTIONS) as RunOptionName[]).filter((name) => (RUN_OPTIONS[name] as RunOption).renewable),
);

/**
 * Checks a run's options object before anything is done: not an object, a callback (one of
 * `callbacks`) that is no function, a `signal` that is no `AbortSignal` or a `progress` that is
 * no boolean is a `TypeError`; every other option is `check(name, value)`'s, which returns
 * false for a name that is no option (then a `TypeError` naming `what`, and `hint` if given).
 */
export function checkRunOptions(
  options: object,
  callbacks: readonly string[],
  what: string,
  check: (name: string, value: unknown) => boolean,
  hint = '',
): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('options: expected an object');
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (callbacks.includes(name)) {
      if (typeof value !== 'function') throw new TypeError(`${name}: expected a function, got ${typeof value}`);
    } else if (name === 'signal') {
      if (!(value instanceof AbortSignal)) throw new TypeError('signal: expected an AbortSignal');
    } else if (name === 'progress') {
      checked('progress', BOOLEAN, value);
    } else if (!check(name, value)) {
      throw new TypeError(`${name}: not an option of ${what}${hint}`);
    }
  }
}

/** Items a second over timed steps, the first (warm-up) step left out when there are others; NaN for none. */
export function throughput(timings: readonly { items: number; seconds: number }[]): number {
  const timed = timings.length > 1 ? timings.slice(1) : timings;
  const items = timed.reduce((n, t) => n + t.items, 0);
  const seconds = timed.reduce((s, t) => s + t.seconds, 0);
  return seconds > 0 ? items / seconds : Number.NaN;
}

/** The mean of `xs`; NaN for none. */
export const meanOf = (xs: readonly number[]): number =>
  xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
