/**
 * A child process for the memory tests: encodes and embeds a long text, or embeds many short
 * ones, with the Hugging Face fixture model, and prints the growth of its peak RSS in MiB.
 *
 * Usage: node --import tsx long-inputs.ts <long|many>
 */
import { join } from 'node:path';

import { BertModel, embed, encode, fillMask } from '../../src/index.js';

const model = await BertModel.load(join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures/hf/model'));
await embed(model, ['warm up the passes']);
const before = process.resourceUsage().maxRSS;
let shape: readonly number[];
if (process.argv[2] === 'long') {
  const text = 'the crane driver came home late . '.repeat(600_000); // 20 MB
  await encode(model, text);
  await fillMask(model, `the [MASK] ${text}`);
  shape = (await embed(model, [text, 'a short one'])).shape;
} else {
  const texts = Array.from({ length: 300_000 }, (_, i) => `sentence number ${i} about a crane and a river`);
  shape = (await embed(model, texts, { batchSize: 64 })).shape;
}
console.log(JSON.stringify({ shape, growthMiB: Math.round((process.resourceUsage().maxRSS - before) / 1024) }));
