/**
 * Fine-tuned task models in and out of Hugging Face: the `hf` fixture (a tiny BERT) fine-tuned
 * by tsbert for a few steps into each kind of head — single-label, multi-label, regression,
 * token classification — from small generated data, saved in Hugging Face's format, then
 * loaded by transformers (bench/reference/check_task_exports.py): no tensor missing or
 * unexpected, the same `id2label` and `problem_type`, the same logits, and the pipelines'
 * scores and entities equal to `classify()`'s and `tagTokens()`'s. Part of `npm run bench:hf`;
 * also `npx tsx bench/task-exports.ts` alone. Files go to bench/out/hf/task-exports/.
 *
 * @module
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { AGGREGATIONS, classify, finetune, tagTokens } from '../src/index.js';
import { outDir, runPython, venvPython } from './support.js';

const BASE = join(import.meta.dirname, '../crates/tsbert-core/tests/fixtures/hf/model');
const WORDS = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'dog', 'ran', 'far', 'away', 'big', 'small', 'yes', 'no'];

/** A seeded pseudo-random integer below `n` (a linear congruential generator: enough for test data). */
function picker(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % n;
  };
}

/** `n` texts of five words. */
function texts(n: number, seed: number): string[][] {
  const pick = picker(seed);
  return Array.from({ length: n }, () => Array.from({ length: 5 }, () => WORDS[pick(WORDS.length)]));
}

/** JSON Lines of `rows`. */
const jsonl = (rows: readonly unknown[]) => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;

/** Writes each kind's training data into `dir`; returns the file of each. */
function writeData(
  dir: string,
): Record<string, { file: string; task: 'sequence-classification' | 'token-classification' }> {
  const words = texts(96, 7);
  const text = (w: string[]) => w.join(' ');
  const count = (w: string[], x: string) => w.filter((v) => v === x).length;
  const files = {
    single: jsonl(words.map((w) => ({ text: text(w), label: count(w, 'yes') > count(w, 'no') ? 'pos' : 'neg' }))),
    multi: jsonl(words.map((w) => ({ text: text(w), label: ['cat', 'dog', 'mat'].filter((x) => w.includes(x)) }))),
    regression: jsonl(
      words.map((w) => ({ text: text(w), text_pair: text(w.slice(2)), label: count(w, 'the') / 2 + 0.25 })),
    ),
    token: jsonl(
      words.map((w) => ({
        tokens: w,
        tags: w.map((x) => (x === 'cat' || x === 'dog' ? 'B-ANI' : x === 'mat' ? 'B-OBJ' : 'O')),
      })),
    ),
  };
  return Object.fromEntries(
    Object.entries(files).map(([name, content]) => {
      const file = join(dir, `${name}.jsonl`);
      writeFileSync(file, content);
      return [name, { file, task: name === 'token' ? 'token-classification' : 'sequence-classification' }];
    }),
  );
}

/** Fine-tunes, exports and checks each kind of head; throws unless every check passes. */
export async function checkTaskExports(python = venvPython()): Promise<void> {
  const dir = join(outDir('hf'), 'task-exports');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const data = writeData(dir);
  const inputs = texts(6, 99).map((w) => w.join(' '));
  for (const [name, { file, task }] of Object.entries(data)) {
    const { model, labels } = await finetune({
      model: BASE,
      train: file,
      task,
      lr: 1e-3,
      epochs: 2,
      batchSize: 16,
      maxLen: 32,
      device: 'cpu',
      seed: 3,
    });
    const exported = join(dir, name);
    await model.save(exported, { format: 'huggingface' });
    const given = name === 'regression' ? inputs.map((t) => [t, t.split(' ').slice(2).join(' ')] as const) : inputs;
    const encoded = model.tokenizer.encodeBatch(given.map((g) => (typeof g === 'string' ? [g] : g)));
    const logits: number[][] = [];
    for (const text of encoded) {
      const out = await model.taskLogits(model.tokenizer.pad([text]));
      logits.push(Array.from(out.data));
    }
    const ours: Record<string, unknown> = { kind: labels.kind, labels: labels.names, inputs: given, logits };
    if (task === 'token-classification') {
      const entities: Record<string, unknown> = {};
      for (const aggregation of AGGREGATIONS) entities[aggregation] = await tagTokens(model, inputs, { aggregation });
      ours.entities = entities;
    } else {
      ours.scores = await classify(model, given, { topK: null });
    }
    writeFileSync(join(dir, `${name}.json`), JSON.stringify(ours));
    model.dispose();
  }
  runPython(python, 'check_task_exports.py', [dir]); // throws unless every model passes
}

if (import.meta.url === `file://${process.argv[1]}`) await checkTaskExports();
