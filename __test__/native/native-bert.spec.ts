import { describe, expect, it } from 'vitest';

import { binding } from '../../src/native.js';
import { syntheticBatch } from './synthetic.js';

const { NativeBert } = binding;
const tiny = { vocabSize: 40, hidden: 16, ffnHidden: 32, heads: 2, layers: 2, dropout: 0.1, maxPositions: 32 };

describe('NativeBert', () => {
  it('reports its configuration with textbook defaults filled in', () => {
    const model = new NativeBert({ vocabSize: 100 });
    expect(model.config).toEqual({
      vocabSize: 100,
      hidden: 128,
      ffnHidden: 256,
      heads: 2,
      layers: 2,
      dropout: 0.2,
      maxPositions: 1000,
    });
    expect(model.paramNames()).toContain('encoder.pos_embedding');
    expect(model.paramShape('encoder.pos_embedding')).toEqual([1000, 128]);
    const total = model.paramNames().reduce((sum, n) => sum + model.paramShape(n).reduce((a, b) => a * b, 1), 0);
    expect(model.paramCount).toBe(total);
  });

  it('trains a tiny model on synthetic batches and its loss falls', async () => {
    const model = new NativeBert(tiny, { seed: 3, lr: 0.01 });
    const batches = [0, 1, 2, 3].map((s) => syntheticBatch(tiny.vocabSize, 8, 12, 2, s));
    const totals: number[] = [];
    for (let step = 0; step < 40; step++) {
      const { mlmLoss, nspLoss } = await model.trainStep(batches[step % 4]);
      expect(Number.isFinite(mlmLoss) && Number.isFinite(nspLoss)).toBe(true);
      totals.push(mlmLoss + nspLoss);
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(totals.slice(-8))).toBeLessThan(0.7 * mean(totals.slice(0, 8)));
  });

  it('encodes to batchSize × seqLen × hidden without changing the weights', async () => {
    const model = new NativeBert(tiny, { seed: 1 });
    const b = syntheticBatch(tiny.vocabSize, 3, 10, 2, 7);
    const before = model.param('encoder.token_embedding.weight');
    const out = await model.encode(b.tokens, b.segments, b.validLens, 3, 10);
    expect(out).toBeInstanceOf(Float32Array);
    expect(out.length).toBe(3 * 10 * 16);
    expect(out.every(Number.isFinite)).toBe(true);
    expect(model.param('encoder.token_embedding.weight')).toEqual(before);
    // dropout is off when encoding: the same input gives the same output
    expect(await model.encode(b.tokens, b.segments, b.validLens, 3, 10)).toEqual(out);
  });

  it('gives bit-identical models and training for one seed, different ones for another', async () => {
    const [a, b, c] = [
      new NativeBert(tiny, { seed: 42 }),
      new NativeBert(tiny, { seed: 42 }),
      new NativeBert(tiny, { seed: 43 }),
    ];
    for (const name of a.paramNames()) expect(a.param(name)).toEqual(b.param(name));
    expect(a.param('encoder.token_embedding.weight')).not.toEqual(c.param('encoder.token_embedding.weight'));
    const batch = syntheticBatch(tiny.vocabSize, 4, 12, 2, 9);
    for (let i = 0; i < 3; i++) expect(await a.trainStep(batch)).toEqual(await b.trainStep(batch));
    for (const name of a.paramNames()) expect(a.param(name)).toEqual(b.param(name));
  });

  it('exposes the last gradient of every parameter and lets tests set values', async () => {
    const model = new NativeBert({ ...tiny, dropout: 0 }, { seed: 5 });
    expect(model.grad('nsp.output.weight')).toBeNull();
    await model.trainStep(syntheticBatch(tiny.vocabSize, 4, 12, 2, 1));
    for (const name of model.paramNames()) {
      const g = model.grad(name);
      expect(g, name).toBeInstanceOf(Float32Array);
      expect(g!.length).toBe(model.param(name).length);
    }
    expect(model.grad('encoder.token_embedding.weight')!.some((v) => v !== 0)).toBe(true);
    const values = new Float32Array(2 * 16).fill(0.5);
    model.setParam('encoder.segment_embedding.weight', values);
    expect(model.param('encoder.segment_embedding.weight')).toEqual(values);
  });
});

describe('NativeBert input checks', () => {
  const model = new NativeBert(tiny, { seed: 1 });
  const good = () => syntheticBatch(tiny.vocabSize, 2, 8, 2, 3);
  const cases: [string, (b: ReturnType<typeof good>) => void][] = [
    [
      'tokens[3]',
      (b) => {
        b.tokens[3] = 40;
      },
    ],
    [
      'tokens[0]',
      (b) => {
        b.tokens[0] = -2;
      },
    ],
    [
      'segments[2]',
      (b) => {
        b.segments[2] = 2;
      },
    ],
    [
      'validLens[1]',
      (b) => {
        b.validLens[1] = 9;
      },
    ],
    [
      'validLens[0]',
      (b) => {
        b.validLens[0] = 0;
      },
    ],
    [
      'predPositions[1]',
      (b) => {
        b.predPositions[1] = 8;
      },
    ],
    [
      'mlmLabels[2]',
      (b) => {
        b.mlmLabels[2] = 1000;
      },
    ],
    [
      'nspLabels[0]',
      (b) => {
        b.nspLabels[0] = 2;
      },
    ],
    [
      'mlmWeights[0]',
      (b) => {
        b.mlmWeights[0] = Number.POSITIVE_INFINITY;
      },
    ],
    [
      'tokens',
      (b) => {
        b.tokens = b.tokens.slice(1);
      },
    ],
    [
      'segments',
      (b) => {
        b.segments = new Int32Array(3);
      },
    ],
    [
      'validLens',
      (b) => {
        b.validLens = new Int32Array(3).fill(2);
      },
    ],
    [
      'predPositions',
      (b) => {
        b.predPositions = b.predPositions.slice(1);
      },
    ],
    [
      'mlmWeights',
      (b) => {
        b.mlmWeights = new Float32Array(1);
      },
    ],
    [
      'mlmLabels',
      (b) => {
        b.mlmLabels = new Int32Array(5);
      },
    ],
    [
      'nspLabels',
      (b) => {
        b.nspLabels = new Int32Array(0);
      },
    ],
    [
      'seqLen',
      (b) => {
        b.seqLen = 33;
      },
    ],
    [
      'batchSize',
      (b) => {
        b.batchSize = 0;
      },
    ],
  ];
  for (const [field, corrupt] of cases) {
    it(`rejects a bad ${field} with a RangeError naming it`, async () => {
      const batch = good();
      corrupt(batch);
      const error = await model.trainStep(batch).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(RangeError);
      expect((error as Error).message.startsWith(`${field}:`), (error as Error).message).toBe(true);
    });
  }

  it('rejects bad encode input and keeps working afterwards', async () => {
    const b = good();
    const bad = Int32Array.from(b.tokens);
    bad[5] = 99;
    await expect(model.encode(bad, b.segments, b.validLens, 2, 8)).rejects.toThrow(RangeError);
    await expect(model.encode(bad, b.segments, b.validLens, 2, 8)).rejects.toThrow(/^tokens\[5\]: 99 is out of range/);
    await expect(model.encode(b.tokens, b.segments, b.validLens, 3, 8)).rejects.toThrow(
      /^tokens: has length 16, expected 24/,
    );
    const { mlmLoss } = await model.trainStep(good());
    expect(Number.isFinite(mlmLoss)).toBe(true);
  });

  const typeCases: [string, unknown, RegExp][] = [
    ['tokens', [1, 2, 3], /^tokens: expected an Int32Array/],
    ['mlmWeights', new Float64Array(4), /^mlmWeights: expected a Float32Array/],
    ['segments', undefined, /^segments: expected an Int32Array/],
    ['batchSize', '2', /^batchSize: expected a number/],
  ];
  for (const [field, value, message] of typeCases) {
    it(`rejects a ${field} of the wrong type with a TypeError naming it`, async () => {
      const batch = { ...good(), [field]: value } as never;
      const error = await model.trainStep(batch).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(message);
    });
  }

  it('rejects a negative or fractional size with a RangeError naming it', async () => {
    await expect(model.trainStep({ ...good(), numPreds: -1 })).rejects.toThrow(
      /^numPreds: -1 is not a non-negative integer/,
    );
    await expect(model.trainStep({ ...good(), seqLen: 2.5 })).rejects.toThrow(RangeError);
    const b = good();
    await expect(model.encode(b.tokens, b.segments, b.validLens, -2, 8)).rejects.toThrow(/^batchSize:/);
  });

  it('rejects bad configurations and options with a RangeError naming them', () => {
    expect(() => new NativeBert({ ...tiny, heads: 3 })).toThrow(RangeError);
    expect(() => new NativeBert({ ...tiny, heads: 3 })).toThrow(/^heads: 3 does not divide hidden = 16/);
    expect(() => new NativeBert({ ...tiny, dropout: 1 })).toThrow(/^dropout:/);
    expect(() => new NativeBert({ ...tiny, vocabSize: 2 })).toThrow(/^vocabSize:/);
    expect(() => new NativeBert(tiny, { seed: 1.5 })).toThrow(/^seed:/);
    expect(() => new NativeBert(tiny, { lr: -1 })).toThrow(/^lr:/);
    expect(() => new NativeBert(tiny, { device: 'tpu' })).toThrow(/^device: unknown device 'tpu'/);
    expect(() => model.param('nope')).toThrow(/^name: no parameter called 'nope'/);
    expect(() => model.setParam('nsp.output.bias', new Float32Array(3))).toThrow(/^values:/);
  });
});
