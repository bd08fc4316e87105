/**
 * A run's plot, `loss.svg` in its output folder, redrawn while the run goes.
 *
 * @module
 */
import { writeAtomic } from '../model-folder.js';

/** Redraws `out/loss.svg` at most every few seconds while a run goes, atomically. */
export class LivePlot {
  /** Least milliseconds between two drawings in the background. */
  static readonly INTERVAL_MS = 3000;
  readonly #out: string;
  readonly #render: () => Promise<string>;
  #last = 0;
  #drawing: Promise<void> | undefined;

  /**
   * @param out the run's folder
   * @param render the plot of the run so far, as an SVG document
   */
  constructor(out: string, render: () => Promise<string>) {
    this.#out = out;
    this.#render = render;
  }

  /**
   * Draws in the background if the last drawing is old enough and none is in flight (a plot
   * that cannot be written does not stop training; the last drawing's error is thrown).
   */
  update(): void {
    const now = performance.now();
    if (this.#drawing || now - this.#last < LivePlot.INTERVAL_MS) return;
    this.#last = now;
    this.#drawing = this.draw()
      .catch(() => {})
      .finally(() => {
        this.#drawing = undefined;
      });
  }

  /** Draws now, after any drawing in flight; rejects if the plot cannot be written. */
  async draw(): Promise<void> {
    await this.#drawing;
    await writeAtomic(this.#out, 'loss.svg', await this.#render());
  }
}
