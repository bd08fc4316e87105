import { describe, expect, it } from 'vitest';

import { pretrain } from '../../src/index.js';
import { paragraphs, TINY } from './corpus.js';

describe('pretrain', () => {
  const data = paragraphs(300);

  it('records every step with finite losses and a summary of true means', async () => {
    const seen: number[] = [];
    const { model, vocab, history, summary } = await pretrain({
      data,
      steps: 4,
      seed: 1,
      ...TINY,
      onStep: (r) => seen.push(r.step),
    });
    expect(history.map((r) => r.step)).toEqual([1, 2, 3, 4]);
    expect(seen).toEqual([1, 2, 3, 4]);
    for (const r of history) {
      expect(Number.isFinite(r.mlmLoss) && Number.isFinite(r.nspLoss) && r.pairsPerSec > 0).toBe(true);
    }
    expect(summary.mlmLoss).toBeCloseTo(history.reduce((a, r) => a + r.mlmLoss, 0) / 4, 12);
    expect(summary.nspLoss).toBeCloseTo(history.reduce((a, r) => a + r.nspLoss, 0) / 4, 12);
    expect(summary).toMatchObject({ steps: 4, device: 'cpu', aborted: false });
    expect(model.vocab).toBe(vocab);
    expect(model.config).toMatchObject({ vocabSize: vocab!.size, hidden: 32, maxPositions: 1000 });
  });

  it('is reproducible under a seed', async () => {
    const run = () => pretrain({ data, steps: 3, seed: 7, ...TINY });
    const [a, b] = [await run(), await run()];
    expect(b.history.map((r) => [r.mlmLoss, r.nspLoss])).toEqual(a.history.map((r) => [r.mlmLoss, r.nspLoss]));
  });

  it('lowers the MLM loss over a longer run', async () => {
    const { history } = await pretrain({ data, steps: 40, seed: 2, ...TINY });
    const mean = (rs: typeof history) => rs.reduce((a, r) => a + r.mlmLoss, 0) / rs.length;
    expect(mean(history.slice(-5))).toBeLessThan(0.8 * mean(history.slice(0, 3)));
  });

  it('stops after the step in flight when aborted, keeping what was trained', async () => {
    const controller = new AbortController();
    const { history, summary } = await pretrain({
      data,
      steps: 50,
      seed: 1,
      ...TINY,
      signal: controller.signal,
      onStep: (r) => r.step === 2 && controller.abort(),
    });
    expect(history).toHaveLength(2);
    expect(summary.aborted).toBe(true);
  });

  it('names bad options', async () => {
    await expect(pretrain({ data, steps: 0 })).rejects.toThrow(/^steps:/);
    await expect(pretrain({ data, batchSize: 2.5 })).rejects.toThrow(/^batchSize:/);
    await expect(pretrain({ data, device: 'tpu' as never, ...TINY, steps: 1 })).rejects.toThrow(
      /^device: unknown device 'tpu'/,
    );
    await expect(pretrain({ data: '/no/such/folder', steps: 1 })).rejects.toThrow(/no such file or folder/);
  });
});
