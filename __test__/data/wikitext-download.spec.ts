import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { strToU8, zipSync } from 'fflate';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { type DownloadProgress, defaultCacheDir, wikiText2 } from '../../src/data/wikitext-download.js';

const TEXT = {
  'wiki.train.tokens': ' \n = Valkyria Chronicles = \n \n the game began development in 2010 . it was a success . \n',
  'wiki.valid.tokens': ' \n = Homarus = \n \n the lobster is a crustacean . it lives in the sea . \n',
  'wiki.test.tokens': ' \n = Robert Boulter = \n \n he is an english actor . he had a role in 2000 . \n',
};

function zipOf(files: Record<string, string>): Uint8Array {
  return zipSync(Object.fromEntries(Object.entries(files).map(([name, text]) => [name, strToU8(text)])));
}

function sha1(data: Uint8Array): string {
  return createHash('sha1').update(data).digest('hex');
}

const good = zipOf(Object.fromEntries(Object.entries(TEXT).map(([name, text]) => [`wikitext-2/${name}`, text])));
const elsewhere = zipOf({ 'other/wiki.train.tokens': TEXT['wiki.train.tokens'], 'wiki.valid.tokens': 'v' });
const noValid = zipOf({
  'wikitext-2/wiki.train.tokens': TEXT['wiki.train.tokens'],
  'wikitext-2/wiki.test.tokens': TEXT['wiki.test.tokens'],
});

/** A URL on which nothing listens: the port of a server just closed. */
async function closedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/wikitext-2-v1.zip`;
}

describe('wikiText2 download', () => {
  let server: Server;
  let base: string;
  let requests = 0;
  let cacheDir: string;

  beforeAll(async () => {
    const routes: Record<string, Uint8Array> = {
      '/wikitext-2-v1.zip': good,
      '/elsewhere.zip': elsewhere,
      '/novalid.zip': noValid,
    };
    server = createServer((req, res) => {
      requests++;
      const body = routes[req.url ?? ''];
      if (body === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not here');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(body.byteLength) });
      // Two writes, so that progress is reported more than once.
      const half = body.byteLength >> 1;
      res.write(body.subarray(0, half));
      setTimeout(() => res.end(body.subarray(half)), 5);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  beforeEach(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), 'tsbert-wikitext-'));
  });

  afterEach(async () => {
    await rm(cacheDir, { recursive: true, force: true });
  });

  it('downloads, checks and extracts the zip, reporting progress', async () => {
    const progress: DownloadProgress[] = [];
    const dir = await wikiText2({
      cacheDir,
      url: `${base}/wikitext-2-v1.zip`,
      sha1: sha1(good),
      onProgress: (p) => progress.push({ ...p }),
    });
    expect(dir).toBe(join(cacheDir, 'wikitext-2'));
    for (const [name, text] of Object.entries(TEXT)) {
      expect(await readFile(join(dir, name), 'utf8')).toBe(text);
    }
    expect((await readdir(dir)).sort()).toEqual(Object.keys(TEXT).sort());
    expect(await readdir(cacheDir)).toEqual(['wikitext-2']);
    expect(progress.length).toBeGreaterThanOrEqual(1);
    expect(progress.at(-1)).toEqual({ received: good.byteLength, total: good.byteLength });
    for (let i = 1; i < progress.length; i++) {
      expect(progress[i].received).toBeGreaterThan(progress[i - 1].received);
    }
  });

  it('reuses the cached files without a request', async () => {
    const url = `${base}/wikitext-2-v1.zip`;
    const dir = await wikiText2({ cacheDir, url, sha1: sha1(good) });
    const before = requests;
    const again = await wikiText2({ cacheDir, url, sha1: sha1(good) });
    const offline = await wikiText2({ cacheDir, url: await closedUrl(), sha1: '0'.repeat(40) });
    expect([again, offline]).toEqual([dir, dir]);
    expect(requests).toBe(before);
  });

  it('extracts the files from whichever folder of the zip holds them', async () => {
    const dir = await wikiText2({ cacheDir, url: `${base}/elsewhere.zip`, sha1: sha1(elsewhere) });
    expect(await readFile(join(dir, 'wiki.train.tokens'), 'utf8')).toBe(TEXT['wiki.train.tokens']);
    expect(await readFile(join(dir, 'wiki.valid.tokens'), 'utf8')).toBe('v');
  });

  it('rejects a wrong checksum, naming both, and leaves nothing behind', async () => {
    const wrong = 'f'.repeat(40);
    const result = wikiText2({ cacheDir, url: `${base}/wikitext-2-v1.zip`, sha1: wrong });
    await expect(result).rejects.toThrow(wrong);
    await expect(result).rejects.toThrow(sha1(good));
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('rejects an unreachable URL, saying where to put the files', async () => {
    const url = await closedUrl();
    const error: Error = await wikiText2({ cacheDir, url, sha1: sha1(good) }).then(
      () => expect.fail('resolved'),
      (e: Error) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toContain('could not download');
    expect(error.message).toContain(url);
    expect(error.message).toContain(join(cacheDir, 'wikitext-2'));
    expect(error.cause).toBeDefined();
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('rejects an HTTP error, naming the status', async () => {
    const result = wikiText2({ cacheDir, url: `${base}/nothing.zip`, sha1: sha1(good) });
    await expect(result).rejects.toThrow(/could not download .*HTTP 404/);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('rejects a zip lacking wiki.valid.tokens, naming it', async () => {
    const result = wikiText2({ cacheDir, url: `${base}/novalid.zip`, sha1: sha1(noValid) });
    await expect(result).rejects.toThrow(/lacks wiki\.valid\.tokens/);
    expect(await readdir(cacheDir)).toEqual([]);
  });
});

describe('defaultCacheDir', () => {
  const saved = { TSBERT_CACHE: process.env.TSBERT_CACHE, XDG_CACHE_HOME: process.env.XDG_CACHE_HOME };

  afterEach(() => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  });

  it('honours TSBERT_CACHE, then XDG_CACHE_HOME', () => {
    process.env.TSBERT_CACHE = '/some/cache';
    process.env.XDG_CACHE_HOME = '/xdg';
    expect(defaultCacheDir()).toBe('/some/cache');
    delete process.env.TSBERT_CACHE;
    expect(defaultCacheDir()).toBe(join('/xdg', 'tsbert'));
    delete process.env.XDG_CACHE_HOME;
    expect(defaultCacheDir()).toMatch(/[/\\]\.cache[/\\]tsbert$/);
  });
});
