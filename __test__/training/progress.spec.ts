/**
 * A run's progress (`pretrain({ progress: true })`, the CLI): outside a terminal, a line at
 * the first step, then every few seconds, and the last step's line exactly once; each held-out
 * evaluation announced while it runs.
 */
import { describe, expect, it, vi } from 'vitest';

import { pretrain } from '../../src/index.js';
import { PRETRAIN_FORMAT, RunProgress } from '../../src/training/progress.js';
import { paragraphs, TINY } from '../api/corpus.js';

/** A stream that is not a terminal, keeping what is written. */
function logStream() {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (text: string) => lines.push(...text.trimEnd().split('\n')) };
  return { lines, stream: stream as unknown as NodeJS.WriteStream };
}

const step = (n: number) => ({ step: n, mlmLoss: 5 + 1 / n, nspLoss: 0.69, lr: 0.01, pairsPerSec: 100 });

describe("a run's progress outside a terminal", () => {
  it('shows the first step, then a line every few seconds, and the last step once', () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    try {
      const { lines, stream } = logStream();
      const progress = new RunProgress(PRETRAIN_FORMAT, stream);
      progress.step(step(1), 10);
      for (let n = 2; n <= 6; n++) progress.step(step(n), 10); // within 5 s: no line
      vi.advanceTimersByTime(6000);
      progress.step(step(7), 10);
      progress.step(step(8), 10);
      progress.evaluating(8, 2048);
      progress.evaluated({ step: 8, mlmLoss: 6.5, mlmAccuracy: 0.1, nspLoss: 0.7, nspAccuracy: 0.5, examples: 2048 });
      progress.stop();
      progress.stop();
      expect(lines.map((l) => l.replace(/ \| ETA .*$/, ''))).toEqual([
        'step 1/10 | MLM 6.000 | NSP 0.690 | lr 0.0100 | 100.0 pairs/sec',
        'step 7/10 | MLM 5.143 | NSP 0.690 | lr 0.0100 | 100.0 pairs/sec',
        'step 8 | evaluating 2048 held-out pairs ...',
        'step 8 | held out: MLM 6.500 (10.0%), NSP 0.700 (50.0%)',
        'step 8/10 | MLM 5.125 | NSP 0.690 | lr 0.0100 | 100.0 pairs/sec | held out: MLM 6.500 (10.0%), NSP 0.700 (50.0%)',
      ]);
      expect(lines[0]).toMatch(/ETA \?$/); // one step gives no rate yet
      expect(lines[1]).toMatch(/ETA \d+s$/);
    } finally {
      vi.useRealTimers();
    }
  });

  it('is what pretrain({ progress: true }) writes to stderr; without it, nothing', async () => {
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      const run = { data: paragraphs(200), valid: paragraphs(30, 2), ...TINY, steps: 2, evalExamples: 20 };
      await pretrain(run);
      expect(written.join('')).toBe('');
      await pretrain({ ...run, progress: true });
    } finally {
      spy.mockRestore();
    }
    const text = written.join('');
    expect(text).toMatch(/^step 1\/2 \| MLM \d/m);
    expect(text).toMatch(/^step 2 \| evaluating 20 held-out pairs \.\.\.$/m);
    expect(text.match(/^step 2\/2 \|/gm)).toHaveLength(1);
    await expect(pretrain({ data: paragraphs(10), progress: 'yes' as never })).rejects.toThrow(/^progress: expected/);
  });
});
