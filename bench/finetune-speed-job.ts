/**
 * tsbert's side of `npm run bench:finetune`'s speed rows (bench/finetune.ts): one fine-tuning run
 * in this (fresh) process, so that the peak RSS it prints is the run's own.
 *
 *     node bench/finetune-speed-job.compiled.mjs --model DIR --batches FILE --lr 2e-5
 *
 * Loads the task model in DIR (dropout as its config says) with the bench's recipe (AdamW, weight
 * decay 0.01 spared on biases and layer norms, clipping at 1) and takes one `trainTaskStep` a batch
 * of FILE (`tokens.i`, `segments.i`, `valid_lens.i`, `labels.i`: what bench/reference/finetune_ref.py
 * trains on) at the constant `--lr`. Examples a second count the steps after the first, as the
 * reference counts its own. `RAYON_NUM_THREADS` sets the threads.
 *
 * Prints one JSON line: { examplesPerSec, seconds, steps, losses, peakRssMiB }.
 */
import { Command } from 'commander';

import { BertModel, type Sequences } from '../src/index.js';
import { readSafetensors } from './support.js';

const flags = new Command('bench:finetune speed job')
  .requiredOption('--model <dir>', 'the task model to start from')
  .requiredOption('--batches <file>', 'the steps’ batches (safetensors, int32)')
  .requiredOption('--lr <lr>', 'the learning rate', Number)
  .option('--weight-decay <x>', "AdamW's decay", Number, 0.01)
  .option('--clip-norm <x>', 'the global gradient norm clipped to', Number, 1)
  .parse()
  .opts<{ model: string; batches: string; lr: number; weightDecay: number; clipNorm: number }>();

const tensors = readSafetensors(flags.batches, 'I32');
const at = (key: string) => {
  const t = tensors.get(key);
  if (!t) throw new Error(`${flags.batches}: no ${key}`);
  return t;
};
const steps = [...tensors.keys()].filter((k) => k.startsWith('tokens.')).length;
const model = await BertModel.load(flags.model, {
  lr: flags.lr,
  optimizer: 'adamw',
  weightDecay: flags.weightDecay,
  clipNorm: flags.clipNorm,
});
const losses: number[] = [];
let seconds = 0;
let examples = 0;
for (let i = 0; i < steps; i++) {
  const tokens = at(`tokens.${i}`);
  const [batchSize, seqLen] = tokens.shape;
  const sequences: Sequences = {
    batchSize,
    seqLen,
    tokens: tokens.data,
    segments: at(`segments.${i}`).data,
    validLens: at(`valid_lens.${i}`).data,
  };
  const started = performance.now();
  losses.push(await model.trainTaskStep(sequences, at(`labels.${i}`).data));
  if (i > 0 || steps === 1) {
    seconds += (performance.now() - started) / 1000;
    examples += batchSize;
  }
}
const peakRssMiB = process.resourceUsage().maxRSS / 1024;
console.log(JSON.stringify({ examplesPerSec: examples / seconds, seconds, steps, losses, peakRssMiB }));
