/**
 * The addon's `NativeBert` directly (internal to the package): parameters and gradients,
 * seeding, and the core's checks of sizes and batches, each naming its field.
 */
import { describe, expect, it } from 'vitest';

import { type Batch, syntheticBatch } from '../../src/data/index.js';
import { native } from '../../src/native.js';

const tiny = { vocabSize: 40, hidden: 16, ffnHidden: 32, heads: 2, layers: 2, dropout: 0.1, maxPositions: 32 };

/** A CPU model of `config` seeded with `seed`. */
const make = (config = tiny, seed = 1, lr?: number) => new (native().NativeBert)(config, { seed, lr, devices: [{}] });
const batch = (b: number, l: number, p: number, seed: number) =>
  syntheticBatch(tiny.vocabSize, { batchSize: b, seqLen: l, numPreds: p, seed });

describe('NativeBert', () => {
  it('names its parameters, their shapes and their total', () => {
    const model = make();
    expect(model.config).toMatchObject(tiny);
    expect(model.paramNames()).toContain('encoder.pos_embedding');
    expect(model.paramShape('encoder.pos_embedding')).toEqual([32, 16]);
    const total = model.paramNames().reduce((sum, n) => sum + model.paramShape(n).reduce((a, b) => a * b, 1), 0);
    expect(model.paramCount).toBe(total);
  });

  it('trains a tiny model on synthetic batches and its loss falls', async () => {
    const model = make(tiny, 3, 0.01);
    const batches = [0, 1, 2, 3].map((s) => batch(8, 12, 2, s));
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
    const model = make();
    const b = batch(3, 10, 2, 7);
    const before = model.param('encoder.token_embedding.weight');
    const out = await model.encode(b);
    expect(out).toBeInstanceOf(Float32Array);
    expect(out.length).toBe(3 * 10 * 16);
    expect(out.every(Number.isFinite)).toBe(true);
    expect(model.param('encoder.token_embedding.weight')).toEqual(before);
    // dropout is off when encoding: the same input gives the same output
    expect(await model.encode(b)).toEqual(out);
    // ... also run now, on the calling thread (what small encodes do)
    expect(model.encodeNow(b)).toEqual(out);
  });

  it('gives bit-identical models and training for one seed, different ones for another', async () => {
    const [a, b, c] = [make(tiny, 42), make(tiny, 42), make(tiny, 43)];
    for (const name of a.paramNames()) expect(a.param(name)).toEqual(b.param(name));
    expect(a.param('encoder.token_embedding.weight')).not.toEqual(c.param('encoder.token_embedding.weight'));
    const input = batch(4, 12, 2, 9);
    for (let i = 0; i < 3; i++) expect(await a.trainStep(input)).toEqual(await b.trainStep(input));
    for (const name of a.paramNames()) expect(a.param(name)).toEqual(b.param(name));
  });

  it('exposes the last gradient of every parameter and lets tests set values', async () => {
    const model = make({ ...tiny, dropout: 0 }, 5);
    expect(model.grad('nsp.output.weight')).toBeNull();
    await model.trainStep(batch(4, 12, 2, 1));
    for (const name of model.paramNames()) {
      const g = model.grad(name);
      expect(g, name).toBeInstanceOf(Float32Array);
      expect(g?.length).toBe(model.param(name).length);
    }
    expect(model.grad('encoder.token_embedding.weight')?.some((v) => v !== 0)).toBe(true);
    const values = new Float32Array(2 * 16).fill(0.5);
    model.setParam('encoder.segment_embedding.weight', values);
    expect(model.param('encoder.segment_embedding.weight')).toEqual(values);
  });

  it('round-trips its weights through safetensors bytes', async () => {
    const [a, b] = [make(tiny, 1), make(tiny, 2)];
    const bytes = await a.saveWeights('tsbert');
    expect(Buffer.isBuffer(bytes)).toBe(true);
    await b.loadWeights(bytes, 'tsbert');
    for (const name of a.paramNames()) expect(b.param(name)).toEqual(a.param(name));
    await expect(b.loadWeights(bytes.subarray(0, 100), 'tsbert')).rejects.toThrow(/not a readable safetensors file/);
  });
});

describe('NativeBert input checks', () => {
  const model = make();
  const good = () => batch(2, 8, 2, 3);
  const cases: [string, (b: Batch) => void][] = [
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
      const input = good();
      corrupt(input);
      const error = await model.trainStep(input).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(RangeError);
      expect((error as Error).message.startsWith(`${field}:`), (error as Error).message).toBe(true);
    });
  }

  it('rejects bad encode input and keeps working afterwards', async () => {
    const b = good();
    const bad = { ...b, tokens: Int32Array.from(b.tokens) };
    bad.tokens[5] = 99;
    await expect(model.encode(bad)).rejects.toThrow(RangeError);
    await expect(model.encode(bad)).rejects.toThrow(/^tokens\[5\]: 99 is out of range/);
    await expect(model.encode({ ...b, batchSize: 3 })).rejects.toThrow(/^tokens: has length 16, expected 24/);
    expect(() => model.encodeNow(bad)).toThrow(RangeError);
    expect(() => model.encodeNow(bad)).toThrow(/^tokens\[5\]: 99 is out of range/);
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
      const input = { ...good(), [field]: value };
      const error = await model.trainStep(input).then(
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
    await expect(model.encode({ ...good(), batchSize: -2 })).rejects.toThrow(/^batchSize:/);
  });

  it('rejects bad sizes, options and parameter names with a RangeError naming them', () => {
    expect(() => make({ ...tiny, heads: 3 })).toThrow(RangeError);
    expect(() => make({ ...tiny, heads: 3 })).toThrow(/^heads: 3 does not divide hidden = 16/);
    expect(() => make({ ...tiny, dropout: 1 })).toThrow(/^dropout:/);
    expect(() => make({ ...tiny, vocabSize: 2 })).toThrow(/^vocabSize:/);
    expect(() => make(tiny, 1, -1)).toThrow(/^lr:/);
    expect(() => new (native().NativeBert)(tiny, { seed: 0, devices: [] })).toThrow(/^device: no device given/);
    expect(() => model.param('nope')).toThrow(/^name: no parameter called 'nope'/);
    expect(() => model.setParam('nsp.output.bias', new Float32Array(3))).toThrow(/^values:/);
  });
});
