import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { PretrainingDataset, readCorpus, Vocab } from '../../src/data/index.js';
import { defaultCacheDir } from '../../src/data/wikitext-download.js';

/** WikiText-2 beside the repository (../shared/data/wikitext-2 from its root), else in tsbert's download cache. */
const wiki =
  [
    join(import.meta.dirname, '../../../shared/data/wikitext-2/wiki.train.tokens'),
    join(defaultCacheDir(), 'wikitext-2', 'wiki.train.tokens'),
  ].find((path) => existsSync(path)) ?? '';

describe.skipIf(wiki === '')(
  'WikiText-2 (needs ../shared/data/wikitext-2 beside the repository or in the download cache)',
  () => {
    it('has 15496 paragraphs and a vocabulary of 20256 with minFreq 5', async () => {
      const corpus = await readCorpus(wiki);
      expect(corpus.numParagraphs).toBe(15496);
      expect(Vocab.build(corpus.wordCounts(), { minFreq: 5 }).size).toBe(20256);
    });

    it('makes maxLen-64 examples with 10 predictions each', async () => {
      const ds = await PretrainingDataset.fromSource(join(wiki, '..'), { maxLen: 64, seed: 0 });
      expect([ds.numParagraphs, ds.vocab!.size, ds.maxLen, ds.numPreds]).toEqual([15496, 20256, 64, 10]);
      const [batch] = ds.batches({ batchSize: 512 });
      expect(batch.batchSize).toBe(512);
      expect(Math.max(...batch.validLens)).toBeLessThanOrEqual(64);
      expect(ds.numExamples).toBeGreaterThan(40000);
    });
  },
);
