import { describe, expect, it } from 'vitest';

import { RESERVED_TOKENS, Vocab } from '../../src/data/index.js';

describe('Vocab', () => {
  const sentences = [
    ['b', 'a', 'c', 'a'],
    ['c', 'b', 'a', 'd'],
    ['<unk>', 'e', 'c'],
  ];

  it('puts <unk> at 0, the reserved tokens at 1–4, then words by count, ties by code point', () => {
    const v = Vocab.build(sentences, { minFreq: 1 });
    expect(RESERVED_TOKENS).toEqual(['<unk>', '<pad>', '<mask>', '<cls>', '<sep>']);
    // a:3, c:3, b:2, d:1, e:1 — <unk> in the text keeps id 0
    expect(v.toJSON().tokens).toEqual(['<unk>', '<pad>', '<mask>', '<cls>', '<sep>', 'a', 'c', 'b', 'd', 'e']);
    expect(v.size).toBe(10);
  });

  it('drops words under minFreq and maps unknown words to 0', () => {
    const v = Vocab.build(sentences, { minFreq: 2 });
    expect(v.toJSON().tokens.slice(5)).toEqual(['a', 'c', 'b']);
    expect(v.idOf('d')).toBe(0);
    expect(v.idOf('never seen')).toBe(0);
    expect(v.idOf('c')).toBe(6);
    expect(v.tokenOf(7)).toBe('b');
    expect(() => v.tokenOf(8)).toThrow(RangeError);
  });

  it('round-trips through JSON and refuses what is not a vocabulary', () => {
    const v = Vocab.build(sentences, { minFreq: 1 });
    const back = Vocab.fromJSON(JSON.parse(JSON.stringify(v)));
    expect(back.toJSON()).toEqual(v.toJSON());
    expect(back.idOf('e')).toBe(v.idOf('e'));
    expect(() => Vocab.fromJSON({ tokens: ['a', 'b'] })).toThrow(TypeError);
    expect(() => Vocab.fromJSON({ tokens: [...RESERVED_TOKENS, 'x', 'x'] })).toThrow(TypeError);
    expect(() => Vocab.build(sentences, { minFreq: 0 })).toThrow(/^minFreq:/);
  });
});
