/** {@link BertModel} as the public API offers it: creation, a training step, evaluation. */
import { describe, expect, it } from 'vitest';

import {
  type BertConfig,
  BertModel,
  RESERVED_TOKENS,
  syntheticBatch,
  TEXTBOOK_SIZES,
  Tensor,
  Vocab,
} from '../../src/index.js';
import { native } from '../../src/native.js';

const vocab = Vocab.fromJSON({ tokens: [...RESERVED_TOKENS, ...Array.from({ length: 35 }, (_, i) => `w${i}`)] });
const sizes = { hidden: 16, ffnHidden: 32, heads: 2, layers: 2, maxPositions: 32 };

describe('BertModel', () => {
  it('fills in the textbook sizes and takes the vocabulary size from the vocabulary', () => {
    const model = BertModel.create(vocab, { device: 'cpu' });
    expect(model.config).toEqual({ ...TEXTBOOK_SIZES, vocabSize: 40 });
    expect(model.device).toBe('cpu');
    expect(model.paramCount).toBeGreaterThan(40 * TEXTBOOK_SIZES.hidden);
    expect(BertModel.create(vocab, { config: { hidden: 32 } }).config.hidden).toBe(32);
  });

  it('trains and evaluates batches, returning tensors of the documented shapes', async () => {
    const model = BertModel.create(vocab, { config: { ...sizes, dropout: 0 }, seed: 2 });
    const batch = syntheticBatch(vocab.size, { batchSize: 3, seqLen: 10, numPreds: 2, seed: 1 });
    const before = await model.forward(batch);
    expect(before.encoded).toBeInstanceOf(Tensor);
    expect(before.encoded.shape).toEqual([3, 10, 16]);
    expect(before.mlmLogits.shape).toEqual([3, 2, 40]);
    expect(before.nspLogits.shape).toEqual([3, 2]);
    const step = await model.trainStep(batch);
    expect(step.mlmLoss).toBeCloseTo(before.mlmLoss, 5); // the step's losses come before its update
    const after = await model.forward(batch);
    expect(after.mlmLoss + after.nspLoss).toBeLessThan(before.mlmLoss + before.nspLoss);
  });

  it('has one config shape on each side of the boundary, field for field', () => {
    // every field the TypeScript type declares (tsc checks that none is left out) ...
    const every: Required<BertConfig> = {
      vocabSize: 40,
      hidden: 16,
      ffnHidden: 32,
      heads: 2,
      layers: 2,
      dropout: 0.1,
      maxPositions: 32,
      attentionDropout: 0.2,
      activation: 'gelu_tanh',
      embeddingNorm: true,
      layerNormEps: 1e-12,
      typeVocabSize: 3,
      tieWordEmbeddings: true,
      mlmHead: true,
      nspHead: true,
      pooler: true,
      classifierDropout: 0.3,
      task: { kind: 'single_label_classification', numLabels: 3 },
    };
    // ... is one the core reads (it refuses a field it does not know), and the core's config
    // has no field more
    const model = new (native().NativeBert)(every, { seed: 0, devices: [{}] });
    expect(model.config).toEqual(every);
    expect(() => new (native().NativeBert)({ ...every, width: 3 }, { seed: 0, devices: [{}] })).toThrow(
      /unknown field `width`/,
    );
  });

  it('names a bad task head', () => {
    const task = (t: unknown) => () => BertModel.create(vocab, { config: { ...sizes, task: t as never } });
    expect(task({ kind: 'ranking', numLabels: 2 })).toThrow(/^task\.kind: unknown variant `ranking`/);
    expect(task({ kind: 'regression', numLabels: 0 })).toThrow(/^task\.numLabels: must be in \[1, 65536\], got 0/);
    expect(task({ kind: 'regression', numLabels: [1] })).toThrow(
      /^task\.numLabels: expected a number, a boolean or a string/,
    );
    expect(task({ kind: 'token_classification', numLabels: 3, extra: 1 })).toThrow(
      /^task\.extra: unknown field `extra`/,
    );
    expect(task({ kind: 'regression', numLabels: 1 })().config.task).toEqual({ kind: 'regression', numLabels: 1 });
  });

  it('names a bad size, seed or device', () => {
    expect(() => BertModel.create(vocab, { config: { hidden: 2.5 } })).toThrow(
      /^hidden: invalid type: floating point `2\.5`, expected a non-negative integer/,
    );
    expect(() => BertModel.create(vocab, { config: { ...sizes, heads: 3 } })).toThrow(
      /^heads: 3 does not divide hidden = 16/,
    );
    expect(() => BertModel.create(vocab, { seed: 1.5 })).toThrow(/^seed: expected an integer in \[0, 2\^32\)/);
    expect(() => BertModel.create(vocab, { seed: 2 ** 32 })).toThrow(/^seed:/);
    expect(() => BertModel.create(vocab, { lr: 0 })).toThrow(/^lr:/);
    expect(() => BertModel.create(vocab, { device: 'tpu' as never })).toThrow(/^device: unknown device 'tpu'/);
  });
});
