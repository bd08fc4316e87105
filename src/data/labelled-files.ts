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
import type { CsvError } from 'csv-parse';

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
 * The text of `path` in chunks (a leading BOM left out), checked to be UTF-8. Invalid bytes
 * are a {@link DataError} at their line and column; with `onInvalid`, they become U+FFFD,
 * `onInvalid` is called with the first one's line, and reading goes on.
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
  let first = true;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    let bytes = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
    if (first && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3); // a BOM
    first = false;
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

/** `text` chunks with each `\r\n` made `\n` (csv-parse counts a `\r\n` inside a quoted field as two lines). */
async function* lfLineEnds(text: AsyncIterable<string>): AsyncGenerator<string> {
  let cr = false; // the last chunk ended with a `\r`, held back
  for await (let chunk of text) {
    if (cr) chunk = `\r${chunk}`;
    cr = chunk.endsWith('\r');
    if (cr) chunk = chunk.slice(0, -1);
    if (chunk !== '') yield chunk.replace(/\r\n/g, '\n');
  }
  if (cr) yield '\r';
}

/** The number of `\n` in `text`. */
const lineEnds = (text: string) => text.split('\n').length - 1;

/**
 * Where a CSV record read so far starts: `raw`, its text (with the blank lines before it and,
 * when it is whole, its line end), lies on lines up to `lines` (csv-parse's count).
 */
function recordStart(lines: number, raw: string): { line: number; text: string } {
  const text = raw.replace(/^\n+/, '').replace(/\n$/, '');
  return { line: lines - lineEnds(text), text };
}

/**
 * CSV or TSV rows: the header names the fields. Line ends inside a quoted field read as `\n`.
 * Each row's line comes from what csv-parse tells with the row (or the error), as it may parse
 * ahead of the rows taken.
 */
async function* csvRows(
  path: string,
  text: AsyncIterable<string>,
  delimiter: string,
  onBadRow?: (error: DataError) => void,
): AsyncGenerator<RawRow> {
  const csv = await import('csv-parse'); // loaded by the first CSV or TSV file, not by every import of tsbert
  const parser = csv.parse({
    delimiter,
    columns: true,
    bom: true,
    info: true,
    raw: true,
    skip_empty_lines: true,
    quote: delimiter === '\t' ? false : '"',
    skip_records_with_error: onBadRow !== undefined,
    on_skip: (error: CsvError | undefined) => {
      if (error) onBadRow?.(csvError(path, error));
    },
  });
  pipeline(Readable.from(lfLineEnds(text)), parser, () => {}); // a failure of the text ends the parser with it
  try {
    for await (const { record, raw, info } of parser as AsyncIterable<{
      record: Record<string, string>;
      raw: string;
      info: { lines: number };
    }>) {
      yield { line: recordStart(info.lines, raw).line, fields: record };
    }
  } catch (error) {
    if (!(error instanceof csv.CsvError)) throw error; // the text's (invalid UTF-8, a read error)
    throw csvError(path, error);
  }
}

/** A {@link DataError} from csv-parse's error (which tells the line it got to and the record's text so far). */
function csvError(path: string, error: CsvError): DataError {
  const { code } = error;
  const context = error as { lines?: number; raw?: string; column?: string | number | null };
  const { line, text } = recordStart(context.lines ?? 1, context.raw ?? '');
  const field = context.column ?? undefined;
  if (code === 'CSV_QUOTE_NOT_CLOSED') {
    let open = 0; // where the quote that is never closed opens
    for (let i = 0, quoted = false; i < text.length; i++) {
      if (text[i] !== '"') continue;
      quoted = !quoted;
      if (quoted) open = i;
    }
    return new DataError(
      'a quoted field opened here is never closed',
      path,
      line + lineEnds(text.slice(0, open)),
      field,
    );
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
      const at = position ? Number(position[1]) : notJsonAt(content);
      const column = at === undefined ? undefined : at + 1;
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

/**
 * Where `text`, which `JSON.parse` refused, stops being JSON (0-based): for the errors whose
 * message gives no position (V8's "Unexpected token").
 */
function notJsonAt(text: string): number | undefined {
  let i = 0;
  const fail = (): never => {
    throw i;
  };
  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const word = (w: string) => {
    for (const c of w) {
      if (text[i] !== c) fail();
      i++;
    }
  };
  const string = () => {
    i++; // the opening quote
    for (;;) {
      const c = text[i];
      if (c === undefined || c < ' ') fail();
      if (c === '"') break;
      if (c === '\\') {
        i++;
        if (text[i] === 'u') {
          for (let k = 0; k < 4; k++) {
            i++;
            if (!/[0-9a-fA-F]/.test(text[i] ?? '')) fail();
          }
        } else if (!'"\\/bfnrt'.includes(text[i] ?? '.')) fail();
      }
      i++;
    }
    i++;
  };
  const digits = (atLeastOne: boolean) => {
    const start = i;
    while (text[i] >= '0' && text[i] <= '9') i++;
    if (atLeastOne && i === start) fail();
  };
  const value = (): void => {
    space();
    const c = text[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      space();
      if (text[i] === close) {
        i++;
        return;
      }
      for (;;) {
        if (c === '{') {
          space();
          if (text[i] !== '"') fail();
          string();
          space();
          if (text[i] !== ':') fail();
          i++;
        }
        value();
        space();
        if (text[i] === close) {
          i++;
          return;
        }
        if (text[i] !== ',') fail();
        i++;
      }
    }
    if (c === '"') {
      string();
      return;
    }
    if (c === 't' || c === 'f' || c === 'n') {
      word(c === 't' ? 'true' : c === 'f' ? 'false' : 'null');
      return;
    }
    if (c === '-' || (c >= '0' && c <= '9')) {
      if (c === '-') i++;
      if (text[i] === '0') i++;
      else digits(true);
      if (text[i] === '.') {
        i++;
        digits(true);
      }
      if (text[i] === 'e' || text[i] === 'E') {
        i++;
        if (text[i] === '+' || text[i] === '-') i++;
        digits(true);
      }
      return;
    }
    fail();
  };
  try {
    value();
    space();
    return i < text.length ? i : undefined; // what follows the value
  } catch (at) {
    return typeof at === 'number' ? at : undefined; // undefined: nested too deep to follow
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
