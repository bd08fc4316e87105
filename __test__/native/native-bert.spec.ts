/**
 * The addon's `NativeBert` directly (internal to the package), with its `diagnostics`
 * (parameters and gradients by name): seeding, loading, and the core's checks of sizes and
 * batches, each naming its field.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { type Batch, syntheticBatch } from '../../src/data/index.js';
import { native } from '../../src/native.js';

const tiny = { vocabSize: 40, hidden: 16, ffnHidden: 32, heads: 2, layers: 2, dropout: 0.1, maxPositions: 32 };

/** A CPU model of `config` seeded with `seed`. */
const make = (config = tiny, seed = 1, lr?: number) => new (native().NativeBert)(config, { seed, lr, devices: [{}] });
const { diagnostics } = native();
const [paramNames, paramShape, param, grad] = [
  diagnostics.paramNames,
  diagnostics.paramShape,
  diagnostics.param,
  diagnostics.grad,
];
/** `model.encode`'s result as a promise (small inputs are computed, and fail, at once). */
const encoded = async (model: ReturnType<typeof make>, sequences: object) => model.encode(sequences);
const batch = (b: number, l: number, p: number, seed: number) =>
  syntheticBatch(tiny.vocabSize, { batchSize: b, seqLen: l, numPreds: p, seed });

describe('NativeBert', () => {
  it('names its parameters, their shapes and their total', () => {
    const model = make();
    expect(model.config).toMatchObject(tiny);
    expect(paramNames(model)).toContain('encoder.pos_embedding');
    expect(paramShape(model, 'encoder.pos_embedding')).toEqual([32, 16]);
    const total = paramNames(model).reduce((sum, n) => sum + paramShape(model, n).reduce((a, b) => a * b, 1), 0);
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
    const before = param(model, 'encoder.token_embedding.weight');
    // small enough to run now, on the calling thread: the values themselves
    const out = model.encode(b);
    expect(out).toBeInstanceOf(Float32Array);
    expect((out as Float32Array).length).toBe(3 * 10 * 16);
    expect((out as Float32Array).every(Number.isFinite)).toBe(true);
    expect(param(model, 'encoder.token_embedding.weight')).toEqual(before);
    // dropout is off when encoding: the same input gives the same output
    expect(await encoded(model, b)).toEqual(out);
    // a large encode is a promise, off the calling thread, computing the same
    const large = batch(256, 32, 2, 7); // 84 M multiply-adds
    const later = model.encode(large);
    expect(later).toBeInstanceOf(Promise);
    const values = await later;
    const rows = new Float32Array(16 * 32 * 3);
    for (let r = 0; r < 3; r++) rows.set(values.subarray(r * 32 * 16, (r + 1) * 32 * 16), r * 32 * 16);
    const first3 = { ...large, batchSize: 3, tokens: large.tokens.slice(0, 96), segments: large.segments.slice(0, 96) };
    const now = (await encoded(model, { ...first3, validLens: large.validLens.slice(0, 3) })) as Float32Array;
    expect(now.reduce((m, v, i) => Math.max(m, Math.abs(v - rows[i])), 0)).toBeLessThan(1e-5);
  });

  it('gives bit-identical models and training for one seed, different ones for another', async () => {
    const [a, b, c] = [make(tiny, 42), make(tiny, 42), make(tiny, 43)];
    for (const name of paramNames(a)) expect(param(a, name)).toEqual(param(b, name));
    expect(param(a, 'encoder.token_embedding.weight')).not.toEqual(param(c, 'encoder.token_embedding.weight'));
    const input = batch(4, 12, 2, 9);
    for (let i = 0; i < 3; i++) expect(await a.trainStep(input)).toEqual(await b.trainStep(input));
    for (const name of paramNames(a)) expect(param(a, name)).toEqual(param(b, name));
  });

  it('exposes the last gradient of every parameter and lets tests set values', async () => {
    const model = make({ ...tiny, dropout: 0 }, 5);
    expect(grad(model, 'nsp.output.weight')).toBeNull();
    await model.trainStep(batch(4, 12, 2, 1));
    for (const name of paramNames(model)) {
      const g = grad(model, name);
      expect(g, name).toBeInstanceOf(Float32Array);
      expect(g?.length).toBe(param(model, name).length);
    }
    expect(grad(model, 'encoder.token_embedding.weight')?.some((v) => v !== 0)).toBe(true);
    const values = new Float32Array(2 * 16).fill(0.5);
    diagnostics.setParam(model, 'encoder.segment_embedding.weight', values);
    expect(param(model, 'encoder.segment_embedding.weight')).toEqual(values);
  });

  it('loads a config and its weights file in one call, naming the file at fault', async () => {
    const a = make(tiny, 1);
    const { weights, hfConfig } = await a.save('tsbert');
    expect(Buffer.isBuffer(weights)).toBe(true);
    expect(hfConfig).toBeUndefined();
    const dir = mkdtempSync(join(tmpdir(), 'tsbert-native-load-'));
    try {
      const weightsPath = join(dir, 'w.safetensors');
      writeFileSync(weightsPath, weights);
      const files = { configPath: 'c.json', weightsPath, tokenizerSize: tiny.vocabSize };
      const b = await native().NativeBert.load(tiny, files, { seed: 2, devices: [{}] });
      for (const name of paramNames(a)) expect(param(b, name)).toEqual(param(a, name));
      expect(b.stepsTaken).toBe(0);
      const load = (config: object | string, bytes: Buffer) => {
        writeFileSync(weightsPath, bytes);
        return native().NativeBert.load(config, files, { seed: 0, devices: [{}] });
      };
      const rejected = async (promise: Promise<unknown>) =>
        promise.then(
          () => null,
          (e: unknown) => e as Error & { code?: string },
        );
      const at = weightsPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const cut = await rejected(load(tiny, weights.subarray(0, 100)));
      expect(cut?.code).toBe('TSBERT_CHECKPOINT');
      expect(cut?.message).toMatch(new RegExp(`^weights file '${at}': not a readable safetensors file`));
      const truncated = await rejected(load(tiny, weights.subarray(0, weights.length - 1)));
      expect(truncated?.message).toMatch(/incomplete/);
      const wider = await rejected(load({ ...tiny, hidden: 32 }, weights));
      expect(wider?.message).toMatch(
        /'encoder\.token_embedding\.weight' has shape \[40, 16\], the config says \[40, 32\]/,
      );
      const odd = await rejected(load({ ...tiny, heads: 3 }, weights));
      expect(odd?.message).toMatch(/^'c\.json': heads: 3 does not divide hidden = 16/);
      const hf = await rejected(load('{"model_type": "gpt2"}', weights));
      expect(hf?.message).toMatch(/^'c\.json': config\.json: model_type is 'gpt2'/);
      rmSync(weightsPath);
      const gone = await rejected(native().NativeBert.load(tiny, files, { seed: 0, devices: [{}] }));
      expect(gone?.message).toMatch(new RegExp(`^weights file '${at}': the file is missing`));
      expect(() => native().NativeBert.load(tiny, files, { seed: -1, devices: [{}] })).toThrow(/^seed: /);
      const hold = 'int4' as 'q8';
      expect(() =>
        native().NativeBert.load(tiny, files, { seed: 0, devices: [{}] }, undefined, undefined, hold),
      ).toThrow(/^hold: expected 'f32', 'q8' or 'infer', got 'int4'$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
    expect(() => model.encode(bad)).toThrow(RangeError);
    expect(() => model.encode(bad)).toThrow(/^tokens\[5\]: 99 is out of range/);
    await expect(encoded(model, { ...b, batchSize: 3 })).rejects.toThrow(/^tokens: has length 16, expected 24/);
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
    await expect(encoded(model, { ...good(), batchSize: -2 })).rejects.toThrow(/^batchSize:/);
  });

  it('rejects bad sizes, options and parameter names with a RangeError naming them', () => {
    expect(() => make({ ...tiny, heads: 3 })).toThrow(RangeError);
    expect(() => make({ ...tiny, heads: 3 })).toThrow(/^heads: 3 does not divide hidden = 16/);
    expect(() => make({ ...tiny, dropout: 1 })).toThrow(/^dropout:/);
    expect(() => make({ ...tiny, vocabSize: 2 })).toThrow(/^vocabSize:/);
    expect(() => make(tiny, 1, -1)).toThrow(/^lr:/);
    expect(() => new (native().NativeBert)(tiny, { seed: 0, devices: [] })).toThrow(/^device: no device given/);
    expect(() => make(tiny, 1, 0)).toThrow(/^lr:/);
    expect(() => model.setLr(0)).toThrow(/^lr: /);
    expect(() => param(model, 'nope')).toThrow(/^name: no parameter called 'nope'/);
    expect(() => grad(model, 'nope')).toThrow(/^name: no parameter called 'nope'/);
    expect(() => diagnostics.setParam(model, 'nsp.output.bias', new Float32Array(3))).toThrow(/^values:/);
  });
});
