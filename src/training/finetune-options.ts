/**
 * The options of a fine-tuning run, each declared once as the pretraining run's are (see
 * `options.ts`): BERT's fine-tuning recipe as the defaults (AdamW at 2e-5 with weight decay
 * 0.01, biases and layer norms spared; linear warmup over 10% of the steps then linear decay;
 * 3 epochs of batches of 32; 128 tokens; gradients clipped at 1, as transformers' `Trainer`),
 * the flags and help of `tsbert finetune`, and which a resumed run may change.
 *
 * @module
 */
import { LABELLED_FORMATS } from '../data/labelled-files.js';
import {
  BOOLEAN,
  checked,
  integerFrom,
  NON_NEGATIVE,
  oneOf,
  POSITIVE,
  RUN_OPTIONS,
  type Rule,
  type RunOption,
  TEXT,
} from './options.js';

/** What a fine-tuning run trains: a head on each sequence (or pair), or on each token. */
export type FinetuneTask = 'sequence-classification' | 'token-classification';

/** The problem types of a sequence's head, as Hugging Face names them. */
export type ProblemType = 'single_label_classification' | 'multi_label_classification' | 'regression';

/** A fraction in (0, 1). */
const FRACTION: Rule<number> = {
  expected: 'a number in (0, 1)',
  is: (value) => typeof value === 'number',
  accepts: (n) => n > 0 && n < 1,
};

/** A fraction in [0, 1). */
const SHARE: Rule<number> = { ...FRACTION, expected: 'a number in [0, 1)', accepts: (n) => n >= 0 && n < 1 };

/** Every option of `finetune` and `tsbert finetune` but the callbacks. */
export const FINETUNE_OPTIONS = {
  model: {
    rule: TEXT,
    flag: '--model <dir|id>',
    help: "the model to fine-tune: a folder (tsbert's, or Hugging Face's BertModel, BertForPreTraining or task model) or a Hub id (required, unless --resume)",
    kept: true,
  },
  task: {
    rule: oneOf(['sequence-classification', 'token-classification'] as const),
    flag: '--task <kind>',
    help: "'sequence-classification' (a text or pair) or 'token-classification' (default: the model's head, else sequence-classification)",
    kept: true,
  },
  problemType: {
    rule: oneOf(['single_label_classification', 'multi_label_classification', 'regression'] as const),
    flag: '--problem-type <kind>',
    help: "a sequence's head (default: the model's, else from the labels: lists make multi-label, fractions a regression)",
    kept: true,
  },
  train: {
    rule: TEXT,
    flag: '--train <file>',
    help: 'the training data (CSV, TSV, JSON Lines or CoNLL) (required, unless --resume)',
    kept: true,
  },
  valid: { rule: TEXT, flag: '--valid <file>', help: 'held-out data, in the same layout', kept: true },
  validSplit: {
    rule: FRACTION,
    flag: '--valid-split <x>',
    help: 'hold out this fraction of the training rows (a seeded draw) when there is no --valid',
    kept: true,
  },
  format: {
    rule: oneOf(['auto', ...LABELLED_FORMATS] as const),
    default: 'auto' as const,
    flag: '--format <kind>',
    help: "'csv', 'tsv', 'jsonl', 'conll' or 'auto' (from the extension)",
    kept: true,
  },
  textColumn: {
    rule: TEXT,
    flag: '--text-column <name>',
    help: "the text's column (default 'text'; 'tokens' for token classification)",
    kept: true,
  },
  pairColumn: {
    rule: TEXT,
    flag: '--pair-column <name>',
    help: "the second text's column, for pairs (default 'text_pair', when the rows have it)",
    kept: true,
  },
  labelColumn: {
    rule: TEXT,
    flag: '--label-column <name>',
    help: "the label's column (default 'label'; 'tags' for token classification)",
    kept: true,
  },
  labelSeparator: {
    rule: TEXT,
    default: ',',
    flag: '--label-separator <s>',
    help: 'joins the labels of a multi-label row in a CSV or TSV field',
    kept: true,
  },
  skipBadRows: {
    rule: BOOLEAN,
    default: false,
    flag: '--skip-bad-rows',
    help: 'skip rows that cannot be used (and count them) instead of stopping at the first',
    kept: true,
  },
  maxLen: {
    rule: integerFrom(3),
    default: 128,
    flag: '--max-len <n>',
    help: "tokens an example keeps (default: 128, or the model's positions if fewer)",
    kept: true,
  },
  batchSize: { rule: integerFrom(1), default: 32, flag: '--batch-size <n>', help: 'examples a batch', kept: true },
  epochs: { rule: integerFrom(1), default: 3, flag: '--epochs <n>', help: 'passes over the training data', kept: true },
  steps: {
    rule: integerFrom(1),
    flag: '--steps <n>',
    help: 'the step to train up to (default: epochs × steps an epoch)',
    renewable: true,
  },
  lr: { rule: POSITIVE, default: 2e-5, flag: '--lr <x>', help: 'the peak learning rate', kept: true },
  warmupRatio: {
    rule: SHARE,
    default: 0.1,
    flag: '--warmup-ratio <x>',
    help: 'the fraction of the steps of linear warmup',
    kept: true,
  },
  warmupSteps: { ...RUN_OPTIONS.warmupSteps, default: undefined, help: 'steps of warmup (instead of --warmup-ratio)' },
  schedule: { ...RUN_OPTIONS.schedule, default: 'linear' as const },
  optimizer: { ...RUN_OPTIONS.optimizer, default: 'adamw' as const },
  weightDecay: { rule: NON_NEGATIVE, default: 0.01, flag: '--weight-decay <x>', help: 'weight decay', kept: true },
  clipNorm: { ...RUN_OPTIONS.clipNorm, default: 1 },
  accumulate: RUN_OPTIONS.accumulate,
  seed: { ...RUN_OPTIONS.seed, default: 42 },
  groupByLength: {
    rule: BOOLEAN,
    default: false,
    flag: '--group-by-length',
    help: 'batch examples of similar lengths together (less padding)',
    kept: true,
  },
  device: RUN_OPTIONS.device,
  memoryLimit: RUN_OPTIONS.memoryLimit,
  evalEvery: { ...RUN_OPTIONS.evalEvery, help: 'held-out evaluation every n steps (0: at the end of each epoch)' },
  metric: {
    rule: TEXT,
    flag: '--metric <name>',
    help: "what picks the best model: accuracy, macroF1, … (default: accuracy; microF1 for multi-label, pearson for a regression, f1 for tokens; 'loss' too)",
    kept: true,
  },
  earlyStopping: {
    rule: integerFrom(1),
    flag: '--early-stopping <n>',
    help: 'stop after n evaluations without improvement',
    renewable: true,
    kept: true,
  },
  out: {
    ...RUN_OPTIONS.out,
    help: 'the run folder: the best model, loss.svg, history.jsonl, checkpoints/ (default tsbert-finetuned)',
  },
  overwrite: RUN_OPTIONS.overwrite,
  saveEvery: RUN_OPTIONS.saveEvery,
  keepCheckpoints: RUN_OPTIONS.keepCheckpoints,
  resume: RUN_OPTIONS.resume,
} satisfies Record<string, RunOption>;

/** The name of a fine-tuning option. */
export type FinetuneOptionName = keyof typeof FINETUNE_OPTIONS;

/** The value type of option `K`. */
export type FinetuneOptionValue<K extends FinetuneOptionName> =
  (typeof FINETUNE_OPTIONS)[K]['rule'] extends Rule<infer T> ? T : never;

/** Option `name`'s value: `value` checked by its rule, or its default when `value` is absent. */
export function finetuneOption<K extends FinetuneOptionName>(
  name: K,
  value: unknown,
): FinetuneOptionValue<K> | undefined {
  const option: RunOption = FINETUNE_OPTIONS[name];
  if (value === undefined) return option.default as FinetuneOptionValue<K> | undefined;
  return checked(name, option.rule as Rule<FinetuneOptionValue<K>>, value);
}

/** The options a fine-tuning run keeps in its checkpoints. */
export const FINETUNE_KEPT: readonly FinetuneOptionName[] = Object.freeze(
  (Object.keys(FINETUNE_OPTIONS) as FinetuneOptionName[]).filter(
    (name) => (FINETUNE_OPTIONS[name] as RunOption).kept === true,
  ),
);

/** The options a resumed fine-tuning run may give anew. */
export const FINETUNE_RENEWABLE: readonly FinetuneOptionName[] = Object.freeze(
  (Object.keys(FINETUNE_OPTIONS) as FinetuneOptionName[]).filter(
    (name) => (FINETUNE_OPTIONS[name] as RunOption).renewable === true,
  ),
);
