import { describe, expect, it } from 'vitest';

import { encode, encodeBatch, pretrain } from '../../src/index.js';
import { paragraphs, TINY } from './corpus.js';

describe('encode', async () => {
  const { model } = await pretrain({ data: paragraphs(200), steps: 3, seed: 3, ...TINY });
  const hidden = model.config.hidden;

  it("reproduces the textbook's crane example shapes", async () => {
    const single = await encode(model, ['a', 'crane', 'is', 'flying']);
    expect(single.tokens).toEqual(['<cls>', 'a', 'crane', 'is', 'flying', '<sep>']);
    expect(single.segments).toEqual([0, 0, 0, 0, 0, 0]);
    expect(single.shape).toEqual([1, 6, hidden]);
    expect(single.data.length).toBe(6 * hidden);
    const cls = single.token(0);
    expect(cls.shape).toEqual([1, hidden]);
    expect(Array.from(cls.data)).toEqual(Array.from(single.data.subarray(0, hidden)));

    const pair = await encode(model, ['a', 'crane', 'driver', 'came'], ['he', 'just', 'left']);
    expect(pair.shape).toEqual([1, 10, hidden]);
    expect(pair.segments).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
    // "crane" (token 2) gets a different vector in each context
    expect(Array.from(pair.token(2).data)).not.toEqual(Array.from(single.token(2).data));
  });

  it('maps unknown words to <unk> and agrees with the batch form', async () => {
    const [one] = await encodeBatch(model, [[['zebra', 'crane']]]);
    const same = await encode(model, ['<unk>', 'crane']);
    expect(Array.from(one.data)).toEqual(Array.from(same.data));
    const [a, b] = await encodeBatch(model, [
      [['a', 'crane', 'is', 'flying']],
      [
        ['a', 'crane', 'driver', 'came'],
        ['he', 'just', 'left'],
      ],
    ]);
    expect(a.shape).toEqual([1, 6, hidden]);
    expect(b.shape).toEqual([1, 10, hidden]);
    const alone = await encode(model, ['a', 'crane', 'is', 'flying']);
    const diff = a.data.reduce((m, v, i) => Math.max(m, Math.abs(v - alone.data[i])), 0);
    expect(diff).toBeLessThan(1e-5);
  });

  it('cuts an input longer than the model to its positions, or refuses it when asked, and names bad arguments', async () => {
    const long = Array(999).fill('crane');
    const cut = await encode(model, long);
    expect(cut.shape).toEqual([1, 1000, hidden]);
    expect(cut.tokens.at(-1)).toBe('<sep>');
    await expect(encode(model, long, undefined, { truncate: false })).rejects.toThrow(
      /^inputs\[0\]: 1001 tokens with the special tokens, but at most 1000 fit \(maxLength\)/,
    );
    await expect(encode(model, 5 as never)).rejects.toThrow(TypeError);
    await expect(encode(model, ['a']).then((e) => e.token(5))).rejects.toThrow(/^index: 5 is outside \[0, 3\)/);
  });

  it('takes raw text as well as words, through the same tokenizer', async () => {
    const words = await encode(model, ['a', 'crane', 'is', 'flying']);
    const text = await encode(model, '  A Crane is\tflying ');
    expect(text.tokens).toEqual(words.tokens);
    expect(Array.from(text.data)).toEqual(Array.from(words.data));
    expect(text.offsets.slice(1, 3)).toEqual([
      [2, 3],
      [4, 9],
    ]);
  });
});
