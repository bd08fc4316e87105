/**
 * WikiText-2 fetched once into a cache folder and reused offline, as the textbook's
 * `d2l.download_extract('wikitext-2', 'wikitext-2')` does: the zip is downloaded, checked
 * against its SHA-1, and its `wiki.*.tokens` files are extracted into `<cacheDir>/wikitext-2`.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where WikiText-2 is downloaded from, and the SHA-1 of that zip (the textbook's `DATA_HUB['wikitext-2']`). */
export const WIKITEXT2 = Object.freeze({
  /** The textbook's archive. */
  url: 'https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip',
  /** Its published SHA-1. */
  sha1: '3c914d17d80b1459be871a5039ac23e752a53cbe',
});

/** The folder inside the cache folder that holds the extracted files. */
const FOLDER = 'wikitext-2';
/** The files extracted, written in this order so that the train file, written last, marks a complete folder. */
const FILES = ['wiki.test.tokens', 'wiki.valid.tokens', 'wiki.train.tokens'] as const;
/** The files a usable folder must hold. */
const REQUIRED = ['wiki.train.tokens', 'wiki.valid.tokens'] as const;

/**
 * The cache folder: `$TSBERT_CACHE` if set, else `$XDG_CACHE_HOME/tsbert` if `XDG_CACHE_HOME` is
 * set, else `~/.cache/tsbert`.
 */
export function defaultCacheDir(): string {
  const own = process.env.TSBERT_CACHE;
  if (own) return own;
  const xdg = process.env.XDG_CACHE_HOME;
  if (xdg) return join(xdg, 'tsbert');
  return join(homedir(), '.cache', 'tsbert');
}

/** How much of the download has arrived: bytes received, and the size announced by the server, if any. */
export interface DownloadProgress {
  /** Bytes received so far. */
  received: number;
  /** The size the server announced, if it did. */
  total: number | undefined;
}

/** Options of {@link wikiText2}. */
export interface WikiTextDownloadOptions {
  /** The cache folder; {@link defaultCacheDir} by default. */
  cacheDir?: string;
  /** Where to download the zip from; `TSBERT_WIKITEXT_URL` (a mirror) if set, else {@link WIKITEXT2}'s. */
  url?: string;
  /** The zip's expected SHA-1, in hex; {@link WIKITEXT2}'s by default. */
  sha1?: string;
  /** Called as bytes of the zip arrive. */
  onProgress?: (p: DownloadProgress) => void;
  /** Aborts the download. */
  signal?: AbortSignal;
}

/**
 * The folder `<cacheDir>/wikitext-2` holding `wiki.train.tokens`, `wiki.valid.tokens` and
 * `wiki.test.tokens`. When the train and valid files are already there it returns at once,
 * without network access; otherwise it downloads the zip, checks its SHA-1 and extracts it.
 * Every file is written under a temporary name and renamed into place, so an interrupted or
 * concurrent run never leaves a half-written file.
 */
export async function wikiText2(options: WikiTextDownloadOptions = {}): Promise<string> {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const url = options.url ?? (process.env.TSBERT_WIKITEXT_URL || WIKITEXT2.url);
  const expected = (options.sha1 ?? WIKITEXT2.sha1).toLowerCase();
  const dir = join(cacheDir, FOLDER);
  if (await complete(dir)) return dir;

  await mkdir(cacheDir, { recursive: true });
  const zipPath = join(cacheDir, `.${FOLDER}.${tempSuffix()}.zip`);
  try {
    const got = await download(url, zipPath, dir, options);
    if (got !== expected) {
      throw new Error(`WikiText-2: checksum mismatch for ${url}: expected SHA-1 ${expected}, got ${got}`);
    }
    await extract(await readFile(zipPath), dir, url);
  } finally {
    await rm(zipPath, { force: true });
  }
  return dir;
}

/** Whether `dir` holds the train and valid files. */
async function complete(dir: string): Promise<boolean> {
  for (const name of REQUIRED) {
    try {
      if (!(await stat(join(dir, name))).isFile()) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** A unique part of a temporary file name: the process id and random bytes. */
function tempSuffix(): string {
  return `${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
}

/** The reason an error gives, with its cause's (fetch's `TypeError('fetch failed')` hides the real one there). */
function reasonOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause;
  if (cause instanceof Error && cause.message && !err.message.includes(cause.message)) {
    return `${err.message}: ${cause.message}`;
  }
  return err.message;
}

/** The error for a download that did not succeed, saying how to work offline. */
function downloadError(url: string, reason: string, dir: string, cause?: unknown): Error {
  return new Error(
    `WikiText-2: could not download ${url} (${reason}); on an offline machine put ` +
      `wiki.train.tokens and wiki.valid.tokens in '${dir}' (or pass a data path)`,
    { cause },
  );
}

/** Downloads `url` into `path`, calling `onProgress` as bytes arrive; returns the SHA-1 (hex) of what arrived. */
async function download(url: string, path: string, dir: string, options: WikiTextDownloadOptions): Promise<string> {
  const { signal, onProgress } = options;
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (err) {
    if (signal?.aborted) throw signal.reason ?? err;
    throw downloadError(url, reasonOf(err), dir, err);
  }
  if (!response.ok || response.body === null) {
    const reason = response.ok ? 'empty response' : `HTTP ${response.status} ${response.statusText}`.trimEnd();
    await response.body?.cancel().catch(() => {});
    throw downloadError(url, reason, dir, new Error(reason));
  }
  const header = response.headers.get('content-length');
  const length = header === null ? Number.NaN : Number(header);
  const total = Number.isSafeInteger(length) && length >= 0 ? length : undefined;

  const hash = createHash('sha1');
  const file = await open(path, 'wx');
  let received = 0;
  try {
    try {
      for await (const chunk of response.body) {
        hash.update(chunk);
        await file.write(chunk);
        received += chunk.byteLength;
        onProgress?.({ received, total });
      }
    } catch (err) {
      if (signal?.aborted) throw signal.reason ?? err;
      throw downloadError(url, `the transfer broke off after ${received} bytes: ${reasonOf(err)}`, dir, err);
    }
  } finally {
    await file.close();
  }
  return hash.digest('hex');
}

/**
 * Extracts the `wiki.*.tokens` files of a zip (from whichever folder holds them) into `dir`,
 * each through a temporary name and an atomic rename.
 */
async function extract(zip: Uint8Array, dir: string, url: string): Promise<void> {
  const wanted = new Set<string>(FILES);
  // loaded here, when a download needs it, not by every process that imports tsbert
  const { unzipSync } = await import('fflate');
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(zip, { filter: (f) => wanted.has(baseName(f.name)) });
  } catch (err) {
    throw new Error(`WikiText-2: could not read the zip from ${url}: ${reasonOf(err)}`, { cause: err });
  }
  const found = new Map<string, Uint8Array>();
  for (const [name, data] of Object.entries(entries)) {
    const base = baseName(name);
    if (!found.has(base)) found.set(base, data);
  }
  const missing = REQUIRED.filter((name) => !found.has(name));
  if (missing.length > 0) {
    throw new Error(`WikiText-2: the zip from ${url} lacks ${missing.join(' and ')}`);
  }

  await mkdir(dir, { recursive: true });
  for (const name of FILES) {
    const data = found.get(name);
    if (data === undefined) continue;
    const target = join(dir, name);
    const temp = join(dir, `.${name}.${tempSuffix()}`);
    try {
      const handle = await open(temp, 'wx');
      try {
        await handle.writeFile(data);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, target);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }
}

/** The last part of a path inside a zip. */
function baseName(name: string): string {
  return name.slice(Math.max(name.lastIndexOf('/'), name.lastIndexOf('\\')) + 1);
}
