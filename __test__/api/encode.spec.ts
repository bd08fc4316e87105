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

  it('names the limit when the input is too long, and bad arguments', async () => {
    const long = Array(999).fill('crane');
    await expect(encode(model, long)).rejects.toThrow(
      /^inputs\[0\]: 1001 tokens with <cls> and <sep>, but this model takes at most 1000 \(maxPositions\)/,
    );
    await expect(encode(model, 'a crane' as never)).rejects.toThrow(TypeError);
    await expect(encode(model, ['a']).then((e) => e.token(5))).rejects.toThrow(/^index: 5 is outside \[0, 3\)/);
  });
});
