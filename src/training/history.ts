/**
 * A run's history: one JSON line a step and one an evaluation in `history.jsonl`, so that
 * runs can be compared by any tool, appended as the run goes (each step's line before the
 * checkpoint of that step) and cut back to a checkpoint's step when the run resumes from it.
 *
 * @module
 */
import { appendFile, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** What one training step reports. */
export interface StepRecord {
  /** 1-based step number (over the whole run, resumed or not). */
  step: number;
  /** Weighted masked-language-model loss, before the step's update. */
  mlmLoss: number;
  /** Next-sentence-prediction loss, before the step's update. */
  nspLoss: number;
  /** The learning rate of the step. */
  lr: number;
  /** Sentence pairs per second of this step (native step time). */
  pairsPerSec: number;
}

/** Held-out metrics: on a fixed set of masked examples, dropout off. */
export interface EvalMetrics {
  /** Mean MLM cross-entropy over the predictions. */
  mlmLoss: number;
  /** Share of the predictions whose most probable token is the original one. */
  mlmAccuracy: number;
  /** Mean NSP cross-entropy. */
  nspLoss: number;
  /** Share of the pairs whose NSP prediction is right. */
  nspAccuracy: number;
  /** Sentence pairs evaluated. */
  examples: number;
}

/** An evaluation during a run: after `step` steps. */
export interface EvalRecord extends EvalMetrics {
  /** Steps taken before it. */
  step: number;
}

/** A step's line of `history.jsonl`. */
export interface StepLine extends StepRecord {
  /** Always `'step'`. */
  kind: 'step';
}

/** An evaluation's line of `history.jsonl`. */
export interface EvalLine extends EvalRecord {
  /** Always `'eval'`. */
  kind: 'eval';
}

/** A line of `history.jsonl`: a step's record, or an evaluation's. */
export type HistoryLine = StepLine | EvalLine;

/** The file name of a run's history. */
export const HISTORY_FILE = 'history.jsonl';

/** Appends a run's lines (pretraining's {@link HistoryLine}s by default) to `dir/history.jsonl`. */
export class HistoryFile<Line extends { step: number } = HistoryLine> {
  readonly path: string;
  #pending: string[] = [];

  private constructor(path: string) {
    this.path = path;
  }

  /**
   * The lines of the history in `dir` up to `fromStep` (a resumed run's past; lines cut by a
   * crash are left out), writing nothing.
   */
  static async read<Line extends { step: number } = HistoryLine>(dir: string, fromStep: number): Promise<Line[]> {
    const text = await readFile(join(dir, HISTORY_FILE), 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Line];
        } catch {
          return []; // a line cut by a crash
        }
      })
      .filter((l) => l.step <= fromStep);
  }

  /** The history of the run in `dir`, starting with `lines` (any old file replaced, atomically). */
  static async create<Line extends { step: number } = HistoryLine>(
    dir: string,
    lines: readonly Line[],
  ): Promise<HistoryFile<Line>> {
    const file = new HistoryFile<Line>(join(dir, HISTORY_FILE));
    const tmp = `${file.path}.${process.pid}.tmp`;
    await writeFile(tmp, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    await rename(tmp, file.path);
    return file;
  }

  /** Queues `line`; {@link HistoryFile.flush} writes the queue. */
  add(line: Line): void {
    this.#pending.push(`${JSON.stringify(line)}\n`);
  }

  /** Appends what was queued. */
  async flush(): Promise<void> {
    if (this.#pending.length === 0) return;
    const text = this.#pending.join('');
    this.#pending = [];
    await appendFile(this.path, text);
  }
}
