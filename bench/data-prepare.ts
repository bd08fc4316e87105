/**
 * One measured preparation, run in a fresh process by `bench/data.ts` so that its peak RSS is
 * its own: `tsx bench/data-prepare.ts FILE MEMORY_MIB` prepares FILE with the textbook's data
 * settings and a data memory of MEMORY_MIB, serves the first 20 batches of 512, and prints
 * one JSON line (seconds, peak RSS, examples, blocks). `tsx bench/data-prepare.ts --model`
 * only makes the textbook model (WikiText-2's vocabulary size): the RSS of the model itself.
 */
import { stat } from 'node:fs/promises';

import { PretrainingDataset } from '../src/data/index.js';
import { Vocab } from '../src/data/vocab.js';
import { BertModel } from '../src/model.js';
import { PRETRAIN_DEFAULTS } from '../src/pretrain.js';
import { WIKITEXT2_VOCAB_SIZE } from './support.js';

const peakMiB = () => process.resourceUsage().maxRSS / 1024;

if (process.argv[2] === '--model') {
  const words = Array.from({ length: WIKITEXT2_VOCAB_SIZE - 5 }, (_, i) => `w${i}`);
  const model = BertModel.create(Vocab.fromJSON({ tokens: ['<unk>', '<pad>', '<mask>', '<cls>', '<sep>', ...words] }));
  console.log(JSON.stringify({ params: model.paramCount, peakMiB: peakMiB() }));
} else {
  const [file, memoryMiB] = [process.argv[2], Number(process.argv[3])];
  const started = performance.now();
  const ds = await PretrainingDataset.fromSource(file, {
    maxLen: PRETRAIN_DEFAULTS.maxLen,
    seed: PRETRAIN_DEFAULTS.seed,
    memory: memoryMiB * 2 ** 20,
  });
  const prepared = (performance.now() - started) / 1000;
  const serving = performance.now();
  let served = 0;
  for (const batch of ds.batches({ batchSize: PRETRAIN_DEFAULTS.batchSize })) {
    served += batch.batchSize;
    if (served >= 20 * PRETRAIN_DEFAULTS.batchSize) break;
  }
  const firstBatches = (performance.now() - serving) / 1000;
  console.log(
    JSON.stringify({
      bytes: (await stat(file)).size,
      seconds: prepared,
      firstBatchesSeconds: firstBatches,
      peakMiB: peakMiB(),
      examples: ds.numExamples,
      blocks: ds.numBlocks,
      vocab: ds.vocab?.size,
    }),
  );
  ds.close();
}
