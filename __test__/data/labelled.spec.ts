/**
 * Labelled data for fine-tuning, from files the tests write:
 *
 * - `readRows` (src/data/labelled-files.ts): CSV (quoted commas and newlines, a BOM, CRLF line
 *   ends, blank lines), TSV, JSON Lines and CoNLL rows, each with the line it starts on; bad rows
 *   (an unclosed quote, another field count, invalid UTF-8, a line that is not JSON or not an
 *   object, a CoNLL line of one column) as a `DataError` with the right file, line, column and
 *   message, or reported and skipped with `onBadRow`; valid multi-byte characters split by the
 *   file stream's 64 KiB chunks read intact.
 * - `scanLabels`: names sorted (code units; numbers by value), the task kind inferred or given,
 *   multi-label cells split by the separator.
 * - `LabelledSet.read`: ids as the tokenizer encodes the text (and pair), bad rows, truncation
 *   (longest first for pairs), token classification's labels on each word's first sub-word.
 * - `LabelledSet.batches`/`batch`/`split`: padding, the labels' layout for each kind, seeded
 *   order per epoch, `groupByLength`, a deterministic split.
 *
 * Expected ids come from the fixture tokenizer itself (a tiny lowercase WordPiece).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { TaskKind } from '../../src/config.js';
import {
  IGNORED_LABEL,
  type LabelledColumns,
  LabelledSet,
  type LabelSet,
  scanLabels,
} from '../../src/data/labelled.js';
import { type LabelledFormat, type RawRow, readRows } from '../../src/data/labelled-files.js';
import { DataError } from '../../src/errors.js';
import { Tokenizer } from '../../src/tokenizer.js';

const TOKENIZER = join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures/hf/model/tokenizer.json');

/** The fields of a sequence task's rows. */
const COLUMNS: LabelledColumns = {
  text: 'text',
  pair: 'text_pair',
  pairRequired: false,
  label: 'label',
  separator: ',',
};
/** The fields of a token task's rows. */
const TOKEN_COLUMNS: LabelledColumns = { ...COLUMNS, text: 'tokens', label: 'tags' };

let tokenizer: Tokenizer;
beforeAll(async () => {
  tokenizer = await Tokenizer.fromFile(TOKENIZER);
});

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbert-labelled-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileCount = 0;
/** Writes `content` to a new file named `name` (its extension gives the format); its path. */
async function file(name: string, content: string | Uint8Array): Promise<string> {
  const path = join(dir, `${fileCount++}-${name}`);
  await writeFile(path, content);
  return path;
}

/** Writes JSON Lines, an object a line; its path. */
const jsonl = (rows: object[]) => file('rows.jsonl', `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);

/** The rows of `path` read as `format`, and the bad rows reported (with `skip`; else they throw). */
async function read(path: string, format: LabelledFormat, skip = false): Promise<{ rows: RawRow[]; bad: DataError[] }> {
  const bad: DataError[] = [];
  const rows: RawRow[] = [];
  for await (const row of readRows(path, format, skip ? { onBadRow: (e) => bad.push(e) } : {})) rows.push(row);
  return { rows, bad };
}

/** The error `promise` rejects with, checked to be a `DataError`. */
async function dataError(promise: Promise<unknown>): Promise<DataError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DataError);
  return error as DataError;
}

/** The ids of `text` (and `pair`) as the tokenizer encodes them, special tokens included. */
const encoded = (text: string, pair?: string, maxLength?: number) =>
  Array.from(tokenizer.encode(text, pair, { maxLength }).ids);
/** The sub-word ids of `text` without `[CLS]` and `[SEP]`. */
const pieces = (text: string) => encoded(text).slice(1, -1);

/** The examples of `path`: labels scanned (or given), then read. */
async function readSet(
  path: string,
  options: {
    token?: boolean;
    kind?: TaskKind;
    labels?: LabelSet;
    maxLen?: number;
    columns?: LabelledColumns;
    onBadRow?: (e: DataError) => void;
  } = {},
): Promise<LabelledSet> {
  const token = options.token ?? false;
  const columns = options.columns ?? (token ? TOKEN_COLUMNS : COLUMNS);
  const labels = options.labels ?? (await scanLabels(path, token, options.kind, { columns }));
  return LabelledSet.read(path, token, {
    columns,
    labels,
    tokenizer,
    maxLen: options.maxLen ?? 64,
    onBadRow: options.onBadRow,
  });
}

/** Row `r` of a batch's `seqLen`-wide array. */
const rowOf = <T extends Int32Array | Float32Array>(a: T, r: number, width: number) =>
  Array.from(a.subarray(r * width, (r + 1) * width));

describe('readRows: CSV and TSV', () => {
  it('reads quoted commas, quoted newlines, a BOM and CRLF line ends; each row with the line it starts on', async () => {
    const path = await file(
      'rows.csv',
      '\uFEFFtext,label\r\n"hello, world",pos\r\n"two\r\nlines",neg\r\n\r\nplain,"say ""hi"""\r\nlast,x',
    );
    const { rows } = await read(path, 'csv');
    expect(rows).toEqual([
      { line: 2, fields: { text: 'hello, world', label: 'pos' } },
      { line: 3, fields: { text: 'two\nlines', label: 'neg' } }, // a quoted line end reads as \n
      { line: 6, fields: { text: 'plain', label: 'say "hi"' } }, // line 5 is blank
      { line: 7, fields: { text: 'last', label: 'x' } }, // no final line end
    ]);
    expect(Object.keys(rows[0].fields)).toEqual(['text', 'label']); // no BOM in the first name
  });

  it('counts blank lines and quoted newlines in the line numbers (LF line ends)', async () => {
    const path = await file('rows.csv', 'text,label\n\n"a\nb\nc",x\n\n\nd,y\n"e",z\n');
    const { rows } = await read(path, 'csv');
    expect(rows.map((r) => [r.line, r.fields.text])).toEqual([
      [3, 'a\nb\nc'],
      [8, 'd'],
      [9, 'e'],
    ]);
  });

  it('reads CRLF line ends split by the stream’s 64 KiB chunks', async () => {
    const chunk = 64 * 1024; // fs.createReadStream's default chunk
    const head = 'text,label\r\n"';
    const filler = 'x'.repeat(chunk - 1 - head.length); // the \r of the quoted line end is the chunk's last byte
    const content = `${head}${filler}\r\nmore",a\r\n\r\nnext,b\r\n"two\r\nlines",c\r\n`;
    expect(content.slice(chunk - 1, chunk + 1)).toBe('\r\n');
    const { rows } = await read(await file('rows.csv', content), 'csv');
    expect(rows.map((r) => [r.line, r.fields.text, r.fields.label])).toEqual([
      [2, `${filler}\nmore`, 'a'],
      [5, 'next', 'b'],
      [6, 'two\nlines', 'c'],
    ]);
  });

  it('reads TSV with quotes and commas as plain characters', async () => {
    const path = await file('rows.tsv', 'text\tlabel\n"quoted" text, with a comma\tx\n\nsecond\ty\n');
    const { rows } = await read(path, 'tsv');
    expect(rows).toEqual([
      { line: 2, fields: { text: '"quoted" text, with a comma', label: 'x' } },
      { line: 4, fields: { text: 'second', label: 'y' } },
    ]);
  });
});

describe('readRows: JSON Lines and CoNLL', () => {
  it('reads an object a line, skipping blank lines (the line numbers count them)', async () => {
    const path = await file(
      'rows.jsonl',
      '{"text":"a","label":1}\n\n   \r\n{"text":"b","label":[1,"x"]}\r\n{"text":"c"}',
    );
    const { rows } = await read(path, 'jsonl');
    expect(rows).toEqual([
      { line: 1, fields: { text: 'a', label: 1 } },
      { line: 4, fields: { text: 'b', label: [1, 'x'] } },
      { line: 5, fields: { text: 'c' } },
    ]);
  });

  it('leaves out a BOM at the start of a JSON Lines or CoNLL file', async () => {
    const json = await file('rows.jsonl', '\uFEFF{"text":"a"}\n');
    expect((await read(json, 'jsonl')).rows).toEqual([{ line: 1, fields: { text: 'a' } }]);
    const conll = await file('rows.conll', '\uFEFFword O\n');
    expect((await read(conll, 'conll')).rows).toEqual([{ line: 1, fields: { tokens: ['word'], tags: ['O'] } }]);
  });

  it('reads CoNLL sentences: -DOCSTART- skipped, the tag in the last column, the line of the first word', async () => {
    const text = [
      '-DOCSTART- -X- -X- O', // 1
      '', // 2
      'EU NNP B-NP B-ORG', // 3
      'rejects VBZ B-VP O', // 4
      '', // 5
      '', // 6
      'Peter\tB-PER', // 7
      'Blackburn\tI-PER', // 8
      '-DOCSTART- -X- O', // 9: also ends the sentence
      'BRUSSELS NNP B-NP B-LOC', // 10
      '1996-08-22 CD I-NP O', // 11, no blank line after
    ].join('\n');
    const { rows } = await read(await file('rows.conll', text), 'conll');
    expect(rows).toEqual([
      { line: 3, fields: { tokens: ['EU', 'rejects'], tags: ['B-ORG', 'O'] } },
      { line: 7, fields: { tokens: ['Peter', 'Blackburn'], tags: ['B-PER', 'I-PER'] } },
      { line: 10, fields: { tokens: ['BRUSSELS', '1996-08-22'], tags: ['B-LOC', 'O'] } },
    ]);
  });
});

describe('readRows: bad rows', () => {
  it('an unclosed CSV quote is a DataError at the line the quoted field opens; with onBadRow, reported', async () => {
    const path = await file('rows.csv', 'text,label\nok,a\nfine,b\n"never closed,c\nmore,d\n');
    const error = await dataError(read(path, 'csv'));
    expect([error.file, error.line, error.column]).toEqual([path, 4, 'text']);
    expect(error.message).toBe(`${path}:4 (column 'text'): a quoted field opened here is never closed`);

    const { rows, bad } = await read(path, 'csv', true);
    expect(rows.map((r) => r.fields.text)).toEqual(['ok', 'fine']);
    expect(bad.map((e) => [e.line, e.column])).toEqual([[4, 'text']]);
  });

  it('an unclosed quote on a later line of a multi-line row is reported at its own line and field', async () => {
    const path = await file('rows.csv', 'text,label\nok,a\n"two\nlines","opens here\nand goes on\n');
    const error = await dataError(read(path, 'csv'));
    expect([error.line, error.column]).toEqual([4, 'label']);
  });

  it('a CSV row with another field count is a DataError at its line, even far into the file', async () => {
    const path = await file('rows.csv', 'text,label\nok,a\nthree,b,c\nfine,d\n');
    const error = await dataError(read(path, 'csv'));
    expect([error.file, error.line, error.column]).toEqual([path, 3, undefined]);
    expect(error.message).toMatch(new RegExp(`^${path}:3: the row has another number of fields than the header`));

    // many rows first (the parser runs ahead of the reader), a multi-line bad row, blank lines
    const good = Array.from({ length: 300 }, (_, i) => `row ${i},l${i % 3}`);
    const far = await file('rows.csv', ['text,label', ...good, '', '"x\ny",a,b', 'after,z', ''].join('\n'));
    expect((await dataError(read(far, 'csv'))).line).toBe(303);
    const { rows, bad } = await read(far, 'csv', true);
    expect(bad.map((e) => e.line)).toEqual([303]);
    expect(rows).toHaveLength(301);
    expect(rows.at(-1)).toEqual({ line: 305, fields: { text: 'after', label: 'z' } });
    expect(rows.slice(0, 300).map((r) => r.line)).toEqual(Array.from({ length: 300 }, (_, i) => i + 2));
  });

  it('another CSV error (a quote inside an unquoted field) is a DataError with csv-parse’s message', async () => {
    const path = await file('rows.csv', 'text,label\nok,a\nab"c,b\nfine,c\n');
    const error = await dataError(read(path, 'csv'));
    expect([error.line, error.column]).toEqual([3, 'text']);
    expect(error.message).toMatch(new RegExp(`^${path}:3 \\(column 'text'\\): Invalid Opening Quote`));
    const { rows, bad } = await read(path, 'csv', true);
    expect(rows.map((r) => [r.line, r.fields.text])).toEqual([
      [2, 'ok'],
      [4, 'fine'],
    ]);
    expect(bad.map((e) => e.line)).toEqual([3]);
  });

  it('invalid UTF-8 is a DataError at its line and column; with onBadRow, its row is skipped', async () => {
    const bytes = Buffer.concat([
      Buffer.from('text,label\nok,a\nab'),
      Buffer.from([0xff]),
      Buffer.from('cd,b\nfine,c\n'),
    ]);
    const path = await file('rows.csv', bytes);
    const error = await dataError(read(path, 'csv'));
    expect([error.file, error.line, error.column]).toEqual([path, 3, 3]);
    expect(error.message).toBe(`${path}:3:3: invalid UTF-8`);

    const { rows, bad } = await read(path, 'csv', true);
    expect(rows).toEqual([
      { line: 2, fields: { text: 'ok', label: 'a' } },
      { line: 4, fields: { text: 'fine', label: 'c' } },
    ]);
    expect(bad.map((e) => [e.line, e.message])).toEqual([[3, `${path}:3: invalid UTF-8`]]);

    const lines = Buffer.concat([
      Buffer.from('{"a":1}\n{"a":2}\n{"a":"x'),
      Buffer.from([0xff]),
      Buffer.from('"}\n{"a":4}\n'),
    ]);
    const json = await file('rows.jsonl', lines);
    expect(await dataError(read(json, 'jsonl'))).toMatchObject({ line: 3, column: 8 });
    const skipped = await read(json, 'jsonl', true);
    expect(skipped.rows.map((r) => r.fields.a)).toEqual([1, 2, 4]);
    expect(skipped.bad.map((e) => e.line)).toEqual([3]);
  });

  it('a character cut off at the end of the file is invalid UTF-8', async () => {
    const east = Buffer.from('東'); // 3 bytes; the last is left out
    const path = await file('rows.jsonl', Buffer.concat([Buffer.from('{"a":1}\nabc'), east.subarray(0, 2)]));
    expect(await dataError(read(path, 'jsonl'))).toMatchObject({ line: 2, column: 4 });
  });

  it('a JSON Lines line that is not JSON is a DataError at its line and column', async () => {
    const cases: [string, number][] = [
      ['{"text": nope}', 11], // "n" could start null; "o" cannot follow it
      ['hello', 1],
      ['{"text": "a"', 13], // ends inside the object
      ['{"text": "a"} extra', 15],
    ];
    for (const [line, column] of cases) {
      const path = await file('rows.jsonl', `{"text":"ok"}\n\n${line}\n{"text":"after"}\n`);
      const error = await dataError(read(path, 'jsonl'));
      expect([line, error.file, error.line, error.column]).toEqual([line, path, 3, column]);
      expect(error.message).toMatch(new RegExp(`^${path}:3:${column}: not JSON`));
      const { rows, bad } = await read(path, 'jsonl', true);
      expect(rows.map((r) => r.fields.text)).toEqual(['ok', 'after']);
      expect(bad.map((e) => e.line)).toEqual([3]);
    }
  });

  it('a JSON Lines line that is an array, a string or null is a DataError: an object a line', async () => {
    for (const value of ['[1, 2]', '"text"', 'null', '3']) {
      const path = await file('rows.jsonl', `{"text":"ok"}\n${value}\n`);
      const error = await dataError(read(path, 'jsonl'));
      expect([error.line, error.column]).toEqual([2, undefined]);
      expect(error.message).toBe(`${path}:2: expected a JSON object a line`);
    }
  });

  it('a CoNLL line of one column is a DataError at its line; with onBadRow, its sentence is skipped', async () => {
    const path = await file('rows.conll', 'a O\nlonely\nb O\n\nc B-X\nd O\n');
    const error = await dataError(read(path, 'conll'));
    expect([error.file, error.line]).toEqual([path, 2]);
    expect(error.message).toBe(`${path}:2: expected a word and its tag, got 'lonely'`);

    const { rows, bad } = await read(path, 'conll', true);
    expect(rows).toEqual([{ line: 5, fields: { tokens: ['c', 'd'], tags: ['B-X', 'O'] } }]);
    expect(bad.map((e) => e.line)).toEqual([2]);
  });

  it('a missing file is an Error naming it', async () => {
    const path = join(dir, 'missing.csv');
    await expect(read(path, 'csv')).rejects.toThrow(`data: cannot read '${path}' (ENOENT)`);
  });
});

describe('readRows: multi-byte characters across the stream’s 64 KiB chunks', () => {
  it('reads them intact, with no UTF-8 error', async () => {
    const chunk = 64 * 1024; // fs.createReadStream's default chunk
    // each character starts `before` bytes ahead of a chunk boundary
    const splits: [string, number][] = [
      ['é', 1],
      ['東', 1],
      ['東', 2],
      ['😀', 1],
      ['😀', 2],
      ['😀', 3],
    ];
    let bytes = 0;
    const lines: string[] = [];
    const texts: string[] = [];
    for (const [k, [char, before]] of splits.entries()) {
      const opening = '{"text":"';
      const start = (k + 1) * chunk - before; // where `char` starts
      const filler = 'x'.repeat(start - bytes - opening.length);
      const text = `${filler}${char}é東😀 tail`;
      texts.push(text);
      const line = `${opening}${text}"}\n`;
      lines.push(line);
      bytes += Buffer.byteLength(line);
    }
    const content = Buffer.from(lines.join(''));
    for (const [k, [char, before]] of splits.entries()) {
      const start = (k + 1) * chunk - before;
      expect(content.subarray(start, start + Buffer.byteLength(char)).toString()).toBe(char); // it straddles the boundary
    }
    const path = await file('rows.jsonl', content);
    const { rows, bad } = await read(path, 'jsonl', true);
    expect(bad).toEqual([]);
    expect(rows.map((r) => r.fields.text)).toEqual(texts);
    expect(rows.map((r) => r.line)).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe('scanLabels', () => {
  it('sorts string names by code unit and integer names by value; single-label', async () => {
    const strings = await file('rows.csv', 'text,label\na,neg\nb,Pos\nc,neutral\nd,b\ne,neg\nf,\n');
    expect(await scanLabels(strings, false, undefined, { columns: COLUMNS })).toEqual({
      kind: 'single_label_classification',
      names: ['Pos', 'b', 'neg', 'neutral'],
    });
    const numbers = await jsonl([10, 9, 2, 0, 9, 100].map((label) => ({ text: 'a', label })));
    expect(await scanLabels(numbers, false, undefined, { columns: COLUMNS })).toEqual({
      kind: 'single_label_classification',
      names: ['0', '2', '9', '10', '100'],
    });
    const csvNumbers = await file('rows.csv', 'text,label\na,10\nb,9\nc,1\n');
    expect((await scanLabels(csvNumbers, false, undefined, { columns: COLUMNS })).names).toEqual(['1', '9', '10']);
  });

  it('infers multi-label from JSON lists and regression from numbers with fractions', async () => {
    const lists = await jsonl([
      { text: 'a', label: ['sports', 'arts'] },
      { text: 'b', label: [] },
      { text: 'c', label: ['politics'] },
    ]);
    expect(await scanLabels(lists, false, undefined, { columns: COLUMNS })).toEqual({
      kind: 'multi_label_classification',
      names: ['arts', 'politics', 'sports'],
    });
    const numbers = await jsonl([1, 2.5, 3, 0.25].map((label) => ({ text: 'a', label })));
    expect(await scanLabels(numbers, false, undefined, { columns: COLUMNS })).toEqual({
      kind: 'regression',
      names: ['label'],
    });
    const csv = await file('rows.csv', 'text,label\na,1\nb,0.5\n');
    expect((await scanLabels(csv, false, undefined, { columns: COLUMNS })).kind).toBe('regression');
  });

  it('keeps a given kind', async () => {
    const integers = await jsonl([1, 2, 3].map((label) => ({ text: 'a', label })));
    expect(await scanLabels(integers, false, 'regression', { columns: COLUMNS })).toEqual({
      kind: 'regression',
      names: ['label'],
    });
    const fractions = await file('rows.csv', 'text,label\na,low\nb,0.5\nc,1.5\nd,0.5\n');
    expect(await scanLabels(fractions, false, 'single_label_classification', { columns: COLUMNS })).toEqual({
      kind: 'single_label_classification',
      names: ['0.5', '1.5', 'low'],
    });
  });

  it('splits a multi-label CSV cell by the separator', async () => {
    const commas = await file('rows.csv', 'text,label\nx,"b, a"\ny,c\nz,"a,c,"\n');
    expect(await scanLabels(commas, false, 'multi_label_classification', { columns: COLUMNS })).toEqual({
      kind: 'multi_label_classification',
      names: ['a', 'b', 'c'],
    });
    const bars = await file('rows.csv', 'text,label\nx,b|a\ny,"c,d"\n');
    expect(
      await scanLabels(bars, false, 'multi_label_classification', { columns: { ...COLUMNS, separator: '|' } }),
    ).toEqual({ kind: 'multi_label_classification', names: ['a', 'b', 'c,d'] });
  });

  it('reads a token task’s tags; a file without a usable label is an Error', async () => {
    const path = await file('rows.conll', 'a O\nb B-X\n\nc I-X\n');
    expect(await scanLabels(path, true, undefined, { columns: TOKEN_COLUMNS })).toEqual({
      kind: 'token_classification',
      names: ['B-X', 'I-X', 'O'],
    });
    const none = await file('rows.csv', 'text,label\na,\nb,\n');
    await expect(scanLabels(none, false, undefined, { columns: COLUMNS })).rejects.toThrow(
      `data: '${none}' has no usable label in the column 'label'`,
    );
  });
});

describe('LabelledSet.read', () => {
  it('tokenizes the text as the tokenizer does, and the label as its index among the names', async () => {
    const texts = ['The river', 'Hello, World', 'cat', 'crane question'];
    const path = await jsonl(texts.map((text, i) => ({ text, label: ['b', 'a', 'c', 'a'][i] })));
    const set = await readSet(path);
    expect(set.labels).toEqual({ kind: 'single_label_classification', names: ['a', 'b', 'c'] });
    expect(set.size).toBe(4);
    expect(set.counts).toEqual({ examples: 4, truncated: 0, skipped: 0 });
    for (const [i, text] of texts.entries()) expect(Array.from(set.ids(i))).toEqual(encoded(text));
    expect(texts.map((_, i) => set.target(i))).toEqual([1, 0, 2, 0]);
  });

  it('tokenizes a pair as [CLS] text [SEP] pair [SEP], segments 0…0 1…1; a row without the pair alone', async () => {
    const path = await file('rows.csv', 'text,text_pair,label\nthe river,crane question,x\ncat,,y\n');
    const set = await readSet(path);
    expect(Array.from(set.ids(0))).toEqual(encoded('the river', 'crane question'));
    expect(Array.from(set.ids(0))).toEqual([2, ...pieces('the river'), 3, ...pieces('crane question'), 3]);
    expect(Array.from(set.ids(1))).toEqual(encoded('cat'));
    const { sequences } = set.batch([0, 1]);
    const first = pieces('the river').length + 2;
    const second = pieces('crane question').length + 1;
    expect(rowOf(sequences.segments, 0, sequences.seqLen)).toEqual([...Array(first).fill(0), ...Array(second).fill(1)]);
    expect(rowOf(sequences.segments, 1, sequences.seqLen)).toEqual(Array(sequences.seqLen).fill(0));

    const required = { ...COLUMNS, pairRequired: true };
    const error = await dataError(readSet(path, { columns: required }));
    expect([error.line, error.column]).toEqual([3, 'text_pair']);
    expect(error.message).toBe(`${path}:3 (column 'text_pair'): no second text ('text_pair')`);
  });

  it('a label not among the names is a DataError naming it; with onBadRow, skipped and counted', async () => {
    const path = await jsonl([
      { text: 'a', label: 'x' },
      { text: 'b', label: 'zzz' },
      { text: 'c', label: 'y' },
    ]);
    const labels: LabelSet = { kind: 'single_label_classification', names: ['x', 'y'] };
    const error = await dataError(readSet(path, { labels }));
    expect([error.file, error.line, error.column]).toEqual([path, 2, 'label']);
    expect(error.message).toBe(`${path}:2 (column 'label'): the label 'zzz' is not one of the model's (x, y)`);

    const bad: DataError[] = [];
    const set = await readSet(path, { labels, onBadRow: (e) => bad.push(e) });
    expect(set.counts).toEqual({ examples: 2, truncated: 0, skipped: 1 });
    expect(bad.map((e) => e.line)).toEqual([2]);
    expect([set.target(0), set.target(1)]).toEqual([0, 1]);
    expect(Array.from(set.ids(1))).toEqual(encoded('c'));
  });

  it('rows without a text or a label are bad rows', async () => {
    const path = await file('rows.csv', 'text,label\na,x\n,x\nb,\n  ,y\nc,y\n');
    const labels: LabelSet = { kind: 'single_label_classification', names: ['x', 'y'] };
    const error = await dataError(readSet(path, { labels }));
    expect([error.line, error.column]).toEqual([3, 'text']);
    expect(error.message).toBe(`${path}:3 (column 'text'): no text ('text')`);

    const bad: DataError[] = [];
    const set = await readSet(path, { labels, onBadRow: (e) => bad.push(e) });
    expect(bad.map((e) => [e.line, e.column, e.message.replace(`${path}:${e.line} `, '')])).toEqual([
      [3, 'text', "(column 'text'): no text ('text')"],
      [4, 'label', "(column 'label'): no label ('label')"],
      [5, 'text', "(column 'text'): no text ('text')"],
    ]);
    expect(set.counts).toEqual({ examples: 2, truncated: 0, skipped: 3 });
    // a bad row of the file (invalid JSON) is counted as skipped too
    const broken = await file('rows.jsonl', '{"text":"a","label":"x"}\n{oops\n');
    const skipped = await readSet(broken, { labels, onBadRow: () => {} });
    expect(skipped.counts).toEqual({ examples: 1, truncated: 0, skipped: 1 });
  });

  it('cuts a text to maxLen tokens and counts it', async () => {
    const long = 'the river and the crane question';
    const path = await jsonl([
      { text: long, label: 'x' },
      { text: 'cat', label: 'x' },
    ]);
    const maxLen = 5;
    expect(pieces(long).length).toBeGreaterThan(maxLen - 2);
    expect(pieces('cat').length).toBeLessThanOrEqual(maxLen - 2);
    const set = await readSet(path, { maxLen });
    expect(Array.from(set.ids(0))).toEqual([2, ...pieces(long).slice(0, maxLen - 2), 3]);
    expect(Array.from(set.ids(1))).toEqual(encoded('cat'));
    expect(set.counts).toEqual({ examples: 2, truncated: 1, skipped: 0 });
  });

  it('cuts the longer text of a pair first', async () => {
    const long = 'a b c d e f g h';
    const short = 'the river';
    const path = await jsonl([
      { text: long, text_pair: short, label: 'x' },
      { text: short, text_pair: long, label: 'x' },
      { text: long, text_pair: `${long} ${long}`, label: 'x' },
    ]);
    const maxLen = 9;
    const set = await readSet(path, { maxLen });
    const kept = maxLen - 3 - pieces(short).length; // of the longer text
    expect(kept).toBeGreaterThan(0);
    expect(Array.from(set.ids(0))).toEqual([2, ...pieces(long).slice(0, kept), 3, ...pieces(short), 3]);
    expect(Array.from(set.ids(1))).toEqual([2, ...pieces(short), 3, ...pieces(long).slice(0, kept), 3]);
    // both longer than their share: cut to (about) equal lengths
    const both = Array.from(set.ids(2));
    expect(both).toHaveLength(maxLen);
    const sep = both.indexOf(3);
    const [first, second] = [sep - 1, maxLen - sep - 2];
    expect(Math.abs(first - second)).toBeLessThanOrEqual(1);
    expect(both).toEqual([2, ...pieces(long).slice(0, first), 3, ...pieces(`${long} ${long}`).slice(0, second), 3]);
    expect(set.counts.truncated).toBe(3);
  });

  it('token classification: the tag on each word’s first sub-word, -100 on the others and on [CLS]/[SEP]', async () => {
    const words = ['The', 'cat', 'Hello', 'river'];
    const tags = ['O', 'B-X', 'I-X', 'O'];
    const path = await jsonl([{ tokens: words, tags }]);
    const set = await readSet(path, { token: true });
    expect(set.labels).toEqual({ kind: 'token_classification', names: ['B-X', 'I-X', 'O'] });
    const split = tokenizer.nativeTokenizer().splitWords(words);
    const lengths = words.map((_, w) => split.starts[w + 1] - split.starts[w]);
    expect(Math.max(...lengths)).toBeGreaterThan(1); // some word has several sub-words
    expect(Array.from(set.ids(0))).toEqual([2, ...split.ids, 3]);
    const expected: number[] = [IGNORED_LABEL];
    for (const [w, tag] of tags.entries()) {
      expected.push(['B-X', 'I-X', 'O'].indexOf(tag), ...Array(lengths[w] - 1).fill(IGNORED_LABEL));
    }
    expected.push(IGNORED_LABEL);
    expect(Array.from(set.target(0) as Int32Array)).toEqual(expected);
  });

  it('token classification: cut to maxLen, from CoNLL too', async () => {
    const path = await file('rows.conll', 'Hello O\ncat B-X\nriver O\n\nthe O\n');
    const maxLen = 4;
    const set = await readSet(path, { token: true, maxLen });
    const split = tokenizer.nativeTokenizer().splitWords(['Hello', 'cat', 'river']);
    expect(split.ids.length).toBeGreaterThan(maxLen - 2);
    expect(Array.from(set.ids(0))).toEqual([2, ...split.ids.subarray(0, maxLen - 2), 3]);
    const target = Array.from(set.target(0) as Int32Array);
    expect(target).toHaveLength(maxLen);
    expect(set.labels.names).toEqual(['B-X', 'O']);
    expect(target[1]).toBe(1); // 'Hello' is O
    expect(target[maxLen - 1]).toBe(IGNORED_LABEL);
    expect(Array.from(set.ids(1))).toEqual(encoded('the'));
    expect(set.counts).toEqual({ examples: 2, truncated: 1, skipped: 0 });
  });

  it('token classification: as many tags as words, words a list; CSV is a RangeError', async () => {
    const path = await jsonl([
      { tokens: ['a', 'b'], tags: ['O', 'O'] },
      { tokens: ['a', 'b', 'c'], tags: ['O', 'O'] },
      { tokens: 'a b', tags: ['O', 'O'] },
      { tokens: ['c'], tags: ['O'] },
    ]);
    const labels: LabelSet = { kind: 'token_classification', names: ['O'] };
    const error = await dataError(readSet(path, { token: true, labels }));
    expect([error.line, error.column]).toEqual([2, 'tags']);
    expect(error.message).toBe(`${path}:2 (column 'tags'): 2 tags for 3 words`);
    const bad: DataError[] = [];
    const set = await readSet(path, { token: true, labels, onBadRow: (e) => bad.push(e) });
    expect(bad.map((e) => [e.line, e.column])).toEqual([
      [2, 'tags'],
      [3, 'tokens'],
    ]);
    expect(set.counts).toEqual({ examples: 2, truncated: 0, skipped: 2 });

    const csv = await file('rows.csv', 'tokens,tags\na,O\n');
    await expect(readSet(csv, { token: true, labels })).rejects.toThrow(RangeError);
    await expect(readSet(csv, { token: true, labels })).rejects.toThrow(/token classification reads JSON Lines/);
  });
});

describe('LabelledSet batches', () => {
  it('pads to the longest row with the pad id; validLens the rows’ lengths; classes as an Int32Array', async () => {
    const texts = ['cat', 'the river and the crane', 'a'];
    const path = await jsonl(texts.map((text, i) => ({ text, label: i % 2 })));
    const set = await readSet(path);
    const batch = set.batch([2, 1, 0]);
    const { sequences } = batch;
    const lengths = [2, 1, 0].map((i) => encoded(texts[i]).length);
    expect(sequences.batchSize).toBe(3);
    expect(sequences.seqLen).toBe(Math.max(...lengths));
    expect(Array.from(sequences.validLens)).toEqual(lengths);
    for (const [r, i] of [2, 1, 0].entries()) {
      const padding = Array(sequences.seqLen - lengths[r]).fill(tokenizer.padId);
      expect(rowOf(sequences.tokens, r, sequences.seqLen)).toEqual([...encoded(texts[i]), ...padding]);
      expect(rowOf(sequences.segments, r, sequences.seqLen)).toEqual(Array(sequences.seqLen).fill(0));
    }
    expect(batch.rows).toEqual([2, 1, 0]);
    expect(batch.labels).toBeInstanceOf(Int32Array);
    expect(Array.from(batch.labels)).toEqual([0, 1, 0]);
  });

  it('multi-label: a Float32Array of rows × labels, 1 for each class of the row', async () => {
    const path = await jsonl([
      { text: 'a', label: ['c', 'a'] },
      { text: 'b', label: [] },
      { text: 'c', label: ['b', 'b'] },
    ]);
    const bad: DataError[] = [];
    const set = await readSet(path, { onBadRow: (e) => bad.push(e) });
    expect(set.labels.names).toEqual(['a', 'b', 'c']);
    expect(bad).toEqual([]);
    const { labels } = set.batch([0, 1, 2]);
    expect(labels).toBeInstanceOf(Float32Array);
    expect(Array.from(labels)).toEqual([1, 0, 1, 0, 0, 0, 0, 1, 0]);
  });

  it('regression: a Float32Array of the numbers', async () => {
    const path = await file('rows.csv', 'text,label\na,0.5\nb,-2.25\nc,3\n');
    const set = await readSet(path);
    expect(set.labels.kind).toBe('regression');
    const { labels } = set.batch([1, 2, 0]);
    expect(labels).toBeInstanceOf(Float32Array);
    expect(Array.from(labels)).toEqual([-2.25, 3, 0.5]);
  });

  it('token classification: an Int32Array of rows × seqLen, -100 past each row', async () => {
    const path = await jsonl([
      { tokens: ['cat', 'river'], tags: ['B', 'O'] },
      { tokens: ['a'], tags: ['B'] },
    ]);
    const set = await readSet(path, { token: true });
    const { sequences, labels } = set.batch([0, 1]);
    expect(labels).toBeInstanceOf(Int32Array);
    expect(labels).toHaveLength(2 * sequences.seqLen);
    const first = Array.from(set.target(0) as Int32Array);
    expect(sequences.seqLen).toBe(first.length);
    expect(rowOf(labels, 0, sequences.seqLen)).toEqual(first);
    expect(rowOf(labels, 1, sequences.seqLen)).toEqual([
      IGNORED_LABEL,
      0,
      IGNORED_LABEL,
      ...Array(sequences.seqLen - 3).fill(IGNORED_LABEL),
    ]);
    expect(sequences.seqLen).toBeGreaterThan(3);
  });

  /** A regression set of `n` texts of 1 to 12 words, example `i` labelled `i` (to tell them apart). */
  async function numbered(n: number): Promise<LabelledSet> {
    const rows = Array.from({ length: n }, (_, i) => ({
      text: 'a b '.repeat(1 + ((i * 7) % 12)).trim(),
      label: i + 0.5,
    }));
    return readSet(await jsonl(rows));
  }
  const order = (set: LabelledSet, batchSize: number, options: Parameters<LabelledSet['batches']>[1]) =>
    [...set.batches(batchSize, options)].flatMap((b) => b.rows);

  it('serves every example once an epoch, in an order drawn from the seed and the epoch', async () => {
    const set = await numbered(40);
    const epoch0 = order(set, 6, { epoch: 0, seed: 7, shuffle: true });
    expect(order(set, 6, { epoch: 0, seed: 7, shuffle: true })).toEqual(epoch0);
    const epoch1 = order(set, 6, { epoch: 1, seed: 7, shuffle: true });
    const seed8 = order(set, 6, { epoch: 0, seed: 8, shuffle: true });
    const all = Array.from({ length: 40 }, (_, i) => i);
    for (const o of [epoch0, epoch1, seed8]) expect([...o].sort((a, b) => a - b)).toEqual(all);
    expect(epoch1).not.toEqual(epoch0);
    expect(seed8).not.toEqual(epoch0);
    expect(epoch0).not.toEqual(all);
    expect(order(set, 6, { epoch: 3, seed: 7, shuffle: false })).toEqual(all);
    const batches = [...set.batches(6, { epoch: 0, seed: 7, shuffle: true })];
    expect(batches.map((b) => b.rows.length)).toEqual([6, 6, 6, 6, 6, 6, 4]);
    expect(set.numBatches(6)).toBe(7);
    // each batch's labels are its rows' targets
    for (const b of batches) expect(Array.from(b.labels)).toEqual(b.rows.map((i) => i + 0.5));
  });

  it('groupByLength sorts each run of 50 batches longest first', async () => {
    const set = await numbered(230);
    const options = { epoch: 2, seed: 11, shuffle: true };
    const plain = order(set, 2, options);
    const grouped = order(set, 2, { ...options, groupByLength: true });
    const length = (i: number) => set.ids(i).length;
    for (let start = 0; start < 230; start += 100) {
      const part = grouped.slice(start, start + 100);
      expect([...part].sort((a, b) => a - b)).toEqual(plain.slice(start, start + 100).sort((a, b) => a - b));
      for (let k = 1; k < part.length; k++) expect(length(part[k - 1])).toBeGreaterThanOrEqual(length(part[k]));
    }
    expect(new Set(grouped.map(length)).size).toBeGreaterThan(5);
    // not one sort of everything: the last group starts long again
    expect(length(grouped[200])).toBeGreaterThan(length(grouped[199]));
  });

  it('split(fraction, seed): round(fraction × n) held out, deterministic, disjoint, covering, in file order', async () => {
    const set = await numbered(30);
    const [rest, held] = set.split(0.23, 5);
    expect([rest.size, held.size]).toEqual([30 - Math.round(0.23 * 30), Math.round(0.23 * 30)]);
    const targets = (s: LabelledSet) => Array.from({ length: s.size }, (_, i) => s.target(i) as number);
    const [r, h] = [targets(rest), targets(held)];
    expect([...r, ...h].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 0.5));
    expect(r).toEqual([...r].sort((a, b) => a - b));
    expect(h).toEqual([...h].sort((a, b) => a - b));
    const [rest2, held2] = set.split(0.23, 5);
    expect([targets(rest2), targets(held2)]).toEqual([r, h]);
    expect(targets(set.split(0.23, 6)[1])).not.toEqual(h);
    // the examples keep their ids
    expect(Array.from(held.ids(0))).toEqual(Array.from(set.ids(h[0] - 0.5)));
    expect(held.labels).toEqual(set.labels);
    expect(set.split(0.01, 5).map((s) => s.size)).toEqual([29, 1]);
  });
});
