/**
 * The rows of a labelled data file, streamed: CSV and TSV (a header row naming the columns;
 * parsed by `csv-parse`), JSON Lines (an object a line) and CoNLL's column format (a word and
 * its tag a line, the tag in the last column, a blank line between sentences, `-DOCSTART-`
 * lines skipped). Each row comes with the line it starts on; a row that cannot be read (invalid
 * UTF-8, a line that is not a JSON object, a CSV record with a field count other than the
 * header's or a quote that is never closed) is a {@link DataError} naming the file, the line and
 * the column — or, asked to skip bad rows, left out and reported.
 *
 * @module
 */

import { isUtf8 } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { pipeline, Readable } from 'node:stream';
import { type CsvError, parse } from 'csv-parse';

import { DataError } from '../errors.js';

/** The layouts of a labelled data file. */
export type LabelledFormat = 'csv' | 'tsv' | 'jsonl' | 'conll';

/** The layouts {@link labelledFormatOf} tells from a file's extension. */
export const LABELLED_FORMATS: readonly LabelledFormat[] = ['csv', 'tsv', 'jsonl', 'conll'];

/** One row: its fields by name (CoNLL: `tokens` and `tags`) and the line it starts on. */
export interface RawRow {
  /** 1-based line of the file the row starts on. */
  line: number;
  /** The fields: strings (CSV, TSV, CoNLL's word and tag lists) or JSON values (JSON Lines). */
  fields: Record<string, unknown>;
}

/** How rows are read. */
export interface ReadRowsOptions {
  /** Called with each row that cannot be read, which is then left out; absent: the row's error is thrown. */
  onBadRow?: (error: DataError) => void;
  /** Stops the reading (the generator throws the signal's reason). */
  signal?: AbortSignal;
}

/** The layout of `path` from its extension (`.csv`, `.tsv`/`.tab`, `.jsonl`/`.ndjson`/`.json`, `.conll`/`.txt`/…). */
export function labelledFormatOf(path: string): LabelledFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.tsv' || ext === '.tab') return 'tsv';
  if (ext === '.jsonl' || ext === '.ndjson' || ext === '.json') return 'jsonl';
  return 'conll';
}

/** Where a byte buffer's last complete UTF-8 character ends (the bytes after it wait for the next chunk). */
function completeUpTo(bytes: Uint8Array): number {
  const end = bytes.length;
  for (let i = end - 1; i >= Math.max(0, end - 3); i--) {
    const b = bytes[i];
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const needed = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return end - i < needed ? i : end;
  }
  return end;
}

/** Lines and columns of text read so far (1-based position of the next character). */
class Position {
  line = 1;
  column = 1;

  /** Moves past `text`. */
  advance(text: string): void {
    const last = text.lastIndexOf('\n');
    if (last < 0) {
      this.column += text.length;
      return;
    }
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) this.line++;
    this.column = text.length - last;
  }
}

/**
 * The text of `path` in chunks, checked to be UTF-8. Invalid bytes are a {@link DataError} at
 * their line and column; with `onInvalid`, they become U+FFFD, `onInvalid` is called with the
 * first one's line, and reading goes on.
 */
async function* utf8Text(path: string, onInvalid?: (line: number) => void): AsyncGenerator<string> {
  const at = new Position();
  let carry: Uint8Array = new Uint8Array(0);
  let reported = false;
  const checked = (bytes: Uint8Array): string => {
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    if (reported || isUtf8(bytes)) return text;
    const bad = text.indexOf('\uFFFD'); // the first replacement (a U+FFFD in the file itself can only come earlier)
    const where = new Position();
    where.line = at.line;
    where.column = at.column;
    where.advance(text.slice(0, Math.max(0, bad)));
    if (!onInvalid) throw new DataError('invalid UTF-8', path, where.line, where.column);
    reported = true;
    onInvalid(where.line);
    return text;
  };
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    const bytes = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
    const cut = completeUpTo(bytes);
    carry = bytes.subarray(cut);
    const text = checked(bytes.subarray(0, cut));
    at.advance(text);
    yield text;
  }
  if (carry.length > 0) yield checked(carry);
}

/** The lines of `text` chunks (without their `\n` or `\r\n`), each with its 1-based number. */
async function* numberedLines(chunks: AsyncIterable<string>): AsyncGenerator<[string, number]> {
  let rest = '';
  let line = 0;
  for await (const chunk of chunks) {
    rest += chunk;
    let start = 0;
    for (let end = rest.indexOf('\n'); end >= 0; end = rest.indexOf('\n', start)) {
      yield [rest.slice(start, end).replace(/\r$/, ''), ++line];
      start = end + 1;
    }
    rest = rest.slice(start);
  }
  if (rest !== '') yield [rest.replace(/\r$/, ''), ++line];
}

/** Whether `row` has a U+FFFD where the file had invalid UTF-8 (at or after `from`). */
function garbled(row: RawRow, from: number | undefined): boolean {
  return from !== undefined && row.line >= from - 1 && JSON.stringify(row.fields).includes('\uFFFD');
}

/**
 * The rows of the labelled file `path` in `format`, streamed (see the module's doc). A missing
 * file is an `Error` naming it; a file with no rows is fine (the caller decides).
 */
export async function* readRows(
  path: string,
  format: LabelledFormat,
  options: ReadRowsOptions = {},
): AsyncGenerator<RawRow> {
  const { onBadRow, signal } = options;
  const info = await stat(path).catch((cause: NodeJS.ErrnoException) => {
    throw new Error(`data: cannot read '${path}' (${cause.code ?? cause.message})`, { cause });
  });
  if (!info.isFile()) throw new Error(`data: '${path}' is not a file`);
  let invalidFrom: number | undefined;
  const text = utf8Text(
    path,
    onBadRow &&
      ((line) => {
        invalidFrom = line;
      }),
  );
  const rows =
    format === 'csv' || format === 'tsv'
      ? csvRows(path, text, format === 'tsv' ? '\t' : ',', onBadRow)
      : format === 'jsonl'
        ? jsonRows(path, text, onBadRow)
        : conllRows(path, text, onBadRow);
  for await (const row of rows) {
    signal?.throwIfAborted();
    if (garbled(row, invalidFrom)) {
      onBadRow?.(new DataError('invalid UTF-8', path, row.line));
      continue;
    }
    yield row;
  }
}

/** A bad row: reported and skipped with `onBadRow`, else thrown. */
function bad(error: DataError, onBadRow: ((error: DataError) => void) | undefined): void {
  if (!onBadRow) throw error;
  onBadRow(error);
}

/** CSV or TSV rows: the header names the fields. */
async function* csvRows(
  path: string,
  text: AsyncIterable<string>,
  delimiter: string,
  onBadRow?: (error: DataError) => void,
): AsyncGenerator<RawRow> {
  let lastLine = 1; // the header's
  const parser = parse({
    delimiter,
    columns: true,
    bom: true,
    info: true,
    skip_empty_lines: true,
    quote: delimiter === '\t' ? false : '"',
    skip_records_with_error: onBadRow !== undefined,
    on_skip: (error: CsvError | undefined) => {
      if (error) onBadRow?.(csvError(path, error, lastLine));
    },
  });
  pipeline(Readable.from(text), parser, () => {}); // a failure of the text ends the parser with it
  try {
    for await (const { record, info } of parser as AsyncIterable<{
      record: Record<string, string>;
      info: { lines: number };
    }>) {
      const line = lastLine + 1;
      lastLine = info.lines;
      yield { line, fields: record };
    }
  } catch (error) {
    if ((error as CsvError).code === undefined) throw error;
    throw csvError(path, error as CsvError, lastLine);
  }
}

/** A {@link DataError} from csv-parse's error, the record starting after line `lastLine`. */
function csvError(path: string, error: CsvError, lastLine: number): DataError {
  const { code } = error;
  const line = lastLine + 1;
  const field = (error as unknown as { column?: string | number }).column;
  if (code === 'CSV_QUOTE_NOT_CLOSED') {
    return new DataError('a quoted field opened here is never closed', path, line, field ?? undefined);
  }
  if (code === 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH' || code === 'CSV_RECORD_INCONSISTENT_COLUMNS') {
    return new DataError(`the row has another number of fields than the header (${error.message})`, path, line);
  }
  return new DataError(error.message, path, line, typeof field === 'string' ? field : undefined);
}

/** JSON Lines rows: each non-empty line an object. */
async function* jsonRows(
  path: string,
  text: AsyncIterable<string>,
  onBadRow?: (error: DataError) => void,
): AsyncGenerator<RawRow> {
  for await (const [content, line] of numberedLines(text)) {
    if (content.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(content);
    } catch (error) {
      const position = /position (\d+)/.exec((error as Error).message);
      const column = position ? Number(position[1]) + 1 : undefined;
      bad(new DataError(`not JSON (${(error as Error).message})`, path, line, column), onBadRow);
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      bad(new DataError('expected a JSON object a line', path, line), onBadRow);
      continue;
    }
    yield { line, fields: value as Record<string, unknown> };
  }
}

/** CoNLL rows: a sentence's words and tags (the first and last column of each line). */
async function* conllRows(
  path: string,
  text: AsyncIterable<string>,
  onBadRow?: (error: DataError) => void,
): AsyncGenerator<RawRow> {
  let tokens: string[] = [];
  let tags: string[] = [];
  let start = 0;
  let broken: DataError | undefined;
  const sentence = (): RawRow | undefined => {
    const row = tokens.length > 0 && !broken ? { line: start, fields: { tokens, tags } } : undefined;
    if (broken) bad(broken, onBadRow);
    tokens = [];
    tags = [];
    broken = undefined;
    return row;
  };
  for await (const [content, line] of numberedLines(text)) {
    const columns = content.trim().split(/\s+/);
    if (content.trim() === '' || columns[0] === '-DOCSTART-') {
      const row = sentence();
      if (row) yield row;
      continue;
    }
    if (tokens.length === 0) start = line;
    if (columns.length < 2) {
      broken ??= new DataError(`expected a word and its tag, got '${content.trim()}'`, path, line);
      continue;
    }
    tokens.push(columns[0]);
    tags.push(columns[columns.length - 1]);
  }
  const row = sentence();
  if (row) yield row;
}
