/**
 * What a hostile new user found (issue "never lose work, never die"), one test a finding: each
 * failed before its fix.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

import {
  BertModel,
  CheckpointError,
  Corpus,
  encode,
  encodeBatch,
  MAX_PARAGRAPH_CHARS,
  PretrainingDataset,
  pretrain,
  RESERVED_TOKENS,
  syntheticBatch,
  Tensor,
  TrainingDivergedError,
  Vocab,
} from '../../src/index.js';
import { native } from '../../src/native.js';
import { paragraphs, TINY } from './corpus.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '../..');
const vocab = Vocab.fromJSON({ tokens: [...RESERVED_TOKENS, ...Array.from({ length: 35 }, (_, i) => `w${i}`)] });
const small = { hidden: 16, ffnHidden: 32, heads: 2, layers: 2, maxPositions: 32 };

describe('1. a diverged run', () => {
  it('stops with a TrainingDivergedError naming the step, carrying the history, applying nothing', async () => {
    const data = paragraphs(200);
    const error = await pretrain({ data, steps: 30, seed: 1, ...TINY, lr: 1e30 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrainingDivergedError);
    const e = error as TrainingDivergedError;
    expect(e.message).toMatch(
      /^training diverged at step \d+: the (MLM|NSP) loss is (NaN|-?Infinity); the weights were not updated; lower the learning rate \(it is 1e\+30\)/,
    );
    expect(e.history).toHaveLength(e.step - 1);
    expect(e.history.every((r) => Number.isFinite(r.mlmLoss))).toBe(true);
  });

  it('leaves the model at its last good weights, which still save and load', async () => {
    const model = BertModel.create(vocab, { config: small, lr: 1e30, seed: 1 });
    const batch = syntheticBatch(vocab.size, { batchSize: 4, seqLen: 12, numPreds: 2, seed: 1 });
    let failed: TrainingDivergedError | undefined;
    for (let i = 0; i < 30 && !failed; i++) {
      await model.trainStep(batch).catch((e: unknown) => {
        if (!(e instanceof TrainingDivergedError)) throw e;
        failed = e;
      });
    }
    expect(failed?.step).toBeGreaterThan(0);
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-diverged-'));
    // the weights may be huge but are finite: the failed step was not applied
    await model.save(dir);
    expect((await BertModel.load(dir)).config).toEqual(model.config);
  });
});

describe('2. sizes are checked before anything is allocated', () => {
  it('refuses out-of-range sizes and models or batches that do not fit in memory, giving the estimate', async () => {
    expect(() => BertModel.create(vocab, { config: { ...small, maxPositions: 1e9 } })).toThrow(
      /^maxPositions: 1000000000 is over the limit of 1048576/,
    );
    expect(() =>
      BertModel.create(vocab, { config: { ...small, hidden: 2 ** 16, heads: 1 }, memoryLimit: 1e9 }),
    ).toThrow(
      /^config: a model of \d+ parameters, with its gradients and Adam state, needs about [\d.]+ GB, more than the 1.00 GB allowed/,
    );
    const model = BertModel.create(vocab, { config: { ...small, maxPositions: 4096 }, memoryLimit: 2e8 });
    const long = syntheticBatch(vocab.size, { batchSize: 64, seqLen: 4096, numPreds: 2, seed: 1 });
    await expect(model.trainStep(long)).rejects.toThrow(/^batch: a training pass over 64 × 4096 tokens needs about/);
    // before reading any data: the path below does not exist, and that is not what is reported
    await expect(pretrain({ data: '/no/such/corpus', maxLen: 100_000 })).rejects.toThrow(
      /^batchSize, maxLen: a training pass over 512 × 100000 tokens needs about [\d.]+ GB/,
    );
  });

  it('refuses a model folder with hostile sizes as a CheckpointError, without allocating them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-hostile-'));
    await BertModel.create(vocab, { config: small }).save(dir);
    const manifest = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    const cases = [
      ['maxPositions', 1e9, /config\.json': maxPositions: 1000000000 is over the limit/],
      ['hidden', 2.5, /config\.json': hidden: invalid type: floating point `2\.5`, expected a non-negative integer/],
      ['layers', -1, /config\.json': layers: invalid value: integer `-1`, expected a non-negative integer/],
      // in range, but not what the weights hold: refused before the 1 GB table is made
      [
        'maxPositions',
        5e5,
        /weights file '.*': 'encoder\.pos_embedding' has shape \[32, 16\], the config says \[500000, 16\]/,
      ],
      ['layers', 4000, /weights file '.*': parameter 'encoder\.blks\.2\.attention\.W_q\.weight' is missing/],
    ] as const;
    for (const [field, value, message] of cases) {
      await writeFile(
        join(dir, 'config.json'),
        JSON.stringify({ ...manifest, config: { ...manifest.config, [field]: value } }),
      );
      const before = process.memoryUsage().rss;
      const error = await BertModel.load(dir).catch((e: unknown) => e);
      expect(error, `${field} ${value}`).toBeInstanceOf(CheckpointError);
      expect((error as Error).message).toMatch(message);
      expect(process.memoryUsage().rss - before).toBeLessThan(200e6);
    }
  });
});

describe('4. pathological corpora', () => {
  it('names a line too long to be a paragraph, and a corpus that gives no vocabulary', () => {
    const long = ` ${'word . '.repeat(MAX_PARAGRAPH_CHARS / 7 + 1)}`;
    expect(() => PretrainingDataset.fromCorpus(Corpus.fromLines(['a b . c d . ', long]))).toThrow(
      /^data: the given lines: line 2 is \d+ characters long, over the 1048576 a line may have \(WikiText has a paragraph a line\)/,
    );
    expect(() => PretrainingDataset.fromCorpus(Corpus.fromLines([' a b . c d . ']))).toThrow(
      /^data: no word occurs at least 5 times \(minFreq\) in the 1 paragraph\(s\)/,
    );
  });
});

describe('5. native memory', () => {
  it('stays flat over tensor operations in a loop that never yields', async () => {
    const script = `
      const { Tensor } = await import(${JSON.stringify(join(root, 'src/tensor.ts'))});
      const a = Tensor.fromArray(new Float32Array(64 * 64).fill(0.5), [64, 64]);
      const rss = () => { globalThis.gc(); return process.memoryUsage().rss; };
      for (let i = 0; i < 2000; i++) a.matmul(a).softmax().toArray();
      const before = rss();
      for (let i = 0; i < 20000; i++) a.matmul(a).softmax().toArray();
      console.log(JSON.stringify({ grew: rss() - before }));`;
    const { stdout } = await run(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: root,
      },
    );
    expect(JSON.parse(stdout).grew).toBeLessThan(64e6);
  });

  it('frees a model at once with dispose (or using), after which calls fail clearly', async () => {
    const model = BertModel.create(vocab, { config: small });
    const batch = syntheticBatch(vocab.size, { batchSize: 2, seqLen: 8, numPreds: 2, seed: 1 });
    await model.trainStep(batch);
    model.dispose();
    model.dispose(); // twice does nothing
    await expect(model.trainStep(batch)).rejects.toThrow(/this model was disposed/);
    const scoped = BertModel.create(vocab, { config: small }); // what `using scoped = …` calls at the end of its block
    scoped[Symbol.dispose]();
    expect(() => scoped.paramCount).toThrow(/this model was disposed/);
  });
});

describe('6. numbers crossing into the addon', () => {
  it('are checked as integers in range, never wrapped or truncated', () => {
    expect(() => Tensor.fromArray(new Float32Array(6), [2 ** 32 + 2, 3])).toThrow(/^shape: /);
    expect(() => Tensor.fromArray(new Float32Array(0), [2 ** 31, 2 ** 31, 4])).toThrow(/^shape: /);
    expect(() => Tensor.fromArray(new Float32Array(3), [1.5, 2])).toThrow(/^shape: /);
    expect(() => Tensor.fromArray(new Float32Array(3), [-1, 3])).toThrow(/^shape: /);
    expect(() => Tensor.fromArray(new Float32Array(0), [0]).softmax()).toThrow(/^softmax: shape \[0\] holds no value/);
    const n = native();
    expect(() => n.tensorSoftmax({ data: new Float32Array(6), shape: [2 ** 32 + 2, 3] })).toThrow(/^a\.shape\[0\]: /);
    expect(() =>
      n.tensorMatmul({ data: new Float32Array(2), shape: [1.5, 2] }, { data: new Float32Array(2), shape: [2, 1] }),
    ).toThrow(/^a\.shape\[0\]: 1\.5 is not a non-negative integer/);
    const config = { vocabSize: 40, ...small, dropout: 0.1 };
    const make = (c: object, o: object) => new n.NativeBert(c as typeof config, { seed: 0, devices: [{}], ...o });
    expect(() => make({ ...config, hidden: 2.5 }, {})).toThrow(
      /^hidden: invalid type: floating point `2\.5`, expected a non-negative integer/,
    );
    expect(() => make({ ...config, layers: -1 }, {})).toThrow(
      /^layers: invalid value: integer `-1`, expected a non-negative integer/,
    );
    expect(() => make({ ...config, hidden: '16' }, {})).toThrow(TypeError);
    expect(() => make(config, { seed: 2 ** 32 })).toThrow(/^seed: 4294967296 is over the limit/);
    expect(() => make(config, { seed: -1 })).toThrow(/^seed: /);
    expect(() => make(config, { devices: [{ cuda: 1.5 }] })).toThrow(
      /^devices\[0\]\.cuda: 1\.5 is not a non-negative integer/,
    );
    expect(() => make(config, { memoryLimit: -5 })).toThrow(/^memoryLimit: /);
  });
});

describe('7. smaller findings', () => {
  it('names the bad item of encodeBatch and shows unknown words as the model saw them', async () => {
    const model = BertModel.create(vocab, { config: small });
    await expect(encodeBatch(model, [null as never])).rejects.toThrow(/^inputs\[0\]: expected \[a\] or \[a, b\]/);
    await expect(encodeBatch(model, [[['w1']], [['w2'], [3 as never]]])).rejects.toThrow(
      /^inputs\[1\]\[1\]: expected a string or an array of strings/,
    );
    expect((await encode(model, ['w1', 'zebra'])).tokens).toEqual(['<cls>', 'w1', '<unk>', '<sep>']);
  });

  it('removes the temporary files a killed save left', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-stale-'));
    const stale = '.weights-0123456789abcdef.safetensors.999999999.0123456789ab.tmp';
    await writeFile(join(dir, stale), 'half a file');
    await BertModel.create(vocab, { config: small }).save(dir);
    expect(await readdir(dir)).not.toContain(stale);
  });
});
