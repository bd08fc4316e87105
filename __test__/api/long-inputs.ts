/**
 * A child process for the memory tests: encodes and embeds a long text, or embeds many short
 * ones, with the Hugging Face fixture model — or (`task`) classifies, tags and reranks a long
 * text (alone and in pairs) and many short ones with the task fixtures — and prints the growth of its peak RSS in MiB.
 *
 * Usage: node --import tsx long-inputs.ts <long|many|task>
 */
import { join } from 'node:path';

import { BertModel, classify, embed, encode, fillMask, rerank, tagTokens } from '../../src/index.js';

const model = await BertModel.load(join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures/hf/model'));
await embed(model, ['warm up the passes']);
const before = process.resourceUsage().maxRSS;
let shape: readonly number[];
const fixtures = join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures/hf-task');
if (process.argv[2] === 'task') {
  const [single, token, scorer] = await Promise.all(
    ['single', 'token', 'regression'].map((name) => BertModel.load(join(fixtures, name))),
  );
  const text = 'the crane driver came home late . '.repeat(600_000); // 20 MB
  const many = Array.from({ length: 50_000 }, (_, i) => `sentence number ${i} about a crane and a river`);
  const labels = await classify(single, [text, [text, text], ...many]);
  const entities = await tagTokens(token, [text, ...many.slice(0, 10_000)]);
  const ranked = await rerank(scorer, 'a crane by the river', [text, ...many.slice(0, 10_000)], { topK: 3 });
  shape = [labels.length, entities.length, ranked.length];
} else if (process.argv[2] === 'long') {
  const text = 'the crane driver came home late . '.repeat(600_000); // 20 MB
  await encode(model, text);
  await fillMask(model, `the [MASK] ${text}`);
  shape = (await embed(model, [text, 'a short one'])).shape;
} else {
  const texts = Array.from({ length: 300_000 }, (_, i) => `sentence number ${i} about a crane and a river`);
  shape = (await embed(model, texts, { batchSize: 64 })).shape;
}
console.log(JSON.stringify({ shape, growthMiB: Math.round((process.resourceUsage().maxRSS - before) / 1024) }));
