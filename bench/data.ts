/**
 * `npm run bench:data`: preparing WikiText-2 into pretraining examples with tsbert's data
 * pipeline, beside the textbook's preprocessing in Python (bench/reference/preprocess.py)
 * on the same file in the same run; then batches/sec for B = 512.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { PretrainingDataset } from '../src/data/index.js';

const file = process.argv[2] ?? join(import.meta.dirname, '../../shared/data/wikitext-2/wiki.train.tokens');
if (!existsSync(file)) {
  console.log(`bench:data: ${file} is absent; nothing to measure`);
  process.exit(0);
}

const started = performance.now();
const dataset = await PretrainingDataset.fromSource(file, { maxLen: 64, seed: 0 });
const prepare = (performance.now() - started) / 1000;

const epochStart = performance.now();
let batches = 0;
for (const _ of dataset.batches({ batchSize: 512 })) batches++;
const perSec = batches / ((performance.now() - epochStart) / 1000);

const python = JSON.parse(execFileSync('python3', [join(import.meta.dirname, 'reference/preprocess.py'), file, '64'], { encoding: 'utf8' }));

console.log(`WikiText-2 (${file}): ${dataset.numParagraphs} paragraphs, vocabulary ${dataset.vocab.size}, ${dataset.numExamples} examples`);
console.log(`| what | tsbert (s) | textbook Python (s) | speed-up |`);
console.log(`| --- | ---: | ---: | ---: |`);
console.log(`| read + vocab + NSP + mask + pad | ${prepare.toFixed(2)} | ${python.seconds.total.toFixed(2)} | ${(python.seconds.total / prepare).toFixed(1)}× |`);
console.log(`batches of 512 served: ${perSec.toFixed(0)} batches/sec (${batches} a epoch)`);
