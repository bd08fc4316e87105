import { describe, expect, it } from 'vitest';

import {
  CLS,
  CLS_ID,
  MASK,
  MASK_ID,
  PAD,
  PAD_ID,
  RESERVED_TOKENS,
  SEP,
  SEP_ID,
  UNK,
  UNK_ID,
  Vocab,
} from '../../src/data/index.js';

describe('Vocab', () => {
  const sentences = [
    ['b', 'a', 'c', 'a'],
    ['c', 'b', 'a', 'd'],
    ['<unk>', 'e', 'c', '<sep>'],
  ];

  it('gives <unk> id 0 and <pad>, <mask>, <cls>, <sep> ids 1–4', () => {
    expect(RESERVED_TOKENS).toEqual(['<unk>', '<pad>', '<mask>', '<cls>', '<sep>']);
    expect([UNK, PAD, MASK, CLS, SEP]).toEqual(['<unk>', '<pad>', '<mask>', '<cls>', '<sep>']);
    expect([UNK_ID, PAD_ID, MASK_ID, CLS_ID, SEP_ID]).toEqual([0, 1, 2, 3, 4]);
    const v = Vocab.build(sentences, { minFreq: 1 });
    expect(RESERVED_TOKENS.map((t) => v.idOf(t))).toEqual([0, 1, 2, 3, 4]);
  });

  it('orders words by count, most frequent first, after the reserved tokens (which keep their ids)', () => {
    // a: 3, c: 3, b: 2, d: 1, e: 1; the <unk> and <sep> of the text are not words
    expect(Vocab.build(sentences, { minFreq: 1 }).toJSON().tokens).toEqual([
      '<unk>',
      '<pad>',
      '<mask>',
      '<cls>',
      '<sep>',
      'a',
      'c',
      'b',
      'd',
      'e',
    ]);
  });

  it('breaks ties by code point, as Python sorts strings (not by UTF-16 unit)', () => {
    const counts = new Map([
      ['\u{1F600}', 2],
      ['z', 2],
      ['\uFF21', 2],
      ['a', 2],
      ['é', 2],
      ['zz', 3],
    ]);
    // U+1F600 is after U+FF21 in code points, before it in UTF-16 units (its lead surrogate is U+D83D)
    expect(Vocab.build(counts, { minFreq: 1 }).toJSON().tokens.slice(5)).toEqual([
      'zz',
      'a',
      'z',
      'é',
      '\uFF21',
      '\u{1F600}',
    ]);
  });

  it('builds the same vocabulary from word counts as from the sentences', () => {
    const counts = new Map([
      ['b', 2],
      ['a', 3],
      ['c', 3],
      ['d', 1],
      ['e', 1],
      ['<unk>', 1],
      ['<sep>', 1],
    ]);
    expect(Vocab.build(counts, { minFreq: 1 }).toJSON()).toEqual(Vocab.build(sentences, { minFreq: 1 }).toJSON());
  });

  it('keeps only words seen minFreq times (default 5) and maps unknown words to 0', () => {
    const v = Vocab.build(sentences, { minFreq: 2 });
    expect(v.toJSON().tokens.slice(5)).toEqual(['a', 'c', 'b']);
    expect(v.size).toBe(8);
    expect([v.idOf('a'), v.idOf('c'), v.idOf('b'), v.idOf('d'), v.idOf('never seen')]).toEqual([5, 6, 7, 0, 0]);
    expect(v.tokenOf(7)).toBe('b');
    expect(() => v.tokenOf(8)).toThrow(RangeError);
    const fives = Vocab.build([Array(5).fill('x'), Array(4).fill('y')]);
    expect(fives.toJSON().tokens.slice(5)).toEqual(['x']);
  });

  it('round-trips through JSON and refuses what is not a vocabulary', () => {
    const v = Vocab.build(sentences, { minFreq: 1 });
    const back = Vocab.fromJSON(JSON.parse(JSON.stringify(v)));
    expect(back.toJSON()).toEqual(v.toJSON());
    expect(['a', 'c', 'e', 'zzz'].map((w) => back.idOf(w))).toEqual([5, 6, 9, 0]);
    expect(() => Vocab.fromJSON({ tokens: ['a', 'b'] })).toThrow(TypeError);
    expect(() => Vocab.fromJSON({ tokens: [...RESERVED_TOKENS, 'x', 'x'] })).toThrow(TypeError);
    expect(() => Vocab.fromJSON(null as unknown as { tokens: string[] })).toThrow(TypeError);
  });

  it('refuses a minFreq that is not a positive integer', () => {
    expect(() => Vocab.build(sentences, { minFreq: 0 })).toThrow(/^minFreq:/);
    expect(() => Vocab.build(sentences, { minFreq: 1.5 })).toThrow(RangeError);
  });
});
