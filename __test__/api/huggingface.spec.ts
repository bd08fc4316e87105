/**
 * Hugging Face models and tokenizers in and out, against what transformers and tokenizers
 * themselves wrote (crates/tsbert-core/tests/fixtures/hf, made by
 * bench/reference/make_hf_fixtures.py).
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import {
  BertModel,
  CheckpointError,
  embed,
  encode,
  fillMask,
  RESERVED_TOKENS,
  type Sequences,
  syntheticBatch,
  Tokenizer,
  Vocab,
} from '../../src/index.js';
import { safetensors } from './safetensors.js';

const FIXTURES = join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures/hf');
const expected = JSON.parse(await readFile(join(FIXTURES, 'expected.json'), 'utf8'));

const rel = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let [d, m] = [0, 0];
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
};

/** The MLM logits of the first `n` tokens of one sequence (dropout off). */
async function logitsAt(model: BertModel, sequence: Sequences, n: number): Promise<Float32Array> {
  const out = await model.forward({
    ...sequence,
    numPreds: n,
    predPositions: Int32Array.from({ length: n }, (_, i) => i),
    mlmWeights: new Float32Array(n).fill(1),
    mlmLabels: sequence.tokens.slice(0, n),
    nspLabels: new Int32Array(1),
  });
  return out.mlmLogits.data;
}

/** The MLM logits of every token of `text` (dropout off). */
async function mlmLogitsOf(model: BertModel, text: string): Promise<Float32Array> {
  const [t] = model.tokenizer.encodeBatch([[text]]);
  return logitsAt(model, model.tokenizer.pad([t]), t.ids.length);
}

/** The fixture batch as sequences. */
function fixtureSequences(): Sequences {
  const b = expected.batch;
  const rows = b.inputIds.length;
  const l = b.inputIds[0].length;
  return {
    batchSize: rows,
    seqLen: l,
    tokens: Int32Array.from(b.inputIds.flat()),
    segments: Int32Array.from(b.tokenTypeIds.flat()),
    validLens: Int32Array.from(b.attentionMask.map((r: number[]) => r.reduce((s, x) => s + x, 0))),
  };
}

describe('Hugging Face tokenizers', () => {
  it("give tokenizers' ids, tokens and offsets from tokenizer.json and from vocab.txt", async () => {
    const tokenizers = [
      await Tokenizer.fromFile(join(FIXTURES, 'model/tokenizer.json')),
      await Tokenizer.fromFile(join(FIXTURES, 'model/vocab.txt')),
    ];
    for (const tokenizer of tokenizers) {
      expect(tokenizer.vocabSize).toBe(220);
      expect(tokenizer.maskToken).toBe('[MASK]');
      for (const c of expected.tokenized) {
        const t = tokenizer.encode(c.text[0], c.text[1], { maxLength: expected.maxLength });
        expect(Array.from(t.ids), c.text[0]).toEqual(c.ids);
        expect(Array.from(t.typeIds)).toEqual(c.typeIds);
        expect(t.tokens).toEqual(c.tokens);
        // Python counts code points, JavaScript UTF-16 units
        const units = (text: string, cp: number) => Array.from(text).slice(0, cp).join('').length;
        expect(t.offsets).toEqual(
          c.offsets.map(([s, e]: [number, number], k: number) => {
            const text = c.text[t.typeIds[k]] ?? '';
            return [units(text, s), units(text, e)];
          }),
        );
      }
    }
    const padded = tokenizers[0].encodeBatch([['a crane'], ['the crane is flying over the river']], { padding: true });
    expect(padded[0].ids.length).toBe(padded[1].ids.length);
    expect(Array.from(padded[0].attentionMask).filter((m) => m === 0).length).toBe(padded[1].ids.length - 4);
    expect(padded[0].tokens.at(-1)).toBe('[PAD]');
    expect(tokenizers[0].encode('').tokens).toEqual(['[CLS]', '[SEP]']);
    const [long] = expected.tokenized.filter((c: { ids: number[] }) => c.ids.length === expected.maxLength);
    expect(() => tokenizers[0].encode(long.text[0], undefined, { maxLength: 32, truncate: false })).toThrow(
      /^inputs\[0\]: \d+ tokens with the special tokens, but at most 32 fit/,
    );
  });
});

describe('Hugging Face models', () => {
  it('load with their tokenizer and compute what transformers computes', async () => {
    const model = await BertModel.load(join(FIXTURES, 'model'));
    expect(model.config).toMatchObject({
      activation: 'gelu',
      embeddingNorm: true,
      tieWordEmbeddings: true,
      layerNormEps: 1e-12,
    });
    expect(model.vocab).toBeUndefined();
    const want = await safetensors(join(FIXTURES, 'expected.safetensors'));
    const hidden = await model.encodeSequences(fixtureSequences());
    expect(rel(hidden.data, want.get('hidden')?.data as Float32Array)).toBeLessThan(1e-5);
    const text = await encode(model, expected.tokenized[0].text[0]);
    expect(text.tokens).toEqual(expected.tokenized[0].tokens);
  });

  it('embed texts with mean pooling, in the order given, normalised when asked', async () => {
    const model = await BertModel.load(join(FIXTURES, 'bare'));
    const texts = ['the crane is flying', 'a dog', 'the big dog sat on the mat and slept', 'tokyo'];
    const vectors = await embed(model, texts, { batchSize: 2 });
    expect(vectors.shape).toEqual([4, 32]);
    for (const [i, t] of texts.entries()) {
      const e = await encode(model, t);
      const mean = new Float32Array(32);
      for (let k = 0; k < e.tokens.length; k++)
        for (let j = 0; j < 32; j++) mean[j] += e.data[k * 32 + j] / e.tokens.length;
      expect(rel(vectors.data.subarray(i * 32, (i + 1) * 32), mean)).toBeLessThan(1e-5);
    }
    const unit = await embed(model, texts, { normalize: true, pooling: 'cls' });
    for (let i = 0; i < 4; i++) {
      const norm = Math.hypot(...unit.data.subarray(i * 32, (i + 1) * 32));
      expect(norm).toBeCloseTo(1, 5);
    }
    await expect(embed(model, [])).rejects.toThrow(/^texts: expected at least one text/);
    await expect(embed(model, ['a', 3 as never])).rejects.toThrow(/^texts\[1\]: expected a string/);
    await expect(fillMask(model, 'the [MASK] is flying')).rejects.toThrow(/^model: has no MLM head/);
  });

  it('fill masks with probabilities, most probable first', async () => {
    const model = await BertModel.load(join(FIXTURES, 'model'));
    const [fill] = await fillMask(model, 'the crane is [MASK] over the river', { topK: 3 });
    expect(fill.position).toBe(4);
    expect(fill.predictions).toHaveLength(3);
    const p = fill.predictions.map((x) => x.probability);
    expect(p[0]).toBeGreaterThanOrEqual(p[1]);
    expect(p.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(1 + 1e-6);
    await expect(fillMask(model, 'no mask here')).rejects.toThrow(
      /^text: has no mask token \(\[MASK\], this model's\) to fill/,
    );
    // the textbook spelling is taken for the model's own
    const [other] = await fillMask(model, 'the crane is <mask> over the river', { topK: 3 });
    expect(other).toEqual(fill);
  });

  it('load task models (sequence and token classification) with their heads, and export them as transformers names them', async () => {
    const TASKS = join(FIXTURES, '../hf-task');
    for (const [name, kind, numLabels, architecture] of [
      ['single', 'single_label_classification', 3, 'BertForSequenceClassification'],
      ['multi', 'multi_label_classification', 4, 'BertForSequenceClassification'],
      ['regression', 'regression', 1, 'BertForSequenceClassification'],
      ['token', 'token_classification', 5, 'BertForTokenClassification'],
    ] as const) {
      const model = await BertModel.load(join(TASKS, name));
      expect(model.config.task, name).toEqual({ kind, numLabels });
      expect(model.config).toMatchObject({ mlmHead: false, nspHead: false, pooler: name !== 'token' });
      const dir = await mkdtemp(join(tmpdir(), `tsbert-hf-task-${name}-`));
      await model.save(dir, { format: 'huggingface' });
      const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
      expect(config.architectures, name).toEqual([architecture]);
      expect(config.num_labels, name).toBe(numLabels);
      // transformers gives pairs their segment ids only when the tokenizer says it takes them
      const tokenizerConfig = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8'));
      expect(tokenizerConfig.model_input_names).toEqual(['input_ids', 'token_type_ids', 'attention_mask']);
      if (name !== 'token') expect(config.problem_type, name).toBe(kind);
      const [theirs, ours] = [
        await safetensors(join(TASKS, name, 'model.safetensors')),
        await safetensors(join(dir, 'model.safetensors')),
      ];
      expect([...ours.keys()].sort(), name).toEqual(
        [...theirs.keys()].filter((k) => !k.endsWith('position_ids')).sort(),
      );
      expect(Array.from(ours.get('classifier.bias')?.data ?? [])).toEqual(
        Array.from(theirs.get('classifier.bias')?.data ?? [0]),
      );
      expect((await BertModel.load(dir)).config.task).toEqual({ kind, numLabels });
      // the label names travel: id2label and label2id in the export, the manifest in tsbert's format
      const labels =
        name === 'single'
          ? ['negative', 'neutral', 'positive']
          : name === 'token'
            ? ['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC']
            : Array.from({ length: numLabels }, (_, i) => `LABEL_${i}`);
      expect(model.labels, name).toEqual(labels);
      expect(config.id2label, name).toEqual(Object.fromEntries(labels.map((l, i) => [String(i), l])));
      expect(config.label2id, name).toEqual(Object.fromEntries(labels.map((l, i) => [l, i])));
      const own = await mkdtemp(join(tmpdir(), `tsbert-task-${name}-`));
      await model.save(own);
      expect((await BertModel.load(own)).labels, name).toEqual(labels);
    }
    const broken = await mkdtemp(join(tmpdir(), 'tsbert-hf-task-broken-'));
    await cp(join(TASKS, 'single'), broken, { recursive: true });
    const json = JSON.parse(await readFile(join(broken, 'config.json'), 'utf8'));
    await writeFile(join(broken, 'config.json'), JSON.stringify({ ...json, id2label: { 0: 'a', 2: 'c', 3: 'd' } }));
    await expect(BertModel.load(broken)).rejects.toThrow(
      /config\.json': id2label must map the ids 0 … n-1 to label names/,
    );
  });

  it("keep a bare encoder's pooler (no NSP head): the export holds it unchanged", async () => {
    const model = await BertModel.load(join(FIXTURES, 'bare'));
    expect(model.config).toMatchObject({ nspHead: false, mlmHead: false, pooler: true });
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-hf-pooler-'));
    await model.save(dir, { format: 'huggingface' });
    const [theirs, ours] = [
      await safetensors(join(FIXTURES, 'bare', 'model.safetensors')),
      await safetensors(join(dir, 'model.safetensors')),
    ];
    for (const name of ['pooler.dense.weight', 'pooler.dense.bias']) {
      expect(Array.from(ours.get(name)?.data ?? []), name).toEqual(Array.from(theirs.get(name)?.data ?? [0]));
    }
    expect([...ours.keys()].sort()).toEqual([...theirs.keys()].filter((k) => !k.endsWith('position_ids')).sort());
  });

  it('export to Hugging Face and load back with identical outputs; the textbook architecture is named', async () => {
    const model = await BertModel.load(join(FIXTURES, 'model'));
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-hf-export-'));
    await model.save(dir, { format: 'huggingface' });
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ architectures: ['BertForPreTraining'], model_type: 'bert', hidden_act: 'gelu' });
    const again = await BertModel.load(dir);
    const [a, b] = [await encode(model, 'the crane is flying'), await encode(again, 'the crane is flying')];
    expect(Array.from(b.data)).toEqual(Array.from(a.data));

    const vocab = Vocab.fromJSON({ tokens: [...RESERVED_TOKENS, 'a', 'crane', 'flies'] });
    const textbook = BertModel.create(vocab, { config: { hidden: 16, ffnHidden: 32, maxPositions: 16 } });
    await expect(textbook.save(dir, { format: 'huggingface' })).rejects.toThrow(/layer norm after the embeddings/);
    const exportable = BertModel.create(vocab, {
      config: { hidden: 16, ffnHidden: 32, maxPositions: 16, embeddingNorm: true },
    });
    // trained a few steps, so that its biases and layer norms are off their initial values
    for (let seed = 0; seed < 3; seed++) {
      await exportable.trainStep(syntheticBatch(vocab.size, { batchSize: 4, seqLen: 8, seed }));
    }
    const dir2 = await mkdtemp(join(tmpdir(), 'tsbert-hf-textbook-'));
    await exportable.save(dir2, { format: 'huggingface' });
    const back = await BertModel.load(dir2);
    const [x, y] = [await encode(exportable, 'a crane flies'), await encode(back, 'a crane flies')];
    expect(y.tokens).toEqual(['<cls>', 'a', 'crane', 'flies', '<sep>']);
    expect(Array.from(y.data)).toEqual(Array.from(x.data));
  });

  it("export a trained model with what transformers' save_pretrained writes, for either tying of the decoder", async () => {
    for (const [fixture, tied] of [
      ['model', true],
      ['model-untied', false],
    ] as const) {
      const source = await BertModel.load(join(FIXTURES, fixture), { lr: 1e-3 });
      expect(source.config.tieWordEmbeddings).toBe(tied);
      const theirs = await safetensors(join(FIXTURES, fixture, 'model.safetensors'));
      // the untied decoder adds its own bias, as transformers does
      const want = await safetensors(join(FIXTURES, tied ? 'expected.safetensors' : 'expected-untied.safetensors'));
      const hidden = await source.encodeSequences(fixtureSequences());
      expect(rel(hidden.data, want.get('hidden')?.data as Float32Array)).toBeLessThan(1e-5);
      // every MLM logit of the fixture batch's first row
      const all = want.get('mlm_logits') as { shape: number[]; data: Float32Array };
      const sequences = fixtureSequences();
      const n = sequences.validLens[0];
      const row = { ...sequences, batchSize: 1, validLens: sequences.validLens.slice(0, 1) };
      row.tokens = sequences.tokens.slice(0, sequences.seqLen);
      row.segments = sequences.segments.slice(0, sequences.seqLen);
      const logits = await logitsAt(source, row, n);
      expect(rel(logits, all.data.subarray(0, n * all.shape[2]))).toBeLessThan(1e-5);
      const first = await mlmLogitsOf(source, 'the crane is flying');
      // a few steps, so that no bias is left at a value a fresh model would also have
      for (let step = 0; step < 3; step++) await source.trainStep(syntheticBatch(220, { batchSize: 4, seqLen: 12 }));
      expect(Array.from(await mlmLogitsOf(source, 'the crane is flying'))).not.toEqual(Array.from(first));
      const dir = await mkdtemp(join(tmpdir(), `tsbert-hf-${fixture}-`));
      await source.save(dir, { format: 'huggingface' });
      const ours = await safetensors(join(dir, 'model.safetensors'));
      expect([...ours.keys()].sort()).toEqual([...theirs.keys()].sort());
      if (!tied) {
        // both MLM biases written, holding the one the model adds
        expect(ours.get('cls.predictions.bias')?.data).toEqual(ours.get('cls.predictions.decoder.bias')?.data);
      }
      const back = await BertModel.load(dir);
      expect(back.config.tieWordEmbeddings).toBe(tied);
      expect(Array.from(await mlmLogitsOf(back, 'the crane is flying'))).toEqual(
        Array.from(await mlmLogitsOf(source, 'the crane is flying')),
      );
    }
  });

  it('make the tokenizer of a loaded model at its first text: a model given ids never makes it', async () => {
    const vocabOnly = await mkdtemp(join(tmpdir(), 'tsbert-hf-vocab-'));
    await cp(join(FIXTURES, 'model'), vocabOnly, { recursive: true });
    await rm(join(vocabOnly, 'tokenizer.json'));
    const folders: [string, Tokenizer][] = [
      [join(FIXTURES, 'model'), await Tokenizer.fromFile(join(FIXTURES, 'model/tokenizer.json'))],
      [vocabOnly, await Tokenizer.fromFile(join(FIXTURES, 'model/vocab.txt'))],
    ];
    const text = expected.tokenized[0].text[0];
    for (const [dir, made] of folders) {
      const model = await BertModel.load(dir);
      const { tokenizer } = model;
      expect([tokenizer.vocabSize, tokenizer.padId]).toEqual([made.vocabSize, made.padId]);
      await model.encodeSequences(fixtureSequences());
      expect(tokenizer.nativeTokenizer().isMade, dir).toBe(false);
      expect((await encode(model, text)).tokens).toEqual(made.encode(text).tokens);
      expect(tokenizer.nativeTokenizer().isMade, dir).toBe(true);
      expect(tokenizer.encodeBatch([[text, 'a dog']])).toEqual(made.encodeBatch([[text, 'a dog']]));
    }
    await rm(vocabOnly, { recursive: true });
  });

  it('embed texts at once with a tokenizer not yet made as one call at a time does', async () => {
    const texts = ['the crane is flying', 'a dog', 'tokyo is big', 'the mat'];
    const [together, alone] = [
      await BertModel.load(join(FIXTURES, 'bare')),
      await BertModel.load(join(FIXTURES, 'bare')),
    ];
    expect(together.tokenizer.nativeTokenizer().isMade).toBe(false);
    const atOnce = await Promise.all(texts.map((t) => embed(together, [t])));
    for (const [i, t] of texts.entries()) expect(atOnce[i].data).toEqual((await embed(alone, [t])).data);
  });

  it('refuse folders that are not a BERT or lack what tsbert needs, with a CheckpointError naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-hf-bad-'));
    await cp(join(FIXTURES, 'model'), dir, { recursive: true });
    const config = await readFile(join(dir, 'config.json'), 'utf8');
    const cases: [() => Promise<void>, RegExp][] = [
      [
        async () => writeFile(join(dir, 'config.json'), config.replace('"model_type": "bert"', '"model_type": "gpt2"')),
        /model_type is 'gpt2'/,
      ],
      [
        async () => writeFile(join(dir, 'config.json'), config.replace('"vocab_size": 220', '"vocab_size": 100')),
        /tokenizer has 220 tokens but the embeddings only 100/,
      ],
      [
        async () => writeFile(join(dir, 'config.json'), config.replace('"hidden_size": 32', '"hidden_size": 64')),
        /has shape \[220, 32\], the config says \[220, 64\]/,
      ],
      [
        async () => writeFile(join(dir, 'config.json'), '{"hidden": 3}'),
        /neither a tsbert model manifest nor a Hugging Face config/,
      ],
      [
        async () => {
          await writeFile(join(dir, 'config.json'), config);
          await writeFile(join(dir, 'tokenizer.json'), '{"model": 3}');
        },
        /tokenizer file '.*tokenizer\.json': not a tokenizer\.json/,
      ],
      [
        async () => {
          await rm(join(dir, 'tokenizer.json'));
          const vocab = await readFile(join(dir, 'vocab.txt'), 'utf8');
          await writeFile(join(dir, 'vocab.txt'), vocab.replace('[SEP]\n', '[SEQ]\n'));
        },
        /tokenizer file '.*vocab\.txt': vocab\.txt has no \[SEP\]/,
      ],
      [
        async () => {
          await rm(join(dir, 'vocab.txt'));
        },
        /has no tokenizer.json or vocab.txt/,
      ],
      [
        async () => {
          await writeFile(join(dir, 'pytorch_model.bin'), 'pickled');
          await rm(join(dir, 'model.safetensors'));
        },
        /has only pytorch_model.bin: tsbert reads safetensors/,
      ],
    ];
    for (const [spoil, message] of cases) {
      await spoil();
      const error = await BertModel.load(dir).catch((e: unknown) => e);
      expect(error, String(message)).toBeInstanceOf(CheckpointError);
      expect((error as Error).message).toMatch(message);
    }
  });
});
