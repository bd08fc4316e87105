import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { Corpus, readCorpus, Vocab, vocabPieces } from '../../src/data/index.js';

/** Every paragraph of `corpus`, in its (shuffled) order. */
const paragraphs = (corpus: Corpus) => Array.from({ length: corpus.numParagraphs }, (_, p) => corpus.paragraph(p));
/** The same, sorted, to compare regardless of the shuffle. */
const sorted = (ps: string[][][]) => ps.map((p) => JSON.stringify(p)).sort();

describe('reading a corpus', () => {
  it('keeps the lines of at least two sentences, trimmed, lowercased, split into sentences and words', () => {
    const lines = [
      ' = Title = ',
      '',
      'One sentence only .',
      ' The Cat sat . It  Purred . ',
      'A b . C',
      ' . Edge',
      'x .y',
      'ÉCOLE Straße . ΟΔΟΣ x',
    ];
    // Expected as the textbook's Python gives it: the filter looks at the raw line, so ' . Edge' is kept
    // with the single sentence '. edge'; the final '.' of the last sentence stays a word.
    expect(sorted(paragraphs(Corpus.fromLines(lines)))).toEqual(
      sorted([
        [
          ['the', 'cat', 'sat'],
          ['it', 'purred', '.'],
        ],
        [['a', 'b'], ['c']],
        [['.', 'edge']],
        [
          ['école', 'straße'],
          ['οδος', 'x'],
        ],
      ]),
    );
  });

  it("splits words on Python's whitespace: U+FEFF is a word, U+0085 a separator", () => {
    expect(paragraphs(Corpus.fromLines(['a\ufeff b . c\u0085d .']))).toEqual([
      [
        ['a\ufeff', 'b'],
        ['c', 'd', '.'],
      ],
    ]);
  });

  it('counts every distinct word and keeps the sentence and paragraph bounds', () => {
    const corpus = Corpus.fromLines(['a b . b c', 'c . c a']);
    expect(corpus.wordCounts()).toEqual(
      new Map([
        ['a', 2],
        ['b', 2],
        ['c', 3],
      ]),
    );
    expect(corpus.numParagraphs).toBe(2);
    expect(corpus.numSentences).toBe(4);
    expect(corpus.tokens.length).toBe(7);
    expect(corpus.sentenceStarts.at(-1)).toBe(7);
    expect(corpus.paragraphStarts.at(-1)).toBe(4);
    expect(() => corpus.paragraph(2)).toThrow(RangeError);
  });

  it('maps its words to vocabulary ids, unknown words to 0', () => {
    const corpus = Corpus.fromLines(['a b . b c', 'c . c a']);
    const vocab = Vocab.build(corpus.wordCounts(), { minFreq: 3 }); // only c (3 times), id 5
    const ids = corpus.tokenize(vocabPieces(corpus.words, vocab)).tokens.read(0, 7);
    const words = corpus.tokens.read(0, 7);
    expect(Array.from(ids, (id, k) => [corpus.words[words[k]], id]).sort()).toEqual([
      ['a', 0],
      ['a', 0],
      ['b', 0],
      ['b', 0],
      ['c', 5],
      ['c', 5],
      ['c', 5],
    ]);
  });

  it('shuffles the paragraphs with the seed: the same seed, the same order; another seed, another', () => {
    const lines = Array.from({ length: 30 }, (_, i) => `p${i} x . p${i} y`);
    const firstWords = (seed: number) => paragraphs(Corpus.fromLines(lines, seed)).map((p) => p[0][0]);
    const inFileOrder = lines.map((_, i) => `p${i}`);
    expect(firstWords(1)).toEqual(firstWords(1));
    expect([...firstWords(1)].sort()).toEqual([...inFileOrder].sort());
    expect(firstWords(1)).not.toEqual(inFileOrder);
    expect(firstWords(2)).not.toEqual(firstWords(1));
  });

  it('reads a file, the wiki.train.tokens of a folder, or lines alike, with any line ending', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-corpus-'));
    await writeFile(join(dir, 'wiki.train.tokens'), 'a b . c\r\nd . e\rf . g\n\n = h = \n');
    const fromFile = paragraphs(await readCorpus(join(dir, 'wiki.train.tokens'), 4));
    expect(sorted(fromFile)).toEqual(
      sorted([
        [['a', 'b'], ['c']],
        [['d'], ['e']],
        [['f'], ['g']],
      ]),
    );
    expect(paragraphs(await readCorpus(dir, 4))).toEqual(fromFile);
    expect(paragraphs(await readCorpus(['a b . c', 'd . e', 'f . g'], 4))).toEqual(fromFile);
  });

  it('names a missing file, an empty folder or pattern, and a corpus without paragraphs', async () => {
    await expect(readCorpus('/no/such/corpus.tokens')).rejects.toThrow(
      "data: '/no/such/corpus.tokens': no such file or folder",
    );
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-empty-'));
    await mkdir(join(dir, 'sub'));
    await expect(readCorpus(dir)).rejects.toThrow(`'${dir}': no file in the folder`);
    await expect(readCorpus(join(dir, '*.jsonl'))).rejects.toThrow('no file matches the pattern');
    await writeFile(join(dir, 'empty.tokens'), '');
    await expect(readCorpus(join(dir, 'empty.tokens'))).rejects.toThrow(
      `'${join(dir, 'empty.tokens')}': no paragraph of at least two sentences`,
    );
    await expect(readCorpus(['one sentence .', ''])).rejects.toThrow(
      /the given lines: no paragraph of at least two sentences/,
    );
    await expect(readCorpus(['a . b', 3 as unknown as string])).rejects.toThrow(TypeError);
    await expect(readCorpus(['a . b'], -1)).rejects.toThrow(/^seed:/);
  });
});
