/**
 * What the `tsbert` commands read: lines of a file or of standard input, a chunk at a time.
 *
 * @internal
 * @module
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

import { streamLines } from '../data/sources.js';

/** The longest line a command takes, in characters. */
const MAX_LINE_CHARS = 1 << 24;

/**
 * The lines of `input` (a file, or `-` for standard input), `size` at a time. A folder, a
 * missing file or a line over {@link MAX_LINE_CHARS} (say, `/dev/zero`) is an `Error` naming
 * `--input`.
 */
export async function* lineChunks(input: string, size: number): AsyncGenerator<string[]> {
  let stream: NodeJS.ReadableStream & { destroy(): void } = process.stdin;
  if (input !== '-') {
    const info = await stat(input).catch((error: NodeJS.ErrnoException) => {
      throw new Error(`--input: '${input}': ${error.code === 'ENOENT' ? 'no such file' : error.code}`);
    });
    if (info.isDirectory()) throw new Error(`--input: '${input}' is a folder, not a file`);
    stream = createReadStream(input, { encoding: 'utf8', highWaterMark: 1 << 20 });
  } else {
    process.stdin.setEncoding('utf8');
  }
  let chunk: string[] = [];
  for await (const line of streamLines(stream, `--input: '${input}'`, MAX_LINE_CHARS)) {
    chunk.push(line);
    if (chunk.length === size) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length > 0) yield chunk;
}
