import { describe, expect, it } from 'vitest';

import { syntheticBatch } from '../../src/data/index.js';
import { pretrain } from '../../src/index.js';
import { native } from '../../src/native.js';
import { paragraphs, TINY } from '../api/corpus.js';

const tiny = { vocabSize: 40, hidden: 16, ffnHidden: 32, heads: 2, layers: 2, dropout: 0, maxPositions: 32 };

describe('data-parallel training through the addon', () => {
  it('two CPU replicas take the update of one device on the whole batch (dropout 0)', async () => {
    const one = new (native().NativeBert)(tiny, { seed: 8, devices: [{}] });
    const two = new (native().NativeBert)(tiny, { seed: 8, devices: [{}, {}] });
    const batch = syntheticBatch(tiny.vocabSize, { batchSize: 7, seqLen: 12, numPreds: 2, seed: 4 });
    for (let step = 0; step < 3; step++) {
      const [a, b] = [await one.trainStep(batch), await two.trainStep(batch)];
      expect(b.mlmLoss).toBeCloseTo(a.mlmLoss, 5);
      expect(b.nspLoss).toBeCloseTo(a.nspLoss, 5);
    }
    const { diagnostics } = native();
    for (const name of diagnostics.paramNames(one)) {
      if (name.endsWith('W_k.bias')) continue; // an exactly-zero gradient: Adam moves it by ±lr on rounding noise
      const [a, b] = [diagnostics.param(one, name), diagnostics.param(two, name)];
      const diff = a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
      expect(diff, name).toBeLessThan(1e-5);
    }
  });

  it('pretrain accepts a list of devices and reports it', async () => {
    const { summary, history } = await pretrain({
      data: paragraphs(100),
      steps: 2,
      seed: 1,
      ...TINY,
      device: ['cpu', 'cpu'],
    });
    expect(summary.device).toBe('cpu,cpu');
    expect(history.every((r) => Number.isFinite(r.mlmLoss))).toBe(true);
    await expect(pretrain({ data: paragraphs(10), steps: 1, device: [] })).rejects.toThrow(
      /^device: the list of devices is empty/,
    );
  });
});
