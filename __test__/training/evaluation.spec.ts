import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { BertModel, evaluate, PretrainingDataset, pretrain, type Vocab } from '../../src/index.js';
import { HeldOutSet } from '../../src/training/evaluation.js';
import { paragraphs, TINY } from '../api/corpus.js';

describe('held-out evaluation', () => {
  const valid = paragraphs(60, 4);

  it('gives the weighted MLM loss forward(batch) gives, accuracies that count correct predictions, and the same set every time', async () => {
    const { model } = await pretrain({ data: paragraphs(300), steps: 10, seed: 1, ...TINY, valid: false });
    const one = await HeldOutSet.fromSource(valid, { vocab: model.vocab }, { maxLen: 24, examples: 30, batchSize: 30 });
    expect(one.batches).toHaveLength(1);
    expect(one.examples).toBe(30);
    const m = await one.metrics(model);
    const batch = one.batches[0];
    const full = await model.forward(batch);
    expect(m.mlmLoss).toBeCloseTo(full.mlmLoss, 5);
    expect(m.nspLoss).toBeCloseTo(full.nspLoss, 5);
    // accuracies recounted from the logits
    const v = model.config.vocabSize;
    let [correct, weight] = [0, 0];
    for (let k = 0; k < batch.batchSize * batch.numPreds; k++) {
      if (batch.mlmWeights[k] === 0) continue;
      const row = full.mlmLogits.data.subarray(k * v, (k + 1) * v);
      const best = row.indexOf(Math.max(...row));
      correct += best === batch.mlmLabels[k] ? 1 : 0;
      weight += 1;
    }
    expect(m.mlmAccuracy).toBeCloseTo(correct / weight, 12);
    let nsp = 0;
    for (let i = 0; i < batch.batchSize; i++) {
      const [no, yes] = full.nspLogits.data.subarray(2 * i, 2 * i + 2);
      nsp += (yes > no ? 1 : 0) === batch.nspLabels[i] ? 1 : 0;
    }
    expect(m.nspAccuracy).toBeCloseTo(nsp / batch.batchSize, 12);
    // in batches of 7, the same examples give the same metrics
    const sevens = await HeldOutSet.fromSource(
      valid,
      { vocab: model.vocab },
      { maxLen: 24, examples: 30, batchSize: 7 },
    );
    expect(sevens.batches.map((b) => b.batchSize)).toEqual([7, 7, 7, 7, 2]);
    const m7 = await sevens.metrics(model);
    expect(m7.mlmLoss).toBeCloseTo(m.mlmLoss, 5);
    expect(m7.mlmAccuracy).toBeCloseTo(m.mlmAccuracy, 12);
  });

  it('evaluates a saved model on a file, through the API and the model folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-eval-'));
    const { model } = await pretrain({ data: paragraphs(300), steps: 20, seed: 2, ...TINY, valid: false });
    await model.save(join(dir, 'model'));
    const file = join(dir, 'valid.tokens');
    await writeFile(file, valid.join('\n'));
    const loaded = await BertModel.load(join(dir, 'model'));
    const [a, b] = [await evaluate(model, file, { maxLen: 24 }), await evaluate(loaded, file, { maxLen: 24 })];
    expect(b).toEqual(a);
    const all = (await PretrainingDataset.fromSource(file, { vocab: model.vocab, maxLen: 24 })).numExamples;
    expect(a.examples).toBe(Math.min(all, 2048));
    expect(a.mlmLoss).toBeLessThan(Math.log(model.config.vocabSize)); // it learned something
    expect(a.mlmAccuracy).toBeGreaterThan(0.1);
    await expect(evaluate(model, file, { examples: 0 })).rejects.toThrow(/^examples:/);
    await expect(evaluate(model, join(dir, 'none.tokens'))).rejects.toThrow(/no such file or folder/);

    // a folder means its held-out file, never its training file
    const folder = join(dir, 'wikitext');
    await mkdir(folder);
    await writeFile(join(folder, 'wiki.train.tokens'), paragraphs(300).join('\n'));
    await expect(evaluate(model, folder, { maxLen: 24 })).rejects.toThrow(
      /holds wiki.train.tokens but no wiki.valid.tokens: give the held-out file itself/,
    );
    await writeFile(join(folder, 'wiki.valid.tokens'), valid.join('\n'));
    expect(await evaluate(model, folder, { maxLen: 24 })).toEqual(a);

    // a bare encoder has nothing to score
    const bare = BertModel.create(model.vocab as Vocab, { config: { ...TINY.config, mlmHead: false } });
    await expect(evaluate(bare, file)).rejects.toThrow(/^model: has no MLM head/);
  });
});
