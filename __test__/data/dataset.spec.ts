import { describe, expect, it } from 'vitest';

import { type Batch, PretrainingDataset, Vocab } from '../../src/data/index.js';
import { bytes, unmaskedRows } from './rows.js';

/** 60 paragraphs of 4 sentences of 3–5 words of 17 distinct words. */
const lines = Array.from({ length: 60 }, (_, k) =>
  Array.from({ length: 4 }, (_, j) =>
    Array.from({ length: 3 + ((k + j) % 3) }, (_, i) => `Word${(k + 2 * j + i) % 17}`).join(' '),
  ).join(' . '),
);
const options = { maxLen: 20, minFreq: 1 };

describe('PretrainingDataset', () => {
  it('serves padded batches in the native layout; the last short batch kept unless dropped', async () => {
    const ds = await PretrainingDataset.fromSource(lines, { ...options, seed: 3 });
    expect([ds.numParagraphs, ds.maxLen, ds.numPreds]).toEqual([60, 20, 3]);
    expect(ds.numExamples).toBe(180); // every pair fits: 5 + 5 + 3 ≤ 20
    const batches = [...ds.batches({ batchSize: 16 })];
    expect(batches.map((b) => b.batchSize)).toEqual([...Array(11).fill(16), 4]);
    for (const b of batches) {
      expect(b).toMatchObject({ seqLen: 20, numPreds: 3 });
      expect(
        [b.tokens, b.segments, b.validLens, b.predPositions, b.mlmLabels, b.nspLabels].every(
          (a) => a instanceof Int32Array,
        ),
      ).toBe(true);
      expect(b.mlmWeights).toBeInstanceOf(Float32Array);
      expect([b.tokens.length, b.segments.length, b.validLens.length, b.nspLabels.length]).toEqual([
        b.batchSize * 20,
        b.batchSize * 20,
        b.batchSize,
        b.batchSize,
      ]);
      expect([b.predPositions.length, b.mlmWeights.length, b.mlmLabels.length]).toEqual(Array(3).fill(b.batchSize * 3));
      for (let i = 0; i < b.batchSize; i++) {
        const n = b.validLens[i];
        expect(b.tokens[i * 20]).toBe(3);
        expect(Array.from(b.tokens.subarray(i * 20 + n, (i + 1) * 20)).every((t) => t === 1)).toBe(true);
        expect(Array.from(b.segments.subarray(i * 20 + n, (i + 1) * 20)).every((s) => s === 0)).toBe(true);
      }
    }
    const dropped = [...ds.batches({ batchSize: 16, dropLast: true })];
    expect(dropped.map((b) => b.batchSize)).toEqual(Array(11).fill(16));
  });

  it('serves every example once an epoch, in another order each epoch', async () => {
    const ds = await PretrainingDataset.fromSource(lines, { ...options, seed: 3 });
    const [epoch0, epoch1] = [0, 1].map((epoch) => [...ds.batches({ batchSize: 7, epoch })]);
    const all = [...ds.batches({ batchSize: ds.numExamples })];
    expect(unmaskedRows(epoch0)).toEqual(unmaskedRows(all));
    expect(unmaskedRows(epoch1)).toEqual(unmaskedRows(all));
    expect(new Set(unmaskedRows(all)).size).toBeGreaterThan(100);
    expect(bytes(epoch1)).not.toEqual(bytes(epoch0));
  });

  it('gives the same bytes for the same seed, and others for another seed', async () => {
    const make = (seed: number) => PretrainingDataset.fromSource(lines, { ...options, seed });
    const [a, b, c] = await Promise.all([make(5), make(5), make(6)]);
    const epoch = (ds: PretrainingDataset) => bytes([...ds.batches({ batchSize: 8, epoch: 2 })]);
    expect(epoch(b)).toEqual(epoch(a));
    expect(epoch(c)).not.toEqual(epoch(a));
  });

  it('masks once by default, afresh for each epoch on request', async () => {
    const ds = await PretrainingDataset.fromSource(lines, { ...options, seed: 1 });
    const sortedRows = (batch: Batch) =>
      Array.from({ length: batch.batchSize }, (_, i) =>
        Array.from(batch.tokens.subarray(i * 20, (i + 1) * 20)).join(','),
      ).sort();
    const all = (epoch: number, remask: boolean) =>
      ds.batches({ batchSize: ds.numExamples, epoch, remask }).next().value as Batch;
    expect(sortedRows(all(1, false))).toEqual(sortedRows(all(0, false)));
    expect(sortedRows(all(0, true))).toEqual(sortedRows(all(0, false)));
    expect(sortedRows(all(1, true))).not.toEqual(sortedRows(all(0, false)));
    expect(unmaskedRows([all(1, true)])).toEqual(unmaskedRows([all(0, false)]));
  });

  it('maps words outside a given vocabulary to <unk>', async () => {
    const vocab = Vocab.build([['word1', 'word2']], { minFreq: 1 }); // word1: 5, word2: 6
    const ds = await PretrainingDataset.fromSource(lines, { maxLen: 20, vocab });
    expect(ds.vocab).toBe(vocab);
    const rows = unmaskedRows([...ds.batches({ batchSize: ds.numExamples })]).map((r) => JSON.parse(r)[0] as number[]);
    const used = new Set(rows.flat());
    expect(used).toEqual(new Set([0, 1, 3, 4, 5, 6]));
  });

  it('refuses an empty corpus, a corpus with no usable pair, and bad options, naming them', async () => {
    await expect(PretrainingDataset.fromSource(['no sentence break here', ''])).rejects.toThrow(
      /no paragraph of at least two sentences/,
    );
    await expect(PretrainingDataset.fromSource(lines, { maxLen: 8, minFreq: 1 })).rejects.toThrow(
      /no sentence pair fits maxLen = 8/,
    );
    await expect(PretrainingDataset.fromSource(lines, { maxLen: 4 })).rejects.toThrow(/^maxLen:/);
    await expect(PretrainingDataset.fromSource(lines, { maxLen: 20.5 })).rejects.toThrow(RangeError);
    await expect(PretrainingDataset.fromSource(lines, { seed: -1 })).rejects.toThrow(/^seed:/);
    await expect(PretrainingDataset.fromSource(lines, { minFreq: 0 })).rejects.toThrow(/^minFreq:/);
    const ds = await PretrainingDataset.fromSource(lines, options);
    expect(() => ds.batches({ batchSize: 0 })).toThrow(/^batchSize:/);
    expect(() => ds.batches({ batchSize: 2.5 })).toThrow(RangeError);
    expect(() => ds.batches({ batchSize: 8, epoch: -1 })).toThrow(/^epoch:/);
  });
});
