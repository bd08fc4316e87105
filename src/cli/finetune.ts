/**
 * `tsbert finetune`: {@link finetune} from the command line, stopped by Ctrl-C or SIGTERM with
 * what was trained saved, its figures printed at the end.
 *
 * @internal
 * @module
 */
import { join } from 'node:path';

import type { Command } from 'commander';
import { type FinetuneEvalRecord, type FinetuneOptions, finetune } from '../finetune.js';
import { FINETUNE_OPTIONS, type FinetuneOptionName } from '../training/finetune-options.js';
import { HISTORY_FILE } from '../training/history.js';
import type { RunOption } from '../training/options.js';
import type { ClassificationMetrics, ClassScores, EntityMetrics, MultiLabelMetrics } from '../training/task-metrics.js';
import { addOptionFlags, checkOutputFolder, interruptible, runFolderOf } from './flags.js';

/** Where `tsbert finetune` writes its run when `--out` is not given. */
const DEFAULT_OUT = 'tsbert-finetuned';

/** Bad rows named one by one on stderr before they are only counted. */
const NAMED_BAD_ROWS = 10;

/** Per-class (or per-type) scores as lines of a table. */
function scoreLines(scores: readonly ClassScores[]): string[] {
  const width = Math.max(5, ...scores.map((s) => s.label.length));
  const f = (x: number) => x.toFixed(4).padStart(9);
  return [
    `  ${'label'.padEnd(width)} precision    recall        f1   support`,
    ...scores.map(
      (s) => `  ${s.label.padEnd(width)}${f(s.precision)} ${f(s.recall)} ${f(s.f1)} ${String(s.support).padStart(9)}`,
    ),
  ];
}

/** The lines describing an evaluation: its metrics, then per-class scores and a classifier's confusion matrix. */
export function evaluationLines(record: Pick<FinetuneEvalRecord, 'metrics' | 'detail' | 'examples'>): string[] {
  const lines = [
    `${record.examples} examples: ${Object.entries(record.metrics)
      .map(([k, v]) => `${k} ${v.toFixed(4)}`)
      .join(', ')}`,
  ];
  const detail = record.detail as Partial<ClassificationMetrics & MultiLabelMetrics & EntityMetrics>;
  const scores = detail.perClass ?? detail.perType;
  if (scores && scores.length > 0) lines.push(...scoreLines(scores));
  if (detail.confusion && detail.perClass) {
    const names = detail.perClass.map((s) => s.label);
    const width = Math.max(6, ...names.map((n) => n.length), ...detail.confusion.flat().map((n) => String(n).length));
    lines.push(`  confusion (rows: gold, columns: predicted)`);
    lines.push(`  ${''.padEnd(width)} ${names.map((n) => n.padStart(width)).join(' ')}`);
    for (const [i, row] of detail.confusion.entries()) {
      lines.push(`  ${names[i].padEnd(width)} ${row.map((n) => String(n).padStart(width)).join(' ')}`);
    }
  }
  return lines;
}

/** The options of `finetune` from the flags given (the others left to its defaults, so that a resumed run can tell what was asked); a resumed run's folder is its `--out` by default. */
function finetuneOptions(flags: Record<string, unknown>): FinetuneOptions & { out: string } {
  const options = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  return { ...options, out: runFolderOf(flags, DEFAULT_OUT) } as FinetuneOptions & { out: string };
}

/** Runs `tsbert finetune`. */
async function runFinetune(flags: Record<string, unknown>): Promise<void> {
  const options = finetuneOptions(flags);
  const { out } = options;
  await checkOutputFolder(out);
  let bad = 0;
  const { summary, checkpoint, labels } = await interruptible(out, (signal) =>
    finetune({
      ...options,
      signal,
      progress: true,
      onBadRow: (error) => {
        if (++bad <= NAMED_BAD_ROWS) console.error(`skipped: ${error.message}`);
        else if (bad === NAMED_BAD_ROWS + 1) console.error('skipped: more bad rows (counted in the summary)');
      },
    }),
  );
  const { data } = summary;
  console.log(`labels (${labels.kind}): ${labels.names.join(', ')}`);
  console.log(
    `data: ${data.train} training examples, ${data.valid} held out; ${data.truncated} cut to --max-len; ${data.skipped} bad rows skipped`,
  );
  console.log(
    `${summary.steps} steps to step ${summary.lastStep}: mean loss ${summary.loss.toFixed(4)}, ${summary.examplesPerSec.toFixed(1)} examples/sec on ${summary.device}${summary.earlyStopped ? ' (stopped early: no improvement)' : ''}`,
  );
  const best = summary.best;
  if (best) {
    console.log(`best by ${summary.metric}: step ${best.step} (epoch ${best.epoch.toFixed(2)})`);
    for (const line of evaluationLines(best)) console.log(line);
  }
  console.log(
    `model${best ? ` (step ${best.step})` : ''} saved to ${out}; curves in ${join(out, 'loss.svg')}, history in ${join(out, HISTORY_FILE)}`,
  );
  if (checkpoint) console.log(`checkpoint: ${checkpoint} (tsbert finetune --resume ${out} --steps N goes on)`);
}

/** Adds `tsbert finetune` to `cli`. */
export function addFinetuneCommand(cli: Command): void {
  addOptionFlags(
    cli
      .command('finetune')
      .description(
        'fine-tune a model on labelled data: a classifier of texts or pairs (one label, several, a number) or a token classifier (NER)',
      ),
    FINETUNE_OPTIONS,
    (name) => (FINETUNE_OPTIONS[name as FinetuneOptionName] as RunOption).default,
  ).action((flags: Record<string, unknown>) => runFinetune(flags));
}
