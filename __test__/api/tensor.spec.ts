import { describe, expect, it } from 'vitest';

import { Tensor } from '../../src/tensor.js';

const t = (values: number[], shape: number[]) => Tensor.fromArray(Float32Array.from(values), shape);

describe('Tensor', () => {
  it('round-trips values and shape', () => {
    const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(a.toArray())).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('multiplies, adds and scales like the hand-computed results', () => {
    const a = t([1, 2, 3, 4], [2, 2]);
    const b = t([5, 6, 7, 8], [2, 2]);
    expect(Array.from(a.matmul(b).toArray())).toEqual([19, 22, 43, 50]);
    expect(Array.from(a.add(t([10, 20], [2])).toArray())).toEqual([11, 22, 13, 24]);
    expect(Array.from(a.mul(b).toArray())).toEqual([5, 12, 21, 32]);
  });

  it('computes a softmax over the last dimension', () => {
    const s = Array.from(
      t([0, Math.log(3), 0, 0], [2, 2])
        .softmax()
        .toArray(),
    );
    for (const [i, v] of [0.25, 0.75, 0.5, 0.5].entries()) expect(s[i]).toBeCloseTo(v, 6);
  });

  it('computes pairwise cosine similarity', () => {
    const a = t([1, 0, 0, 1, 1, 1], [3, 2]);
    const s = a.cosineSimilarity(t([2, 0], [2]));
    expect(s.shape).toEqual([3, 1]);
    const v = Array.from(s.toArray());
    for (const [i, x] of [1, 0, Math.SQRT1_2].entries()) expect(v[i]).toBeCloseTo(x, 6);
  });

  it('throws a RangeError naming the operation and the shapes', () => {
    const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(() => a.matmul(a)).toThrow(RangeError);
    expect(() => a.matmul(a)).toThrow(/^matmul: shapes \[2, 3\] and \[2, 3\] do not multiply/);
    expect(() => a.add(t([1, 2], [2]))).toThrow(/^add: shapes/);
    expect(() => a.cosineSimilarity(t([1, 2], [2]))).toThrow(/^cosineSimilarity:/);
    expect(() => t([1, 2, 3], [2, 2])).toThrow(/^shape: \[2, 2\] holds 4 values, but 3 were given/);
    expect(() => t([Number.NaN], [1])).toThrow(/^data\[0\]: NaN is not finite/);
    expect(() => t([1], [])).toThrow(/^shape: expected a non-empty list/);
  });

  it('keeps its values in JavaScript memory and is immutable through its operations', () => {
    const data = Float32Array.from([1, 2, 3, 4]);
    const a = Tensor.fromArray(data, [2, 2]);
    data[0] = 100; // the tensor holds a copy
    expect(a.data[0]).toBe(1);
    const copy = a.toArray();
    copy[1] = 100;
    expect(a.data[1]).toBe(2);
    expect(Object.isFrozen(a.shape)).toBe(true);
    expect(a.add(a).data).not.toBe(a.data);
  });
});
