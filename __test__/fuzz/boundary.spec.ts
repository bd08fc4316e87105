/**
 * Property-based tests (fast-check) of the native boundary and the model folder: random and
 * corrupted batches, configs, tensors and model folders. Every call either succeeds or throws a
 * typed error naming what is wrong; a rejected call leaves the model's weights bit-identical and
 * the model usable; an input known to be invalid is never accepted (a "silent acceptance"); the
 * process never aborts (vitest would report the lost worker) and stays within a memory bound.
 *
 * A quick run by default; `npm run fuzz` sets TSBERT_FUZZ_RUNS (cases a property) and prints
 * what was tried.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { BATCH_ARRAYS } from '../../src/data/batch.js';
import {
  type Batch,
  BertModel,
  CheckpointError,
  encode,
  RESERVED_TOKENS,
  syntheticBatch,
  Tensor,
  Vocab,
} from '../../src/index.js';
import { native } from '../../src/native.js';

const RUNS = Number(process.env.TSBERT_FUZZ_RUNS ?? 25);
const MEMORY_BOUND = 4e9; // bytes of RSS the whole suite may reach
const config = { vocabSize: 40, hidden: 16, ffnHidden: 32, heads: 2, layers: 2, dropout: 0.1, maxPositions: 32 };
const vocab = Vocab.fromJSON({ tokens: [...RESERVED_TOKENS, ...Array.from({ length: 35 }, (_, i) => `w${i}`)] });

/** What each property tried, for the report. */
const tally: Record<string, { cases: number; accepted: number; rejected: number; silentAcceptances: number }> = {};
function count(property: string, outcome: 'accepted' | 'rejected', invalid: boolean) {
  tally[property] ??= { cases: 0, accepted: 0, rejected: 0, silentAcceptances: 0 };
  const t = tally[property];
  t.cases++;
  t[outcome]++;
  if (invalid && outcome === 'accepted') t.silentAcceptances++;
}

afterAll(async () => {
  const rss = process.memoryUsage().rss;
  console.log(`fuzz (TSBERT_FUZZ_RUNS=${RUNS}, peak-ish RSS ${(rss / 1e9).toFixed(2)} GB, aborts 0):`);
  for (const [property, t] of Object.entries(tally)) console.log(`  ${property}: ${JSON.stringify(t)}`);
  expect(rss).toBeLessThan(MEMORY_BOUND);
});

/** A typed error whose message names one of `fields` (optionally indexed or nested). */
function expectNamed(error: unknown, fields: readonly string[]) {
  expect(error instanceof RangeError || error instanceof TypeError, String(error)).toBe(true);
  const field = (error as Error).message
    .split(':')[0]
    .replace(/\[\d+\]/g, '')
    .split('.')[0];
  expect(fields, (error as Error).message).toContain(field);
}

const BATCH_FIELDS = ['batchSize', 'seqLen', 'numPreds', ...BATCH_ARRAYS] as const;

/** A corruption of one field of a valid batch, and whether it surely makes the batch invalid. */
const corruption = fc.oneof(
  // another valid token id: the batch stays valid and must train
  fc.record({
    kind: fc.constant('valid' as const),
    at: fc.nat(),
    value: fc.integer({ min: 0, max: config.vocabSize - 1 }),
  }),
  // a value out of its range in an id array
  fc.record({
    kind: fc.constant('value' as const),
    field: fc.constantFrom('tokens', 'segments', 'validLens', 'predPositions', 'mlmLabels', 'nspLabels'),
    at: fc.nat(),
    value: fc.oneof(fc.integer({ min: -(2 ** 31), max: -1 }), fc.integer({ min: 1000, max: 2 ** 31 - 1 })),
  }),
  // a weight that is not a finite non-negative number
  fc.record({
    kind: fc.constant('weight' as const),
    at: fc.nat(),
    value: fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -1, -1e-3),
  }),
  // an array of another length
  fc.record({
    kind: fc.constant('length' as const),
    field: fc.constantFrom(...BATCH_FIELDS.slice(3)),
    delta: fc.integer({ min: -3, max: 3 }).filter((d) => d !== 0),
  }),
  // a size that is not the batch's
  fc.record({
    kind: fc.constant('size' as const),
    field: fc.constantFrom('batchSize', 'seqLen', 'numPreds'),
    value: fc.oneof(fc.double({ noNaN: false }), fc.integer({ min: -5, max: 2 ** 33 })),
  }),
  // a value of the wrong type
  fc.record({
    kind: fc.constant('type' as const),
    field: fc.constantFrom(...BATCH_FIELDS),
    value: fc.constantFrom<unknown>(undefined, null, 'x', [1, 2], {}, new Float64Array(3), new Int8Array(3), 7n),
  }),
);

describe('fuzz: batches through the native training step', () => {
  it('trains on a corrupted batch only when it is valid, else names the field and changes nothing', async () => {
    const model = new (native().NativeBert)(config, { seed: 3, devices: [{}] });
    const weights = async () =>
      createHash('sha256')
        .update((await model.save('tsbert')).weights)
        .digest('hex');
    const good = (seed: number) => syntheticBatch(config.vocabSize, { batchSize: 3, seqLen: 10, numPreds: 2, seed });
    await fc.assert(
      fc.asyncProperty(corruption, fc.nat(1000), async (c, seed) => {
        const batch: Record<string, unknown> = { ...good(seed) };
        const original = good(seed) as unknown as Record<string, unknown>;
        let invalid = true;
        if (c.kind === 'valid') {
          const tokens = Int32Array.from(batch.tokens as Int32Array);
          tokens[c.at % tokens.length] = c.value;
          batch.tokens = tokens;
          invalid = false;
        } else if (c.kind === 'value') {
          const array = Int32Array.from(batch[c.field] as Int32Array);
          array[c.at % array.length] = c.value;
          batch[c.field] = array;
        } else if (c.kind === 'weight') {
          const array = Float32Array.from(batch.mlmWeights as Float32Array);
          array[c.at % array.length] = c.value;
          batch.mlmWeights = array;
        } else if (c.kind === 'length') {
          const array = batch[c.field] as Int32Array | Float32Array;
          const length = Math.max(0, array.length + c.delta);
          const resized = new (array.constructor as Int32ArrayConstructor)(length);
          resized.set(array.subarray(0, length));
          batch[c.field] = resized;
          invalid = length !== array.length;
        } else if (c.kind === 'size') {
          batch[c.field] = c.value;
          invalid = c.value !== original[c.field];
        } else {
          batch[c.field] = c.value;
        }
        const before = await weights();
        const outcome = await model.trainStep(batch as unknown as Batch).then(
          () => 'accepted' as const,
          (error: unknown) => {
            expectNamed(error, BATCH_FIELDS);
            return 'rejected' as const;
          },
        );
        count('batches', outcome, invalid);
        expect(outcome === 'accepted' && invalid, fc.stringify(c)).toBe(false);
        if (c.kind === 'valid') expect(outcome, fc.stringify(c)).toBe('accepted');
        if (outcome === 'rejected') expect(await weights()).toBe(before);
        await model.trainStep(good(seed)); // still usable
      }),
      { numRuns: RUNS },
    );
  });
});

const CONFIG_FIELDS = [
  'vocabSize',
  'hidden',
  'ffnHidden',
  'heads',
  'layers',
  'maxPositions',
  'dropout',
  'config',
] as const;

describe('fuzz: configs', () => {
  it('builds a model only from sizes that make one within the memory limit, else names the field', async () => {
    const size = fc.oneof(
      { arbitrary: fc.integer({ min: 1, max: 64 }), weight: 6 },
      fc.integer({ min: -3, max: 2 ** 40 }),
      fc.double({ noNaN: false }),
      fc.constantFrom<unknown>('16', null, undefined, [16], 2 ** 53, 7n),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          vocabSize: size,
          hidden: size,
          ffnHidden: size,
          heads: size,
          layers: size,
          maxPositions: size,
          dropout: fc.oneof(fc.double({ min: 0, max: 0.9 }), fc.double()),
        }),
        async (sizes) => {
          const made = (() => {
            try {
              const model = new (native().NativeBert)(sizes as typeof config, {
                seed: 0,
                devices: [{}],
                memoryLimit: 1e9,
              });
              model.dispose();
              return 'accepted' as const;
            } catch (error) {
              expectNamed(error, CONFIG_FIELDS);
              return 'rejected' as const;
            }
          })();
          const { dropout, ...rest } = sizes;
          const integral = Object.values(rest).every((v) => typeof v === 'number' && Number.isInteger(v) && v >= 1);
          const invalid =
            !integral ||
            typeof dropout !== 'number' ||
            !(dropout >= 0 && dropout < 1) ||
            (sizes.vocabSize as number) < 5;
          count('configs', made, invalid);
          expect(made === 'accepted' && invalid, fc.stringify(sizes)).toBe(false);
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: tensors', () => {
  it('computes on tensors whose shape holds their values, else names the shape or the operation', () => {
    const dims = fc.array(
      fc.oneof(fc.integer({ min: 0, max: 4 }), fc.integer({ min: -2, max: 2 ** 33 }), fc.double()),
      { maxLength: 4 },
    );
    fc.assert(
      fc.property(
        dims,
        fc.nat(40),
        fc.constantFrom('matmul', 'add', 'mul', 'softmax', 'cosineSimilarity'),
        (shape, n, op) => {
          const outcome = (() => {
            try {
              const t = Tensor.fromArray(new Float32Array(n).fill(0.5), shape);
              const other = Tensor.fromArray(new Float32Array(n).fill(0.25), shape);
              if (op === 'softmax') t.softmax();
              else t[op](other);
              return 'accepted' as const;
            } catch (error) {
              expectNamed(error, ['shape', 'data', 'matmul', 'add', 'mul', 'softmax', 'cosineSimilarity']);
              return 'rejected' as const;
            }
          })();
          const holds =
            shape.length > 0 &&
            shape.every((d) => Number.isInteger(d) && d >= 0 && d < 2 ** 32) &&
            shape.reduce((a, b) => a * b, 1) === n;
          count('tensors', outcome, !holds);
          expect(outcome === 'accepted' && !holds, fc.stringify({ shape, n, op })).toBe(false);
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: model folders', () => {
  it('loads an intact folder and refuses every corrupted one with a CheckpointError', async () => {
    const origin = await mkdtemp(join(tmpdir(), 'tsbert-fuzz-model-'));
    await BertModel.create(vocab, { config: { hidden: 16, ffnHidden: 32, maxPositions: 32 } }).save(origin);
    const files = Object.fromEntries(
      await Promise.all((await readdir(origin)).map(async (f) => [f, await readFile(join(origin, f))])),
    );
    const weightsFile = Object.keys(files).find((f) => f.endsWith('.safetensors')) as string;
    const vocabFile = Object.keys(files).find((f) => f.startsWith('vocab-')) as string;
    const mutation = fc.oneof(
      fc.record({
        kind: fc.constant('truncate' as const),
        file: fc.constantFrom(weightsFile, vocabFile, 'config.json'),
        at: fc.nat(),
      }),
      fc.record({
        kind: fc.constant('flip' as const),
        file: fc.constantFrom(weightsFile, vocabFile),
        at: fc.nat(),
        bit: fc.nat(7),
      }),
      fc.record({ kind: fc.constant('delete' as const), file: fc.constantFrom(weightsFile, vocabFile, 'config.json') }),
      fc.record({ kind: fc.constant('swap' as const) }),
      fc.record({
        kind: fc.constant('size' as const),
        field: fc.constantFrom('vocabSize', 'hidden', 'ffnHidden', 'heads', 'layers', 'maxPositions', 'dropout'),
        value: fc.oneof(
          fc.integer({ min: -1, max: 2 ** 40 }),
          fc.double(),
          fc.constantFrom<unknown>('x', null, [], 1e9),
        ),
      }),
      fc.record({ kind: fc.constant('none' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const dir = await mkdtemp(join(tmpdir(), 'tsbert-fuzz-folder-'));
        const copy = { ...files } as Record<string, Buffer>;
        const manifest = JSON.parse(copy['config.json'].toString('utf8'));
        let invalid = m.kind !== 'none';
        if (m.kind === 'truncate') {
          const whole = copy[m.file];
          copy[m.file] = whole.subarray(0, m.at % whole.length);
          invalid = copy[m.file].toString('latin1').trim() !== whole.toString('latin1').trim(); // a trailing newline is nothing
        }
        if (m.kind === 'flip') {
          const bytes = Buffer.from(copy[m.file]);
          bytes[m.at % bytes.length] ^= 1 << m.bit;
          copy[m.file] = bytes;
        }
        if (m.kind === 'delete') delete copy[m.file];
        if (m.kind === 'swap')
          copy['config.json'] = Buffer.from(
            JSON.stringify({ ...manifest, weights: manifest.vocab, vocab: manifest.weights }),
          );
        if (m.kind === 'size') {
          copy['config.json'] = Buffer.from(
            JSON.stringify({ ...manifest, config: { ...manifest.config, [m.field]: m.value } }),
          );
          const v = m.value;
          // another dropout, or another number of heads that divides hidden, is a consistent model
          const consistent =
            (m.field === 'dropout' && typeof v === 'number' && v >= 0 && v < 1) ||
            (m.field === 'heads' &&
              typeof v === 'number' &&
              Number.isInteger(v) &&
              v >= 1 &&
              manifest.config.hidden % v === 0);
          invalid = v !== manifest.config[m.field] && !consistent;
        }
        await Promise.all(Object.entries(copy).map(([f, b]) => writeFile(join(dir, f), b)));
        const outcome = await loadOutcome(dir);
        // loaded in q8 (the weights quantised as they are read): the same verdict
        expect(await loadOutcome(dir, 'q8'), fc.stringify(m)).toBe(outcome);
        await rm(dir, { recursive: true, force: true });
        count('model folders', outcome, invalid);
        expect(outcome === 'accepted' && invalid, fc.stringify(m)).toBe(false);
        if (m.kind === 'none') expect(outcome).toBe('accepted');
      }),
      { numRuns: RUNS },
    );
  });

  it('loads a corrupted Hugging Face folder (no checksums) in f32 and q8 alike, or refuses it with a CheckpointError', async () => {
    const origin = await mkdtemp(join(tmpdir(), 'tsbert-fuzz-hf-'));
    const config = { hidden: 16, ffnHidden: 32, maxPositions: 32, embeddingNorm: true };
    await BertModel.create(vocab, { config }).save(origin, { format: 'huggingface' });
    const files = Object.fromEntries(
      await Promise.all((await readdir(origin)).map(async (f) => [f, await readFile(join(origin, f))])),
    );
    await rm(origin, { recursive: true, force: true });
    const header = 8 + Number(files['model.safetensors'].readBigUInt64LE(0));
    const mutation = fc.oneof(
      fc.record({
        kind: fc.constant('truncate' as const),
        file: fc.constantFrom(...Object.keys(files)),
        at: fc.nat(),
      }),
      // most flips land in the safetensors header (names, dtypes, shapes, offsets): the
      // values' bits change numbers, which no checksum here can tell from trained ones
      fc.record({
        kind: fc.constant('flip' as const),
        file: fc.constantFrom('model.safetensors', 'config.json'),
        at: fc.nat({ max: header - 1 }),
        bit: fc.nat(7),
      }),
      fc.record({ kind: fc.constant('delete' as const), file: fc.constantFrom(...Object.keys(files)) }),
      fc.record({ kind: fc.constant('none' as const) }),
    );
    const text = 'w1 w2 w3 w17';
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const dir = await mkdtemp(join(tmpdir(), 'tsbert-fuzz-hf-folder-'));
        const copy = { ...files } as Record<string, Buffer>;
        if (m.kind === 'truncate') copy[m.file] = copy[m.file].subarray(0, m.at % copy[m.file].length);
        if (m.kind === 'flip') {
          const bytes = Buffer.from(copy[m.file]);
          bytes[m.at % bytes.length] ^= 1 << m.bit;
          copy[m.file] = bytes;
        }
        if (m.kind === 'delete') delete copy[m.file];
        await Promise.all(Object.entries(copy).map(([f, b]) => writeFile(join(dir, f), b)));
        const states: Record<string, Float32Array> = {};
        const outcome = await loadOutcome(dir, 'f32', async (model) => {
          states.f32 = (await encode(model, text)).data;
        });
        expect(
          await loadOutcome(dir, 'q8', async (model) => {
            states.q8 = (await encode(model, text)).data;
          }),
          fc.stringify(m),
        ).toBe(outcome);
        await rm(dir, { recursive: true, force: true });
        count('Hugging Face folders', outcome, false);
        if (m.kind === 'none') expect(outcome).toBe('accepted');
        if (outcome === 'accepted') {
          // an accepted model encodes, in q8 near its f32 states
          const [a, b] = [states.f32, states.q8];
          expect(a.length).toBe(b.length);
          let [dot, na, nb] = [0, 0, 0];
          for (let i = 0; i < a.length; i++) [dot, na, nb] = [dot + a[i] * b[i], na + a[i] * a[i], nb + b[i] * b[i]];
          expect(dot / Math.sqrt(na * nb), fc.stringify(m)).toBeGreaterThan(0.99);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

/**
 * Loads the folder `dir` in `dtype` and runs `use` on the model: 'accepted', or 'rejected' when
 * the load throws, which must be a {@link CheckpointError}.
 */
async function loadOutcome(
  dir: string,
  dtype: 'f32' | 'q8' = 'f32',
  use?: (model: BertModel) => Promise<void>,
): Promise<'accepted' | 'rejected'> {
  let model: BertModel;
  try {
    model = await BertModel.load(dir, { dtype });
  } catch (error) {
    expect(error, String(error)).toBeInstanceOf(CheckpointError);
    return 'rejected';
  }
  try {
    await use?.(model);
  } finally {
    model.dispose();
  }
  return 'accepted';
}
