/**
 * `classify` with Hugging Face's sequence-classification models (the fixtures of
 * bench/reference/make_task_fixtures.py): the scores transformers' text-classification
 * pipeline gives — softmax for single-label, sigmoid for multi-label, the raw value for a
 * regression — on texts and pairs of texts, from the logits transformers computed.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { BertModel, classify, rerank } from '../../src/index.js';
import { safetensors } from './safetensors.js';

const TASKS = join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures/hf-task');
const { texts, pairs } = JSON.parse(await readFile(join(TASKS, 'texts.json'), 'utf8')) as {
  texts: string[];
  pairs: [string, string][];
};

/** The F32 tensors of the fixtures' expected.safetensors, by name. */
async function expected(): Promise<Map<string, Float32Array>> {
  const tensors = await safetensors(join(TASKS, 'expected.safetensors'));
  return new Map([...tensors].map(([name, t]) => [name, t.data]));
}

const softmax = (xs: number[]) => {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  return e.map((x) => x / e.reduce((a, b) => a + b, 0));
};
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

describe('classify', () => {
  it("scores texts and pairs as transformers' pipeline does, for each kind of sequence head", async () => {
    const logits = await expected();
    for (const [name, apply] of [
      ['single', (xs: number[]) => softmax(xs)],
      ['multi', (xs: number[]) => xs.map(sigmoid)],
      ['regression', (xs: number[]) => xs],
    ] as const) {
      const model = await BertModel.load(join(TASKS, name));
      const c = model.config.task?.numLabels ?? 0;
      for (const [inputs, key] of [
        [texts, 'text_logits'],
        [pairs, 'pair_logits'],
      ] as const) {
        const theirs = logits.get(`${name}.${key}`) as Float32Array;
        const got = await classify(model, inputs, { topK: null, batchSize: 2 });
        expect(got, name).toHaveLength(inputs.length);
        for (const [row, ranked] of got.entries()) {
          const want = apply(Array.from(theirs.subarray(row * c, (row + 1) * c)));
          expect(ranked.map((r) => r.score)).toEqual([...ranked.map((r) => r.score)].sort((a, b) => b - a)); // best first
          for (const { label, score } of ranked) {
            const i = (model.labels ?? []).indexOf(label);
            expect(Math.abs(score - want[i]), `${name} ${key} ${row} ${label}`).toBeLessThan(1e-5);
          }
        }
      }
    }
  });

  it('gives the best label by default, the named labels, and refuses what it cannot do', async () => {
    const model = await BertModel.load(join(TASKS, 'single'));
    const [best] = await classify(model, ['a dog sat on the mat']);
    expect(best).toHaveLength(1);
    expect(['negative', 'neutral', 'positive']).toContain(best[0].label);
    const all = await classify(model, ['a dog sat on the mat'], { topK: null, functionToApply: 'none' });
    expect(all[0][0]).toEqual({ ...all[0][0], label: best[0].label });
    await expect(classify(model, [3 as never])).rejects.toThrow(/^inputs\[0\]: expected a string or a pair of strings/);
    await expect(classify(model, ['a'], { topK: 0 })).rejects.toThrow(/^topK: expected/);
    await expect(classify(model, ['a'], { functionToApply: 'tanh' as never })).rejects.toThrow(
      /^functionToApply: expected/,
    );
    const tagger = await BertModel.load(join(TASKS, 'token'));
    await expect(classify(tagger, ['a'])).rejects.toThrow(/this model has a token-classification head/);
    const bare = await BertModel.load(join(TASKS, '../hf/bare'));
    await expect(classify(bare, ['a'])).rejects.toThrow(/this model has no task head/);
  });

  it("reranks documents by a one-label head's score of each (query, document) pair", async () => {
    const model = await BertModel.load(join(TASKS, 'regression')); // one output: a cross-encoder's shape
    const logits = (await expected()).get('regression.pair_logits') as Float32Array;
    const [query, own] = pairs[0];
    const documents = ['a crane lifts steel', own, 'the cat ran'];
    const ranked = await rerank(model, query, documents);
    expect(ranked.map((r) => r.index).sort()).toEqual([0, 1, 2]);
    expect(ranked.map((r) => r.score)).toEqual([...ranked.map((r) => r.score)].sort((a, b) => b - a));
    // the fixture's own pair, scored as transformers scored it
    const scoredOwn = ranked.find((r) => r.index === 1)?.score ?? 0;
    expect(Math.abs(scoredOwn - sigmoid(logits[0]))).toBeLessThan(1e-5);
    expect(await rerank(model, query, documents, { topK: 1 })).toEqual(ranked.slice(0, 1));
    expect(await rerank(model, query, [])).toEqual([]);
    const classifier = await BertModel.load(join(TASKS, 'single'));
    await expect(rerank(classifier, query, documents)).rejects.toThrow(
      /rerank needs a cross-encoder .* single_label_classification head of 3 labels/,
    );
    await expect(rerank(model, query, ['a', 2 as never])).rejects.toThrow(/^documents\[1\]: expected a string/);
  });
});
