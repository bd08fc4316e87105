import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Batch, PretrainingDataset, readCorpus, type TokenizedCorpus } from '../../src/data/index.js';
import { MemoryTokens, TokenWriter } from '../../src/data/token-store.js';
import { bytes, unmaskedRows } from './rows.js';
import { withinBounds } from './stats.js';

/** A deterministic generator of numbers in [0, 1) (a 32-bit LCG). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A generated corpus: its text and how many paragraphs and sentences it holds. */
interface Generated {
  text: string;
  paragraphs: number;
  sentences: number;
}

/**
 * `paragraphs` WikiText paragraphs (or, with `lines`, BERT-layout documents) of 4–8 sentences
 * of `minWords`–`maxWords` words drawn from 500 words.
 */
function generate(paragraphs: number, seed: number, minWords: number, maxWords: number, lines = false): Generated {
  const random = lcg(seed);
  const below = (n: number) => Math.floor(random() * n);
  const out: string[] = [];
  let sentences = 0;
  for (let p = 0; p < paragraphs; p++) {
    const n = 4 + below(5);
    sentences += n;
    const ss = Array.from({ length: n }, () =>
      Array.from({ length: minWords + below(maxWords - minWords + 1) }, () => `w${below(500)}`).join(' '),
    );
    out.push(lines ? `${ss.join('\n')}\n` : `${ss.join(' . ')} .`);
  }
  return { text: `${out.join('\n')}\n`, paragraphs, sentences };
}

/** Each row of the batches as served (masked), sorted. */
function maskedRows(batches: Batch[]): string[] {
  const rows: string[] = [];
  for (const b of batches)
    for (let i = 0; i < b.batchSize; i++) rows.push(b.tokens.subarray(i * b.seqLen, (i + 1) * b.seqLen).join(','));
  return rows.sort();
}

/** The model's ids a dataset holds (a private field: whether they went to a file). */
const tokensOf = (ds: PretrainingDataset) => (ds as unknown as { corpus: TokenizedCorpus }).corpus.tokens;

const MiB = 1 << 20;
const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbert-streaming-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('a dataset served a block at a time', () => {
  // 3000 paragraphs, ~18 000 sentences, ~300 000 words (~1.6 MB); sentences of 3–30 words with
  // maxLen 48: some pairs do not fit and are skipped, in blocks as in one
  const corpus = generate(3000, 7, 3, 30);
  const options = { maxLen: 48, seed: 11 };
  let path: string;
  let small: PretrainingDataset;
  let whole: PretrainingDataset;

  beforeAll(async () => {
    path = join(await tempDir(), 'corpus.tokens');
    await writeFile(path, corpus.text);
    [small, whole] = await Promise.all([
      PretrainingDataset.fromSource(path, { ...options, memory: MiB }),
      PretrainingDataset.fromSource(path, options),
    ]);
  });
  afterAll(() => {
    small?.close();
    whole?.close();
  });

  it('splits a corpus whose examples pass memory / 2 into blocks, and spills its ids past memory / 4', () => {
    expect(whole.numBlocks).toBe(1);
    // padded, an example alone takes 4 · (2 · 48 + 3 · 7 + 2) bytes: at most 512 KiB of them a block
    const bound = Math.ceil((small.numExamples * 4 * (2 * 48 + 3 * 7 + 2)) / (MiB / 2));
    expect(small.numBlocks).toBeGreaterThanOrEqual(bound);
    expect(bound).toBeGreaterThan(1);
    expect(small.numExamples).toBe(whole.numExamples);
    expect(small.numExamples).toBeLessThan(corpus.sentences - corpus.paragraphs); // some pairs skipped
    expect(small.numExamples).toBeGreaterThan((corpus.sentences - corpus.paragraphs) / 2);
    expect([small.numParagraphs, whole.numParagraphs]).toEqual([3000, 3000]);
    expect(small.vocab?.size).toBe(whole.vocab?.size);
    expect(tokensOf(small)).not.toBeInstanceOf(MemoryTokens); // > 64 Ki ids: in a file
    expect(tokensOf(whole)).toBeInstanceOf(MemoryTokens);
  });

  it('serves the examples of the one-block dataset, each once an epoch, in numBatches batches all full but the last', () => {
    const reference = unmaskedRows([...whole.batches({ batchSize: whole.numExamples })]);
    expect(reference).toHaveLength(whole.numExamples);
    for (const [epoch, batchSize] of [
      [0, 100],
      [1, 333],
    ]) {
      const batches = [...small.batches({ batchSize, epoch })];
      expect(batches).toHaveLength(small.numBatches(batchSize));
      expect(batches.slice(0, -1).every((b) => b.batchSize === batchSize)).toBe(true);
      expect(batches.at(-1)?.batchSize).toBe(small.numExamples - (batches.length - 1) * batchSize);
      expect(unmaskedRows(batches)).toEqual(reference);
    }
    const dropped = [...small.batches({ batchSize: 333, epoch: 1, dropLast: true })];
    expect(dropped).toHaveLength(small.numBatches(333, true));
    expect(dropped).toHaveLength(Math.floor(small.numExamples / 333));
    expect(dropped.every((b) => b.batchSize === 333)).toBe(true);
  });

  it('serves another order each epoch, and the same bytes for the same seed', async () => {
    const epoch = (ds: PretrainingDataset, e: number) => bytes([...ds.batches({ batchSize: 256, epoch: e })]);
    const [e0, e1] = [epoch(small, 0), epoch(small, 1)];
    expect(e1).not.toEqual(e0);
    const twin = await PretrainingDataset.fromSource(path, { ...options, memory: MiB });
    try {
      expect(twin.numBlocks).toBe(small.numBlocks);
      expect(epoch(twin, 0)).toEqual(e0);
      expect(epoch(twin, 1)).toEqual(e1);
    } finally {
      twin.close();
    }
  });

  it('keeps the masks across epochs, and masks afresh with remask without changing the examples', () => {
    const all = (e: number, remask: boolean) => [...small.batches({ batchSize: 1000, epoch: e, remask })];
    const [e0, e1, e1remask] = [all(0, false), all(1, false), all(1, true)];
    expect(maskedRows(e1)).toEqual(maskedRows(e0));
    expect(maskedRows(all(0, true))).toEqual(maskedRows(e0));
    expect(maskedRows(e1remask)).not.toEqual(maskedRows(e0));
    expect(unmaskedRows(e1remask)).toEqual(unmaskedRows(e0));
  });

  it('refuses less than 1 MiB of memory', async () => {
    await expect(PretrainingDataset.fromSource(path, { memory: MiB - 1 })).rejects.toThrow(/^memory:/);
  });
});

describe('TokenWriter and MemoryTokens', () => {
  const ids = (n: number) => Int32Array.from({ length: n }, (_, k) => (k * 7919) % 100_003);

  it('moves the ids to a temporary file past its memory, removing its name, and reads them back by range', async () => {
    const dir = await tempDir();
    const writer = new TokenWriter(4096, dir);
    const all = ids(5000);
    for (let k = 0; k < 1024; k++) writer.push(all[k]);
    expect(writer.spilled).toBe(false); // 4 KiB held
    writer.push(all[1024]);
    expect(writer.spilled).toBe(true);
    writer.pushAll(all.subarray(1025));
    expect(writer.length).toBe(5000);
    expect(await readdir(dir)).toEqual([]); // the file has no name
    const store = writer.finish();
    expect(store).not.toBeInstanceOf(MemoryTokens);
    expect(store.length).toBe(5000);
    expect(Array.from(store.read(0, 5000))).toEqual(Array.from(all));
    expect(Array.from(store.read(1000, 1100))).toEqual(Array.from(all.subarray(1000, 1100))); // across the spill
    expect(Array.from(store.read(2040, 2060))).toEqual(Array.from(all.subarray(2040, 2060)));
    expect(Array.from(store.read(4990, 5000))).toEqual(Array.from(all.subarray(4990))); // flushed at finish
    expect(store.read(3, 3)).toHaveLength(0);
    store.close();
    expect(() => store.read(0, 1)).toThrow(/token file is closed/);
    store.close(); // twice is harmless
  });

  it('keeps the ids in memory within a large budget', async () => {
    const dir = await tempDir();
    const writer = new TokenWriter(1 << 20, dir);
    const all = ids(5000);
    writer.pushAll(all);
    expect(writer.spilled).toBe(false);
    const store = writer.finish();
    expect(store).toBeInstanceOf(MemoryTokens);
    expect(await readdir(dir)).toEqual([]);
    expect(Array.from(store.read(0, store.length))).toEqual(Array.from(all));
    expect(Array.from(store.read(1020, 1030))).toEqual(Array.from(all.subarray(1020, 1030)));
  });

  it('MemoryTokens reads views of its array', () => {
    const array = Int32Array.of(5, 6, 7, 8);
    const store = new MemoryTokens(array);
    expect(store.length).toBe(4);
    expect(Array.from(store.read(1, 3))).toEqual([6, 7]);
    array[2] = 70;
    expect(Array.from(store.read(1, 3))).toEqual([6, 70]);
    store.close();
    expect(store.length).toBe(4);
  });
});

describe('a corpus read a line at a time', () => {
  it('reads the same words, counts and paragraphs with a small memory for its ids as with the default', async () => {
    const dir = await tempDir();
    const path = join(dir, 'docs.txt');
    const generated = generate(800, 3, 2, 12, true);
    await writeFile(path, generated.text);
    const [small, large] = await Promise.all([
      readCorpus(path, { format: 'lines', memoryBytes: 16 << 10, seed: 5 }),
      readCorpus(path, { format: 'lines', seed: 5 }),
    ]);
    try {
      expect(small.tokens).not.toBeInstanceOf(MemoryTokens);
      expect(large.tokens).toBeInstanceOf(MemoryTokens);
      expect([small.numParagraphs, small.numSentences]).toEqual([generated.paragraphs, generated.sentences]);
      expect(small.words).toEqual(large.words);
      expect(Array.from(small.counts)).toEqual(Array.from(large.counts));
      expect(small.counts.reduce((a, b) => a + b)).toBe(small.tokens.length);
      expect(Array.from(small.sentenceStarts)).toEqual(Array.from(large.sentenceStarts));
      expect(Array.from(small.order)).toEqual(Array.from(large.order));
      expect(Array.from(small.tokens.read(0, small.tokens.length))).toEqual(
        Array.from(large.tokens.read(0, large.tokens.length)),
      );
      for (let p = 0; p < small.numParagraphs; p++) expect(small.paragraph(p)).toEqual(large.paragraph(p));
    } finally {
      small.tokens.close();
      large.tokens.close();
    }
  });
});

describe('preparing a ~20 MB corpus in 4 MiB', () => {
  it('makes many blocks and serves every example once', async () => {
    const dir = await tempDir();
    const path = join(dir, 'big.txt');
    // sentences of 3–30 words: every pair fits maxLen 64, so there is one example a sentence but a paragraph's last
    const generated = generate(45_000, 13, 3, 30, true);
    expect(generated.text.length).toBeGreaterThan(20e6);
    await writeFile(path, generated.text);
    const ds = await PretrainingDataset.fromSource(path, { format: 'lines', memory: 4 * MiB, seed: 2 });
    try {
      expect(ds.numParagraphs).toBe(generated.paragraphs);
      expect(ds.numExamples).toBe(generated.sentences - generated.paragraphs);
      // padded examples alone (4 · (2 · 64 + 3 · 10 + 2) bytes each) fill 2 MiB this many times
      expect(ds.numBlocks).toBeGreaterThanOrEqual(Math.ceil((ds.numExamples * 640) / (2 * MiB)));
      expect(tokensOf(ds)).not.toBeInstanceOf(MemoryTokens);
      let rows = 0;
      let batches = 0;
      let isNext = 0;
      for (const b of ds.batches({ batchSize: 512 })) {
        if (batches < ds.numBatches(512) - 1) expect(b.batchSize).toBe(512);
        rows += b.batchSize;
        batches++;
        for (let i = 0; i < b.batchSize; i++) isNext += b.nspLabels[i];
      }
      expect([rows, batches]).toEqual([ds.numExamples, ds.numBatches(512)]);
      expect(withinBounds(isNext / rows, 0.5, rows)).toBe(true);
    } finally {
      ds.close();
    }
    expect(() => ds.batches({ batchSize: 512 }).next()).toThrow(/token file is closed/);
  });
});
