/**
 * `tagTokens` against transformers' token-classification pipeline: the fixture of
 * bench/reference/make_tag_fixtures.py (__test__/fixtures/tag-tokens/) is a tiny seeded
 * `BertForTokenClassification` (labels O, B-PER, I-PER, B-LOC, I-LOC; weights spread so the
 * label changes from token to token) and what the pipeline gave with it for each aggregation
 * strategy (none, simple, first, average, max) on texts with sub-words, punctuation, runs of
 * spaces, accents, CJK and kana, characters the vocabulary lacks, special tokens written in the
 * text, an empty text and one longer than the model's 64 positions. Each of our entities must
 * be the pipeline's, in order: the label (`entity_group` once grouped), the word as the
 * tokenizer's decoder joins its tokens, start and end (the pipeline's code-point offsets turned
 * into UTF-16 indices), the token index (none) and the score within 1e-5. The same with the
 * model's labels renamed (no B-/I- prefix, another prefix: how groups are cut and named). Also:
 * a single text, `ignoreLabels`, `batchSize`, and the errors.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { AGGREGATIONS, type Aggregation, BertModel, type TaggedEntity, tagTokens } from '../../src/index.js';

const FIXTURE = join(import.meta.dirname, '../fixtures/tag-tokens');
const TASKS = join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures/hf-task');

/** An entity as the pipeline writes it. */
interface Theirs {
  entity?: string;
  entity_group?: string;
  score: number;
  word: string;
  start: number;
  end: number;
  index?: number;
}

const { texts, labels, tokens, results, keepingO, relabelled } = JSON.parse(
  await readFile(join(FIXTURE, 'expected.json'), 'utf8'),
) as {
  texts: string[];
  labels: string[];
  tokens: string[][];
  results: Record<Aggregation, Theirs[][]>;
  keepingO: Record<'none' | 'simple', Theirs[][]>;
  relabelled: { labels: string[]; results: Record<Aggregation, Theirs[][]> };
};

/** The UTF-16 index of code point `i` of `text` (Python indexes strings by code point). */
const utf16 = (text: string, i: number) => Array.from(text).slice(0, i).join('').length;

/** Expects `ours` (the entities of `texts[row]`) to be the pipeline's `theirs`. */
function expectSame(ours: readonly TaggedEntity[], theirs: readonly Theirs[], row: number, what: string): void {
  const text = texts[row];
  const at = `${what}, texts[${row}]`;
  expect(
    ours.map((e) => [e.entity, e.word, e.start, e.end, e.index]),
    at,
  ).toEqual(theirs.map((e) => [e.entity ?? e.entity_group, e.word, utf16(text, e.start), utf16(text, e.end), e.index]));
  for (const [k, e] of ours.entries()) {
    expect(Math.abs(e.score - theirs[k].score), `${at}, entity ${k} (${e.word}) score`).toBeLessThan(1e-5);
  }
}

describe('tagTokens', () => {
  it('has a fixture whose strategies disagree (else the comparisons below prove little)', () => {
    const flat = (s: Aggregation) => results[s].flat().map((e) => e.entity ?? e.entity_group);
    expect(new Set(flat('none'))).toEqual(new Set(labels.slice(1)));
    expect(new Set(flat('simple'))).toEqual(new Set(['PER', 'LOC']));
    const described = (s: Aggregation) =>
      JSON.stringify(results[s].map((r) => r.map((e) => [e.word, e.entity_group, e.score.toFixed(4)])));
    expect(new Set(AGGREGATIONS.map(described)).size).toBe(AGGREGATIONS.length);
    expect(tokens[texts.indexOf('')]).toEqual(['[CLS]', '[SEP]']);
    expect(Math.max(...tokens.map((t) => t.length))).toBe(64); // the long text, cut
    expect(tokens.flat()).toContain('[UNK]');
  });

  it("finds the entities transformers' pipeline finds, with each aggregation strategy", async () => {
    const model = await BertModel.load(join(FIXTURE, 'model'));
    expect(model.labels).toEqual(labels);
    for (const aggregation of AGGREGATIONS) {
      const got = await tagTokens(model, texts, { aggregation });
      expect(got).toHaveLength(texts.length);
      for (const [row, entities] of got.entries()) expectSame(entities, results[aggregation][row], row, aggregation);
    }
  });

  it('cuts and names groups of labels without a B-/I- prefix as the pipeline does', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'tsbert-tag-'));
    try {
      await cp(join(FIXTURE, 'model'), folder, { recursive: true });
      const config = JSON.parse(await readFile(join(folder, 'config.json'), 'utf8'));
      config.id2label = Object.fromEntries(relabelled.labels.map((l, i) => [String(i), l]));
      config.label2id = Object.fromEntries(relabelled.labels.map((l, i) => [l, i]));
      await writeFile(join(folder, 'config.json'), JSON.stringify(config));
      const model = await BertModel.load(folder);
      expect(model.labels).toEqual(relabelled.labels);
      for (const aggregation of AGGREGATIONS) {
        const got = await tagTokens(model, texts, { aggregation });
        for (const [row, entities] of got.entries()) {
          expectSame(entities, relabelled.results[aggregation][row], row, `${aggregation}, relabelled`);
        }
      }
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('keeps the O tokens and groups with ignoreLabels: [], and tags the same in batches of any size', async () => {
    const model = await BertModel.load(join(FIXTURE, 'model'));
    for (const aggregation of ['none', 'simple'] as const) {
      const got = await tagTokens(model, texts, { aggregation, ignoreLabels: [], batchSize: 3 });
      for (const [row, entities] of got.entries()) {
        expectSame(entities, keepingO[aggregation][row], row, `${aggregation}, O kept`);
      }
    }
    // every token but [CLS] and [SEP], special tokens written in the text included
    const all = await tagTokens(model, texts, { aggregation: 'none', ignoreLabels: [], batchSize: 1 });
    expect(all.map((entities) => entities.length)).toEqual(tokens.map((t) => t.length - 2));
    // leaving out other labels than O
    const noLoc = await tagTokens(model, texts, { aggregation: 'first', ignoreLabels: ['O', 'LOC'] });
    for (const [row, entities] of noLoc.entries()) {
      expectSame(
        entities,
        results.first[row].filter((e) => e.entity_group !== 'LOC'),
        row,
        'first, LOC ignored',
      );
    }
  });

  it('gives one array for one text, grouped as simple by default', async () => {
    const model = await BertModel.load(join(FIXTURE, 'model'));
    for (const row of [1, 4, 5]) {
      const got = await tagTokens(model, texts[row]);
      expect(Array.isArray(got) && got.every((e) => !Array.isArray(e))).toBe(true);
      expectSame(got, results.simple[row], row, 'one text');
    }
    expect(await tagTokens(model, [])).toEqual([]);
  });

  it('refuses a model without a token-classification head, an unknown strategy and what is not text', async () => {
    const model = await BertModel.load(join(FIXTURE, 'model'));
    const classifier = await BertModel.load(join(TASKS, 'single'));
    await expect(tagTokens(classifier, 'a dog')).rejects.toThrow(RangeError);
    await expect(tagTokens(classifier, 'a dog')).rejects.toThrow(
      /tagTokens needs a token-classification head, and this model has a single_label_classification head/,
    );
    await expect(tagTokens(model, 'a dog', { aggregation: 'mean' as never })).rejects.toThrow(RangeError);
    await expect(tagTokens(model, 'a dog', { aggregation: 'mean' as never })).rejects.toThrow(/^aggregation: /);
    await expect(tagTokens(model, ['a dog', 3 as never])).rejects.toThrow(TypeError);
    await expect(tagTokens(model, ['a dog', 3 as never])).rejects.toThrow(/^texts\[1\]: expected a string/);
    await expect(tagTokens(model, 3 as never)).rejects.toThrow(TypeError);
    await expect(tagTokens(model, 'a dog', { batchSize: 0 })).rejects.toThrow(/^batchSize: /);
  });
});
