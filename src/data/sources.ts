/**
 * Where a corpus comes from: a file, a folder (its `wiki.train.tokens`, or every file in it),
 * a glob pattern, or paragraph lines given in memory; read a line at a time.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';

import { type CorpusFormat, formatOf } from './formats.js';

/** A file, a folder or a glob pattern of corpus files, or paragraph lines (WikiText format). */
export type CorpusSource = string | readonly string[];

/** The file read when a folder holding it is given (the WikiText-2 layout). */
export const TRAIN_FILE = 'wiki.train.tokens';
/** The held-out file that sits beside {@link TRAIN_FILE}. */
export const VALID_FILE = 'wiki.valid.tokens';

/** One file of a corpus and how it is laid out. */
export interface CorpusFile {
  /** Its path. */
  path: string;
  /** Its layout. */
  format: CorpusFormat;
  /** Its size in bytes. */
  bytes: number;
}

function unreadable(path: string, cause: unknown): Error {
  const code = (cause as NodeJS.ErrnoException).code;
  const what = code === 'ENOENT' ? 'no such file or folder' : `cannot be read (${code ?? String(cause)})`;
  return new Error(`data: '${path}': ${what}`, { cause });
}

/**
 * The files of `source`: a file; a folder's {@link TRAIN_FILE} if it holds one (its
 * {@link VALID_FILE} for a held-out corpus, `heldOut`), else every (non-hidden) file under it,
 * sorted; or the files a glob pattern (`corpus/*.jsonl`) matches. `format` `'auto'` (the
 * default) picks each file's by extension (`.jsonl`/`.ndjson`: JSON Lines, else WikiText). An
 * `Error` naming the path when nothing is there, or when a held-out folder holds only a
 * training file.
 */
export async function corpusFiles(
  source: string,
  format: CorpusFormat | 'auto' = 'auto',
  heldOut = false,
): Promise<CorpusFile[]> {
  const { glob, isDynamicPattern } = await import('tinyglobby'); // loaded here, not by every import of tsbert
  const withFormat = async (path: string): Promise<CorpusFile> => {
    const info = await stat(path).catch((cause: unknown) => {
      throw unreadable(path, cause);
    });
    // a FIFO or a device (say, a link to one in a folder) would block or never end: only files
    if (!info.isFile()) throw new Error(`data: '${path}' is not a regular file (a FIFO, socket or device)`);
    return { path, format: format === 'auto' ? formatOf(path) : format, bytes: info.size };
  };
  const info = await stat(source).catch((cause: unknown) => {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT' && isDynamicPattern(source)) return undefined;
    throw unreadable(source, cause);
  });
  if (info?.isFile()) return [await withFormat(source)];
  let paths: string[];
  if (info?.isDirectory()) {
    const isFile = (path: string) =>
      stat(path).then(
        (s) => s.isFile(),
        () => false,
      );
    const [train, valid] = [join(source, TRAIN_FILE), join(source, VALID_FILE)];
    if (heldOut && (await isFile(valid))) return [await withFormat(valid)];
    if (await isFile(train)) {
      if (heldOut) {
        throw new Error(
          `data: '${source}' holds ${TRAIN_FILE} but no ${VALID_FILE}: give the held-out file itself (the training file is no held-out set)`,
        );
      }
      return [await withFormat(train)];
    }
    paths = await glob('**/*', { cwd: source, absolute: true, onlyFiles: true });
  } else if (info) {
    throw new Error(`data: '${source}' is neither a file nor a folder`);
  } else {
    paths = await glob(source, { absolute: true, onlyFiles: true });
  }
  if (paths.length === 0)
    throw new Error(`data: '${source}': no file ${info ? 'in the folder' : 'matches the pattern'}`);
  return Promise.all(paths.sort().map(withFormat));
}

/**
 * The lines of `path` (ends of line as Python's universal newlines see them: `\n`, `\r\n` or
 * `\r`), read a chunk at a time, a byte-order mark at the start left out. A line longer than
 * `maxChars` is a `RangeError` as soon as that many characters are read without an end of
 * line (memory stays bounded). `signal` stops the reading after the chunk in hand, with its
 * reason.
 */
export async function* fileLines(path: string, maxChars: number, signal?: AbortSignal): AsyncGenerator<string> {
  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 });
  await new Promise<void>((ready, fail) => {
    stream.once('open', () => ready());
    stream.once('error', (cause) => fail(unreadable(path, cause)));
  });
  yield* streamLines(stream, `data: '${path}'`, maxChars, signal);
}

/**
 * The lines of a text `stream` (see {@link fileLines}); `what` names it in the errors: a line
 * over `maxChars` (a `RangeError`), or a read that fails.
 */
export async function* streamLines(
  stream: NodeJS.ReadableStream & { destroy(): void },
  what: string,
  maxChars: number,
  signal?: AbortSignal,
): AsyncGenerator<string> {
  let rest = '';
  let line = 0;
  let first = true;
  try {
    for await (const chunk of stream as AsyncIterable<string>) {
      if (signal?.aborted) signal.throwIfAborted();
      let text = rest + chunk;
      if (first && text.startsWith('\uFEFF')) text = text.slice(1); // a UTF-8 byte-order mark
      first = false;
      // a chunk ending in \r may be the first half of \r\n: hold the \r back for the next chunk
      const held = text.endsWith('\r') ? '\r' : '';
      if (held) text = text.slice(0, -1);
      const lines = text.split(/\r\n|\n|\r/);
      rest = (lines.pop() as string) + held;
      line += lines.length;
      if (rest.length > maxChars) {
        throw new RangeError(`${what}: line ${line + 1} is over ${maxChars} characters long`);
      }
      yield* lines;
    }
  } catch (cause) {
    if (cause instanceof RangeError || (signal?.aborted && cause === signal.reason)) throw cause;
    const code = (cause as NodeJS.ErrnoException).code;
    throw new Error(`${what}: cannot be read (${code ?? (cause as Error).message})`, { cause });
  } finally {
    stream.destroy();
  }
  if (rest.endsWith('\r')) rest = rest.slice(0, -1);
  if (rest !== '') yield rest;
}
