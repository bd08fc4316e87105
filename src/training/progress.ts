/**
 * A run's progress on stderr ({@link PretrainOptions.progress}, the CLI's `pretrain`): the
 * download and the reading of a large corpus, then the steps (losses, learning rate,
 * pairs/sec, ETA, the last held-out figures) and each held-out evaluation while it runs. On a
 * terminal, live bars; elsewhere (a log file, CI), a line every few seconds and the last step's
 * line once.
 *
 * @module
 */
import type { SingleBar } from 'cli-progress';

import { singleBar } from '../progress-bar.js';
import type { EvalRecord, StepRecord } from './history.js';

/** Seconds between two progress lines when stderr is not a terminal. */
const LINE_EVERY_MS = 5000;

const MIB = 2 ** 20;

/** Corpora smaller than this are read without a progress display when stderr is not a terminal. */
const QUIET_BYTES = 64 * MIB;

/** How a run's records are shown: a step's figures, an evaluation's, what is evaluated. */
export interface ProgressFormat<S extends { step: number }, E extends { step: number }> {
  /** A step's figures (`'MLM 4.210 | NSP 0.690 | lr 0.01 | 98.0 pairs/sec'`). */
  step(record: S): string;
  /** An evaluation's figures, shown after the steps' until the next (`'held out: …'`). */
  held(record: E): string;
  /** What the held-out set's examples are called (`'held-out pairs'`). */
  examples: string;
}

/** Pretraining's records shown. */
export const PRETRAIN_FORMAT: ProgressFormat<StepRecord, EvalRecord> = {
  step: (r) =>
    `MLM ${r.mlmLoss.toFixed(3)} | NSP ${r.nspLoss.toFixed(3)} | lr ${r.lr.toPrecision(3)} | ${r.pairsPerSec.toFixed(1)} pairs/sec`,
  held: (r) => {
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    return `held out: MLM ${r.mlmLoss.toFixed(3)} (${pct(r.mlmAccuracy)}), NSP ${r.nspLoss.toFixed(3)} (${pct(r.nspAccuracy)})`;
  },
  examples: 'held-out pairs',
};

/** A run's progress display (see the module), of steps `S` and evaluations `E`. */
export class RunProgress<S extends { step: number } = StepRecord, E extends { step: number } = EvalRecord> {
  readonly #stream: NodeJS.WriteStream;
  readonly #terminal: boolean;
  #bytes?: { stage: string; bar?: SingleBar; shownAt: number };
  #bar?: SingleBar;
  #held = '';
  #total = 0;
  #started = 0;
  #firstStep = 0;
  #lastLine = { at: Number.NEGATIVE_INFINITY, step: -1 };
  #latest?: S;
  readonly #format: ProgressFormat<S, E>;

  /**
   * @param format how the records are shown
   * @param stream where to write (a terminal gets live bars)
   */
  constructor(format: ProgressFormat<S, E>, stream: NodeJS.WriteStream = process.stderr) {
    this.#format = format;
    this.#stream = stream;
    this.#terminal = stream.isTTY === true;
  }

  /** A line to say what is prepared (on a terminal only: logs get the figures). */
  preparing(what: string): void {
    if (this.#terminal) this.#stream.write(`preparing ${what} ...\n`);
  }

  /** `done` of `total` bytes of `stage` (`'downloading WikiText-2'`, `'reading the corpus'`). */
  bytes(stage: string, done: number, total: number | undefined): void {
    if (!total || !(this.#terminal || total > QUIET_BYTES)) return; // a display for what takes a while
    if (this.#bytes?.stage !== stage) {
      this.#bytes?.bar?.stop();
      this.#bytes = { stage, shownAt: Number.NEGATIVE_INFINITY };
      if (this.#terminal) {
        const bar = singleBar({
          format: `${stage} |{bar}| {percentage}% | {value}/{total} MB`,
          stream: this.#stream,
          hideCursor: true,
        });
        bar.start(Math.ceil(total / MIB), 0);
        this.#bytes.bar = bar;
      }
    }
    if (this.#bytes.bar) {
      this.#bytes.bar.update(Math.floor(done / MIB));
    } else if (performance.now() - this.#bytes.shownAt >= LINE_EVERY_MS || done === total) {
      this.#bytes.shownAt = performance.now();
      this.#stream.write(`${stage}: ${Math.floor(done / MIB)}/${Math.ceil(total / MIB)} MB\n`);
    }
  }

  /** A step done, of a run up to step `total`. */
  step(record: S, total: number): void {
    this.#finishBytes();
    this.#latest = record;
    if (this.#total === 0) {
      this.#total = total;
      this.#started = performance.now();
      this.#firstStep = record.step - 1;
      if (this.#terminal) {
        this.#bar = singleBar({
          format: 'step {value}/{total} |{bar}| {line}{held} | ETA {eta_formatted}',
          stream: this.#stream,
          hideCursor: true,
        });
        this.#bar.start(total, record.step, this.#values(record)); // the first line shows the step its losses are of
        return;
      }
    }
    if (this.#bar) {
      this.#bar.update(record.step, this.#values(record));
    } else if (performance.now() - this.#lastLine.at >= LINE_EVERY_MS) {
      this.#line(record);
    }
  }

  /** A held-out evaluation of `examples` examples starts after step `step`. */
  evaluating(step: number, examples: number): void {
    const note = ` | evaluating ${examples} ${this.#format.examples} ...`;
    if (this.#bar && this.#latest) this.#bar.update(step, { ...this.#values(this.#latest), held: note });
    else this.#stream.write(`step ${step}${note}\n`);
  }

  /** A held-out evaluation done. */
  evaluated(record: E): void {
    this.#held = ` | ${this.#format.held(record)}`;
    if (this.#bar && this.#latest) this.#bar.update(record.step, this.#values(this.#latest));
    else this.#stream.write(`step ${record.step}${this.#held}\n`);
  }

  /** Ends the display: the last step's line, unless it was the last line shown. */
  stop(): void {
    this.#finishBytes();
    if (this.#bar) {
      this.#bar.stop();
      this.#bar = undefined;
    } else if (this.#latest && this.#lastLine.step !== this.#latest.step) {
      this.#line(this.#latest);
    }
  }

  #finishBytes(): void {
    this.#bytes?.bar?.stop();
    this.#bytes = undefined;
  }

  /** The fields of a step's display. */
  #values(r: S) {
    return { line: this.#format.step(r), held: this.#held };
  }

  /** One progress line (no terminal). */
  #line(r: S): void {
    // the time since the first step's end over the steps since: the first step's own time is unknown
    const since = r.step - this.#firstStep - 1;
    const eta =
      since > 0 ? `${Math.round(((performance.now() - this.#started) / 1000 / since) * (this.#total - r.step))}s` : '?';
    const { line, held } = this.#values(r);
    this.#stream.write(`step ${r.step}/${this.#total} | ${line}${held} | ETA ${eta}\n`);
    this.#lastLine = { at: performance.now(), step: r.step };
  }
}
