/**
 * A sentence-transformers folder embeds as `SentenceTransformer(dir).encode()` does by default:
 * its modules.json (Normalize), its Pooling module's modes (each of the six, and several side
 * by side), `max_seq_length` and `do_lower_case`; options override; a module tsbert cannot
 * run is named; a save keeps the files. The folders are the Hugging Face fixture `bare` with
 * sentence-transformers' files written by the test; the vectors are checked against pooling
 * written here over the token states the model gives (bench:hf checks against
 * sentence-transformers itself on all-MiniLM-L6-v2).
 */
import { cp, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { BertModel, CheckpointError, embed, POOLING_MODES, type PoolingMode } from '../../src/index.js';

const BARE = join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures/hf/bare');
const REQUIREMENTS = join(import.meta.dirname, '../../bench/reference/requirements.txt');
const HIDDEN = 32;
const TEXTS = ['The Crane is flying', 'a dog', 'the big dog sat on the mat and slept by the river', 'Tokyo'];

interface Layout {
  /** The Pooling module's config. */
  pooling?: Record<string, unknown>;
  normalize?: boolean;
  /** sentence_bert_config.json. */
  sbert?: Record<string, unknown>;
  /** Where the Transformer module lives. */
  transformerPath?: string;
  /** More modules after the others. */
  extra?: { type: string; path: string }[];
}

/** A sentence-transformers folder around the fixture model. */
async function stFolder(layout: Layout): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbert-st-'));
  const model = join(dir, layout.transformerPath ?? '');
  await cp(BARE, model, { recursive: true });
  const modules = [
    { idx: 0, name: '0', path: layout.transformerPath ?? '', type: 'sentence_transformers.models.Transformer' },
  ];
  if (layout.pooling) {
    modules.push({ idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' });
    await mkdir(join(dir, '1_Pooling'));
    await writeFile(join(dir, '1_Pooling', 'config.json'), JSON.stringify(layout.pooling));
  }
  if (layout.normalize) {
    modules.push({ idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' });
    await mkdir(join(dir, '2_Normalize'));
  }
  for (const m of layout.extra ?? []) modules.push({ idx: modules.length, name: String(modules.length), ...m });
  await writeFile(join(dir, 'modules.json'), JSON.stringify(modules));
  if (layout.sbert) await writeFile(join(model, 'sentence_bert_config.json'), JSON.stringify(layout.sbert));
  await writeFile(join(dir, 'README.md'), '# a model card\n');
  return dir;
}

/** The token states of `text` cut at `maxLength` tokens, and how many there are. */
async function states(model: BertModel, text: string, maxLength: number) {
  const [t] = model.tokenizer.encodeBatch([[text]], { maxLength });
  const s = await model.encodeSequences(model.tokenizer.pad([t]));
  return { data: s.data, n: t.ids.length };
}

/** sentence-transformers' pooling of one text's token states (rows of HIDDEN values). */
function pooled({ data, n }: { data: Float32Array; n: number }, mode: PoolingMode): number[] {
  const row = (i: number) => Array.from(data.subarray(i * HIDDEN, (i + 1) * HIDDEN));
  const rows = Array.from({ length: n }, (_, i) => row(i));
  const sum = (weights: number[]) =>
    Array.from({ length: HIDDEN }, (_, j) => rows.reduce((s, r, i) => s + r[j] * weights[i], 0));
  const ones = rows.map(() => 1);
  switch (mode) {
    case 'cls':
      return row(0);
    case 'lasttoken':
      return row(n - 1);
    case 'max':
      return Array.from({ length: HIDDEN }, (_, j) => Math.max(...rows.map((r) => r[j])));
    case 'mean':
      return sum(ones).map((v) => v / n);
    case 'mean_sqrt_len_tokens':
      return sum(ones).map((v) => v / Math.sqrt(n));
    case 'weightedmean': {
      const w = rows.map((_, i) => i + 1);
      return sum(w).map((v) => v / ((n * (n + 1)) / 2));
    }
  }
}

const unit = (v: number[]) => {
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
};

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(b, (v, i) => Math.abs(a[i] - v)).reduce((m, d) => Math.max(m, d), 0);

/** What sentence-transformers gives for each text with these settings. */
async function expected(
  model: BertModel,
  texts: string[],
  modes: PoolingMode[],
  normalize: boolean,
  maxLength: number,
) {
  const out: number[] = [];
  for (const text of texts) {
    const s = await states(model, text, maxLength);
    const v = modes.flatMap((m) => pooled(s, m));
    out.push(...(normalize ? unit(v) : v));
  }
  return out;
}

describe("a sentence-transformers folder's settings", () => {
  it('pool with each of the six modes of the Pooling config, as its pooling_mode or its legacy flags', async () => {
    for (const mode of POOLING_MODES) {
      const model = await BertModel.load(await stFolder({ pooling: { pooling_mode: mode } }));
      expect(model.sentenceSettings?.pooling).toEqual([mode]);
      const vectors = await embed(model, TEXTS, { batchSize: 3 });
      expect(vectors.shape).toEqual([TEXTS.length, HIDDEN]);
      expect(maxDiff(vectors.data, await expected(model, TEXTS, [mode], false, 32)), mode).toBeLessThan(1e-5);
    }
    // legacy flags: several modes side by side in sentence-transformers' order (cls, max, mean, …)
    const legacy = await stFolder({
      pooling: {
        word_embedding_dimension: HIDDEN,
        pooling_mode_mean_tokens: true,
        pooling_mode_cls_token: true,
        pooling_mode_lasttoken: true,
      },
    });
    const model = await BertModel.load(legacy);
    expect(model.sentenceSettings?.pooling).toEqual(['cls', 'mean', 'lasttoken']);
    const vectors = await embed(model, TEXTS);
    expect(vectors.shape).toEqual([TEXTS.length, 3 * HIDDEN]);
    expect(maxDiff(vectors.data, await expected(model, TEXTS, ['cls', 'mean', 'lasttoken'], false, 32))).toBeLessThan(
      1e-5,
    );
  });

  it('normalise with a Normalize module, cut at max_seq_length and lower-case with do_lower_case; options override', async () => {
    const dir = await stFolder({
      pooling: { pooling_mode_mean_tokens: true },
      normalize: true,
      sbert: { max_seq_length: 6, do_lower_case: true },
    });
    const model = await BertModel.load(dir);
    expect(model.sentenceSettings).toMatchObject({ pooling: ['mean'], normalize: true, maxLength: 6, lowercase: true });
    const lower = TEXTS.map((t) => t.toLowerCase());
    const vectors = await embed(model, TEXTS);
    expect(maxDiff(vectors.data, await expected(model, lower, ['mean'], true, 6))).toBeLessThan(1e-5);
    // the long text is cut at 6 tokens: it differs from the same text cut at the model's 32 positions
    expect(
      maxDiff(vectors.data.subarray(2 * HIDDEN, 3 * HIDDEN), await expected(model, [lower[2]], ['mean'], true, 32)),
    ).toBeGreaterThan(1e-3);
    const overridden = await embed(model, TEXTS, { normalize: false, pooling: ['max', 'cls'], maxLength: 32 });
    expect(overridden.shape).toEqual([TEXTS.length, 2 * HIDDEN]);
    expect(maxDiff(overridden.data, await expected(model, lower, ['max', 'cls'], false, 32))).toBeLessThan(1e-5);
    await expect(embed(model, TEXTS, { maxLength: 33 })).rejects.toThrow(
      /^maxLength: expected at most the model's 32 positions/,
    );
    await expect(embed(model, TEXTS, { pooling: 'average' as never })).rejects.toThrow(/^pooling: expected one of/);
    await expect(embed(model, TEXTS, { pooling: [] })).rejects.toThrow(/^pooling: expected at least one mode/);
  });

  it('find the model in its Transformer folder; name a module tsbert cannot run; refuse broken files naming them', async () => {
    const nested = await stFolder({ transformerPath: '0_Transformer', pooling: { pooling_mode: 'cls' } });
    const model = await BertModel.load(nested);
    expect(model.sentenceSettings?.transformerPath).toBe('0_Transformer');
    expect(maxDiff((await embed(model, TEXTS)).data, await expected(model, TEXTS, ['cls'], false, 32))).toBeLessThan(
      1e-5,
    );

    const dense = await BertModel.load(
      await stFolder({ pooling: {}, extra: [{ type: 'sentence_transformers.models.Dense', path: '2_Dense' }] }),
    );
    await expect(embed(dense, TEXTS)).rejects.toThrow(CheckpointError);
    await expect(embed(dense, TEXTS)).rejects.toThrow(/sentence_transformers\.models\.Dense \(2_Dense\)/);

    const broken = await stFolder({ pooling: { pooling_mode: 'mean' } });
    await writeFile(join(broken, '1_Pooling', 'config.json'), '{"pooling_mode": "average"}');
    await expect(BertModel.load(broken)).rejects.toThrow(
      /1_Pooling\/config\.json': pooling mode "average" is not one of/,
    );
    await writeFile(join(broken, '1_Pooling', 'config.json'), '{"pooling_mode": "mean"}');
    await writeFile(join(broken, 'modules.json'), '{');
    await expect(BertModel.load(broken)).rejects.toThrow(/modules\.json' is not valid JSON/);
    await writeFile(
      join(broken, 'modules.json'),
      '[{"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"}]',
    );
    await expect(BertModel.load(broken)).rejects.toThrow(/names 0 Transformer modules/);
  });

  it('travel with the model when it is saved, in either format', async () => {
    const source = await stFolder({
      transformerPath: '0_Transformer',
      pooling: { pooling_mode: ['cls', 'mean'] },
      normalize: true,
      sbert: { max_seq_length: 8, do_lower_case: false },
    });
    // a tokenizer.json with padding built in, as all-MiniLM-L6-v2's
    const tokenizerFile = join(source, '0_Transformer', 'tokenizer.json');
    const tokenizerJson = JSON.parse(await readFile(tokenizerFile, 'utf8'));
    tokenizerJson.padding = {
      strategy: { Fixed: 16 },
      direction: 'Right',
      pad_to_multiple_of: null,
      pad_id: 0,
      pad_type_id: 0,
      pad_token: '[PAD]',
    };
    await writeFile(tokenizerFile, JSON.stringify(tokenizerJson));
    await writeFile(join(source, '0_Transformer', 'vocab.txt'), 'a vocab.txt is kept as it is\n');
    const model = await BertModel.load(source);
    const before = await embed(model, TEXTS);
    for (const format of ['huggingface', 'tsbert'] as const) {
      const out = await mkdtemp(join(tmpdir(), `tsbert-st-saved-${format}-`));
      await model.save(out, { format });
      const files = await readdir(out, { recursive: true });
      expect(files).toEqual(
        expect.arrayContaining([
          'modules.json',
          'sentence_bert_config.json',
          'README.md',
          join('1_Pooling', 'config.json'),
          '2_Normalize',
        ]),
      );
      expect(await readFile(join(out, 'vocab.txt'), 'utf8')).toBe('a vocab.txt is kept as it is\n');
      if (format === 'huggingface') {
        const exported = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
        const pinned = (await readFile(REQUIREMENTS, 'utf8')).match(/^transformers==(\S+)$/m)?.[1];
        expect(exported.transformers_version).toBe(pinned); // the release bench:hf loads the export with
        expect(JSON.parse(await readFile(join(out, 'tokenizer.json'), 'utf8')).padding).toBeNull();
      }
      const modules = JSON.parse(await readFile(join(out, 'modules.json'), 'utf8'));
      expect(modules[0]).toMatchObject({ path: '', type: 'sentence_transformers.models.Transformer' });
      const again = await BertModel.load(out);
      expect(again.sentenceSettings).toEqual({ ...model.sentenceSettings, transformerPath: '' });
      expect(maxDiff((await embed(again, TEXTS)).data, before.data)).toBe(0);
    }
  });
});
