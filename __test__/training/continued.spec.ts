import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { BertModel, PretrainingDataset, pretrain, Tokenizer } from '../../src/index.js';
import { paragraphs, TINY } from '../api/corpus.js';

const FIXTURES = join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures/hf');
const data = paragraphs(300);

describe('continued pretraining', () => {
  it("splits words into a tokenizer's sub-words, framed by its own special tokens", async () => {
    const tokenizer = await Tokenizer.fromFile(join(FIXTURES, 'model/tokenizer.json'));
    const subwords = tokenizer.subwords();
    const id = (t: string) => tokenizer.tokenToId(t);
    expect(subwords.ids).toMatchObject({ cls: id('[CLS]'), sep: id('[SEP]'), pad: id('[PAD]'), mask: id('[MASK]') });
    expect(subwords.ids.size).toBe(tokenizer.vocabSize);
    const specials = [id('[CLS]'), id('[SEP]'), id('[PAD]'), id('[MASK]'), id('[UNK]')] as number[];
    expect(subwords.ids.firstWord).toBe(Math.max(...specials) + 1);
    const words = ['the', 'crane', 'driver'];
    const { ids, starts } = subwords.split(words);
    expect(Array.from(starts)).toHaveLength(4);
    expect(Array.from(ids)).toEqual(Array.from(tokenizer.encode(words.join(' ')).ids.slice(1, -1)));
    // the examples hold those ids: segment a of each row is a sentence of the corpus as the tokenizer splits it
    const ds = await PretrainingDataset.fromSource(data, { subwords, maxLen: 32 });
    expect(ds.vocab).toBeUndefined();
    const [batch] = ds.batches({ batchSize: 4 });
    const row = Array.from(batch.tokens.subarray(0, 32));
    expect(row[0]).toBe(subwords.ids.cls);
    expect(row.filter((t) => t === subwords.ids.sep)).toHaveLength(2);
    expect(row.slice(batch.validLens[0])).toEqual(Array(32 - batch.validLens[0]).fill(subwords.ids.pad));
  });

  it('continues a Hugging Face BertForPreTraining with its tokenizer, and refuses a bare encoder', async () => {
    const out = await mkdtemp(join(tmpdir(), 'tsbert-continue-hf-'));
    const { model, history, vocab } = await pretrain({
      from: join(FIXTURES, 'model'),
      data,
      steps: 3,
      batchSize: 8,
      maxLen: 32,
      valid: false,
      out,
    });
    expect(vocab).toBeUndefined();
    expect(model.config).toMatchObject({ vocabSize: 220, hidden: 32, activation: 'gelu', embeddingNorm: true });
    expect(history.every((r) => Number.isFinite(r.mlmLoss) && Number.isFinite(r.nspLoss))).toBe(true);
    const saved = await BertModel.load(out);
    expect(saved.tokenizer.toJSON()).toBe(model.tokenizer.toJSON());
    await expect(pretrain({ from: join(FIXTURES, 'bare'), data, steps: 1, maxLen: 32 })).rejects.toThrow(
      /^from: '.*bare' has no MLM head \(a bare encoder\)/,
    );
    await expect(pretrain({ from: join(FIXTURES, 'model'), data, steps: 1, maxLen: 64 })).rejects.toThrow(
      /^maxLen: 64 is over the 32 positions of the model/,
    );
  });

  it("goes on from a tsbert model's weights, with its vocabulary and a fresh optimizer", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-continue-'));
    const first = await pretrain({ data, steps: 30, seed: 1, ...TINY, valid: false, out: join(dir, 'first') });
    const fresh = await pretrain({ data, steps: 1, seed: 1, ...TINY, valid: false });
    const { model, history } = await pretrain({
      from: join(dir, 'first'),
      data,
      steps: 1,
      seed: 1,
      ...TINY,
      valid: false,
    });
    expect(model.vocab?.toJSON()).toEqual(first.model.vocab?.toJSON());
    expect(model.stepsTaken).toBe(1); // a fresh optimizer
    expect(history[0].mlmLoss).toBeLessThan(0.9 * fresh.history[0].mlmLoss); // it starts where the first run ended
  });
});
