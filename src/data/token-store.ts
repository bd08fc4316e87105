/**
 * Token ids end to end, held in memory while they fit a budget and in a temporary file past
 * it: what keeps preparing a large corpus within a bounded amount of memory.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Token ids end to end, read by range. */
export interface TokenStore {
  /** Number of ids. */
  readonly length: number;
  /** Ids `[start, end)`: a view of memory, or a fresh array read from the file. */
  read(start: number, end: number): Int32Array;
  /** Frees the memory or closes (and removes) the file. */
  close(): void;
}

/** Ids held in one array. */
export class MemoryTokens implements TokenStore {
  readonly #ids: Int32Array;

  constructor(ids: Int32Array) {
    this.#ids = ids;
  }

  get length(): number {
    return this.#ids.length;
  }

  read(start: number, end: number): Int32Array {
    return this.#ids.subarray(start, end);
  }

  close(): void {}
}

/** Ids in a temporary file (removed as soon as it is open, so that nothing outlives the process). */
class FileTokens implements TokenStore {
  #fd: number | undefined;
  readonly length: number;

  constructor(fd: number, length: number) {
    this.#fd = fd;
    this.length = length;
  }

  read(start: number, end: number): Int32Array {
    if (this.#fd === undefined) throw new Error('data: the token file is closed');
    const out = new Int32Array(end - start);
    const bytes = Buffer.from(out.buffer);
    let done = 0;
    while (done < bytes.length) {
      const n = readSync(this.#fd, bytes, done, bytes.length - done, start * 4 + done);
      if (n === 0) throw new Error('data: the token file ended early');
      done += n;
    }
    return out;
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/** Where temporary token files go: `TSBERT_TMPDIR`, else the system's temporary folder. */
export function tokenFileDir(): string {
  return process.env.TSBERT_TMPDIR || tmpdir();
}

/**
 * Collects ids in memory up to `memoryBytes`, then moves them to a temporary file in
 * `dir` and appends there.
 */
export class TokenWriter {
  readonly #memoryBytes: number;
  readonly #dir: string;
  #buffer: Int32Array = new Int32Array(1024);
  #used = 0;
  #fd: number | undefined;
  #written = 0;

  constructor(memoryBytes: number, dir = tokenFileDir()) {
    this.#memoryBytes = memoryBytes;
    this.#dir = dir;
  }

  /** Ids so far. */
  get length(): number {
    return this.#written + this.#used;
  }

  /** Whether the ids went to a file. */
  get spilled(): boolean {
    return this.#fd !== undefined;
  }

  /** Appends one id. */
  push(id: number): void {
    if (this.#used === this.#buffer.length) this.#grow();
    this.#buffer[this.#used++] = id;
  }

  /** Appends `ids`. */
  pushAll(ids: Int32Array): void {
    for (let k = 0; k < ids.length; k++) this.push(ids[k]);
  }

  /** The store of every id pushed; the writer is spent. */
  finish(): TokenStore {
    if (this.#fd === undefined) return new MemoryTokens(this.#buffer.slice(0, this.#used));
    this.#flush();
    const store = new FileTokens(this.#fd, this.#written);
    this.#fd = undefined;
    return store;
  }

  /** Doubles the buffer while it fits the budget; past it, writes it to the file. */
  #grow(): void {
    if (this.#fd === undefined && this.#buffer.byteLength * 2 <= this.#memoryBytes) {
      const bigger = new Int32Array(this.#buffer.length * 2);
      bigger.set(this.#buffer);
      this.#buffer = bigger;
      return;
    }
    if (this.#fd === undefined) this.#fd = openTemporary(this.#dir);
    this.#flush();
  }

  #flush(): void {
    const bytes = Buffer.from(this.#buffer.buffer, 0, this.#used * 4);
    let done = 0;
    while (done < bytes.length) done += writeSync(this.#fd as number, bytes, done, bytes.length - done);
    this.#written += this.#used;
    this.#used = 0;
  }
}

/** Opens a new file in `dir` for reading and writing and removes its name (where the system allows). */
function openTemporary(dir: string): number {
  const path = join(dir, `tsbert-tokens-${process.pid}-${randomBytes(6).toString('hex')}.bin`);
  let fd: number;
  try {
    fd = openSync(path, 'wx+');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new Error(`data: cannot write the corpus's token file in '${dir}' (${code}); set TSBERT_TMPDIR`, { cause });
  }
  try {
    unlinkSync(path);
  } catch {
    // Windows keeps an open file's name: the file goes when the process exits
    process.once('exit', () => {
      try {
        closeSync(fd);
        unlinkSync(path);
      } catch {}
    });
  }
  return fd;
}
