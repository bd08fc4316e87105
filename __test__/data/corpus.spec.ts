import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { paragraphsOf, readParagraphs } from '../../src/data/index.js';

describe('reading paragraphs', () => {
  it('keeps lines of at least two sentences, trimmed, lowercased, split into words', () => {
    const lines = [' = Title = ', '', 'One sentence only .', ' The Cat sat . It  Purred . ', 'A b . C'];
    expect(paragraphsOf(lines)).toEqual([
      [['the', 'cat', 'sat'], ['it', 'purred', '.']],
      [['a', 'b'], ['c']],
    ]);
  });

  it("splits words on Python's whitespace: U+FEFF is a word, U+0085 a separator", () => {
    expect(paragraphsOf(['a\ufeff b . c\u0085d .'])).toEqual([[['a\ufeff', 'b'], ['c', 'd', '.']]]);
  });

  it('reads a file, or the wiki.train.tokens of a folder, and shuffles by seed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-corpus-'));
    const lines = Array.from({ length: 30 }, (_, i) => `p${i} x . p${i} y .`);
    await writeFile(join(dir, 'wiki.train.tokens'), lines.join('\n'));
    const fromFile = await readParagraphs(join(dir, 'wiki.train.tokens'), 1);
    const fromDir = await readParagraphs(dir, 1);
    expect(fromDir).toEqual(fromFile);
    expect(fromFile).toHaveLength(30);
    expect(new Set(fromFile.map((p) => p[0][0]))).toEqual(new Set(lines.map((_, i) => `p${i}`)));
    expect(fromFile.map((p) => p[0][0])).not.toEqual(lines.map((_, i) => `p${i}`));
    expect(await readParagraphs(dir, 2)).not.toEqual(fromFile);
  });

  it('names a missing file or a folder without the train file', async () => {
    await expect(readParagraphs('/no/such/corpus.tokens')).rejects.toThrow("data: '/no/such/corpus.tokens': no such file or folder");
    const empty = await mkdtemp(join(tmpdir(), 'tsbert-empty-'));
    await mkdir(join(empty, 'sub'));
    await expect(readParagraphs(empty)).rejects.toThrow(/wiki\.train\.tokens': no such file or folder/);
  });
});
