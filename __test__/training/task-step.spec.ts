/**
 * `BertModel.trainTaskStep`: the task heads of Hugging Face's fixtures
 * (bench/reference/make_task_fixtures.py) train from TypeScript — the first loss is the one
 * transformers' logits give, the loss falls on a fixed batch until the model classifies it —
 * and labels that do not fit the head are refused by name.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { BertModel, classify } from '../../src/index.js';

const TASKS = join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures/hf-task');
const { texts } = JSON.parse(await readFile(join(TASKS, 'texts.json'), 'utf8')) as { texts: string[] };

/** The model of fixture `name` (Adam at `lr`) and the padded sequences of the fixture texts. */
async function fixture(name: string, lr = 2e-3) {
  const model = await BertModel.load(join(TASKS, name), { lr, seed: 1 });
  const tokenized = model.tokenizer.encodeBatch(texts.map((t) => [t] as const));
  return { model, tokenized, sequences: model.tokenizer.pad(tokenized) };
}

/** The losses of `steps` task steps. */
async function train(model: BertModel, run: () => Promise<number>, steps: number): Promise<number[]> {
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) losses.push(await run());
  expect(model.stepsTaken).toBe(steps);
  return losses;
}

describe('trainTaskStep', () => {
  it("trains a classifier from transformers' starting loss until it classifies its batch", async () => {
    const { model, sequences } = await fixture('single');
    const before = await model.taskLogits(sequences);
    const labels = Int32Array.from([2, 0, 1]);
    // cross-entropy of the logits before the step, as transformers would compute it
    const ce = [...labels].map((y, r) => {
      const row = Array.from(before.data.subarray(r * 3, r * 3 + 3));
      const m = Math.max(...row);
      return Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0)) + m - row[y];
    });
    const losses = await train(model, () => model.trainTaskStep(sequences, labels), 30);
    expect(losses[0]).toBeCloseTo(ce.reduce((a, b) => a + b, 0) / 3, 5);
    expect(losses.at(-1)).toBeLessThan(0.2 * losses[0]);
    const predicted = (await classify(model, texts)).map(([best]) => best.label);
    expect(predicted).toEqual(['positive', 'negative', 'neutral']);
  });

  it('trains multi-label, regression and token heads: their losses fall', async () => {
    for (const [name, labelsOf] of [
      ['multi', () => Float32Array.from([1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0])],
      ['regression', () => Float32Array.from([0.5, -1, 2])],
    ] as const) {
      const { model, sequences } = await fixture(name);
      const losses = await train(model, () => model.trainTaskStep(sequences, labelsOf()), 40);
      expect(losses.at(-1), name).toBeLessThan(0.5 * losses[0]);
    }
    const { model, tokenized, sequences } = await fixture('token');
    // a class a word piece, -100 on the special tokens and the padding
    const labels = new Int32Array(sequences.batchSize * sequences.seqLen).fill(-100);
    tokenized.forEach((t, r) => {
      for (let j = 1; j < t.ids.length - 1; j++) labels[r * sequences.seqLen + j] = (j + r) % 5;
    });
    const losses = await train(model, () => model.trainTaskStep(sequences, labels), 20);
    expect(losses.at(-1)).toBeLessThan(0.5 * losses[0]);
  });

  it('refuses labels that do not fit the head, leaving the model as it was', async () => {
    const { model, sequences } = await fixture('single');
    await expect(model.trainTaskStep(sequences, Float32Array.from([1, 0, 1]))).rejects.toThrow(
      /^labels: expected an Int32Array for a single_label_classification head/,
    );
    await expect(model.trainTaskStep(sequences, Int32Array.from([0, 7, 1]))).rejects.toThrow(
      /^labels\[1\]: 7 is not a class of 3/,
    );
    await expect(model.trainTaskStep(sequences, Int32Array.from([0, 1]))).rejects.toThrow(/^labels: 2 labels for 3/);
    await expect(model.trainTaskStep(sequences, Int32Array.from([0, -1, 1]))).rejects.toThrow(
      /^labels\[1\]: -1 is not a class/,
    );
    expect(model.stepsTaken).toBe(0);
    const bare = await BertModel.load(join(TASKS, '../hf/bare'));
    await expect(bare.trainTaskStep(sequences, Int32Array.from([0, 1, 2]))).rejects.toThrow(
      /^model: has no task head to train/,
    );
  });
});
