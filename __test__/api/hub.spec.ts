/**
 * Models by Hugging Face Hub id, against a local server in the Hub's URL layout: downloaded
 * once into Python's cache layout, found there again (and a copy laid out as Python's
 * `huggingface_hub` lays it out is found without a download), offline with and without a
 * cached copy, and the failures: a dropped connection mid-file (nothing partial kept), a 404,
 * a gated model (401: HF_TOKEN named), no network.
 */
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { BertModel, CheckpointError, embed, HubError } from '../../src/index.js';
import { tsbertWith } from './cli-process.js';
import { type Repo, repoFromFolder, startHub } from './hub-server.js';

const BARE = join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures/hf/bare');
const ID = 'tsbert-test/tiny-st';
const MODULES = JSON.stringify([
  { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
  { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
  { idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' },
]);
const TEXTS = ['the crane is flying', 'a dog'];

let hub: Awaited<ReturnType<typeof startHub>>;
const repos = new Map<string, Repo>();
/** Files a repository holds that tsbert must never download. */
const UNWANTED = { 'pytorch_model.bin': 'x'.repeat(5000), 'onnx/model.onnx': 'onnx' };

beforeAll(async () => {
  const st = { 'modules.json': MODULES, '1_Pooling/config.json': '{"pooling_mode": "cls"}', ...UNWANTED };
  repos.set(ID, await repoFromFolder(BARE, 'one', st));
  repos.set('tsbert-test/gated', { ...(await repoFromFolder(BARE, 'gated')), gatedToken: 'hf_secret' });
  repos.set('tsbert-test/dropped', { ...(await repoFromFolder(BARE, 'dropped')), dropPath: 'model.safetensors' });
  repos.set('tsbert-test/pytorch-only', await repoFromFolder(BARE, 'bin', { 'pytorch_model.bin': 'weights' }));
  repos.get('tsbert-test/pytorch-only')?.files.delete('model.safetensors');
  hub = await startHub(repos);
});
afterAll(() => hub.close());

/** The address of a port nothing listens on (no network). */
async function nowhere(): Promise<string> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  await new Promise((ok) => server.close(ok));
  return `http://127.0.0.1:${port}`;
}

const cache = () => mkdtemp(join(tmpdir(), 'tsbert-hub-cache-'));
const downloads = () => hub.requests.filter((r) => r.includes('/resolve/'));

describe('a model by Hub id', () => {
  it('is downloaded once into the cache in huggingface_hub layout, then found there, online and offline', async () => {
    const cacheDir = await cache();
    const hubOptions = { endpoint: hub.url, cacheDir };
    hub.requests.length = 0;
    const model = await BertModel.load(ID, { hub: hubOptions });
    expect(model.sentenceSettings).toMatchObject({ pooling: ['cls'], normalize: true });
    const local = await BertModel.load(BARE);
    const [ours, theirs] = [await embed(model, TEXTS), await embed(local, TEXTS, { pooling: 'cls', normalize: true })];
    expect(Array.from(ours.data)).toEqual(Array.from(theirs.data));
    // what was fetched: the model's files, never the other formats' weights
    expect(downloads().some((r) => r.endsWith('/model.safetensors'))).toBe(true);
    expect(downloads().filter((r) => /pytorch_model|onnx/.test(r))).toEqual([]);
    // the layout: blobs named by ETag, snapshots/<commit> of relative links, refs/main
    const storage = join(cacheDir, 'models--tsbert-test--tiny-st');
    const commit = repos.get(ID)?.commit as string;
    expect((await readFile(join(storage, 'refs', 'main'), 'utf8')).trim()).toBe(commit);
    const snapshot = join(storage, 'snapshots', commit);
    expect((await lstat(join(snapshot, 'model.safetensors'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(snapshot, 'model.safetensors'))).toMatch(/^\.\.\/\.\.\/blobs\/[0-9a-f]{64}$/);
    expect(await readlink(join(snapshot, '1_Pooling', 'config.json'))).toMatch(
      /^\.\.\/\.\.\/\.\.\/blobs\/[0-9a-f]{40}$/,
    );
    expect((await readdir(join(storage, 'blobs'))).filter((n) => n.includes('incomplete'))).toEqual([]);

    // again: the listing is asked for, nothing is downloaded
    hub.requests.length = 0;
    await BertModel.load(ID, { hub: hubOptions });
    expect(downloads()).toEqual([]);
    // offline (the option, or HF_HUB_OFFLINE): no request at all
    hub.requests.length = 0;
    await BertModel.load(ID, { hub: { ...hubOptions, offline: true } });
    process.env.HF_HUB_OFFLINE = '1';
    try {
      await BertModel.load(ID, { hub: hubOptions });
      await expect(BertModel.load(ID, { hub: { ...hubOptions, cacheDir: await cache() } })).rejects.toThrow(
        /'tsbert-test\/tiny-st' \(revision main\) is not in the Hugging Face cache .* offline mode is on \(HF_HUB_OFFLINE\)/,
      );
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
    expect(hub.requests).toEqual([]);
    // a revision is recorded as Python records it
    await BertModel.load(ID, { hub: { ...hubOptions, revision: 'v1.0' } });
    expect((await readFile(join(storage, 'refs', 'v1.0'), 'utf8')).trim()).toBe(commit);
  });

  it("finds a copy that Python's huggingface_hub downloaded, through HF_HUB_CACHE and HF_ENDPOINT, without a download", async () => {
    // the layout huggingface_hub writes: blobs/<etag>, snapshots/<commit>/<file> → ../../blobs/<etag>, refs/main
    const cacheDir = await cache();
    const storage = join(cacheDir, 'models--tsbert-test--tiny-st');
    const commit = repos.get(ID)?.commit as string;
    await mkdir(join(storage, 'blobs'), { recursive: true });
    await mkdir(join(storage, 'refs'));
    await mkdir(join(storage, 'snapshots', commit), { recursive: true });
    await writeFile(join(storage, 'refs', 'main'), commit);
    for (const name of await readdir(BARE)) {
      const etag = `python-etag-of-${name}`;
      await writeFile(join(storage, 'blobs', etag), await readFile(join(BARE, name)));
      await symlink(join('..', '..', 'blobs', etag), join(storage, 'snapshots', commit, name));
    }
    const saved = { ...process.env };
    process.env.HF_HUB_CACHE = cacheDir;
    process.env.HF_ENDPOINT = await nowhere(); // no network
    try {
      hub.requests.length = 0;
      const model = await BertModel.load(ID);
      expect(model.config.hidden).toBe(32);
      process.env.HF_HUB_OFFLINE = 'true';
      await BertModel.load(ID);
    } finally {
      process.env = saved;
    }
    expect(hub.requests).toEqual([]);
  });

  it('never keeps a file whose download broke off; a retry completes it', async () => {
    const cacheDir = await cache();
    const repo = repos.get('tsbert-test/dropped') as Repo;
    const attempt = () => BertModel.load('tsbert-test/dropped', { hub: { endpoint: hub.url, cacheDir } });
    const error = await attempt().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HubError);
    expect((error as Error).message).toMatch(
      /^'tsbert-test\/dropped': downloading model\.safetensors failed: the connection broke off \(.*\); nothing partial was kept: try again$/,
    );
    const storage = join(cacheDir, 'models--tsbert-test--dropped');
    const blobs = await readdir(join(storage, 'blobs'));
    const weightsBlob = blobs.filter((n) => n.length === 64 || n.includes('incomplete'));
    expect(weightsBlob).toEqual([]); // neither the partial file nor a blob of it
    const snapshot = join(storage, 'snapshots', repo.commit);
    expect(await readdir(snapshot)).not.toContain('model.safetensors');
    // bytes that do not match the listed hash (a proxy's error page, a truncated stream closed cleanly)
    repo.dropPath = undefined;
    repo.corruptPath = 'model.safetensors';
    await expect(attempt()).rejects.toThrow(
      /^'tsbert-test\/dropped': the download of model\.safetensors is incomplete or corrupt \(\d+ of \d+ bytes, hash [0-9a-f]{12}… instead of [0-9a-f]{12}…\); nothing was kept/,
    );
    expect((await readdir(join(storage, 'blobs'))).filter((n) => n.length === 64 || n.includes('incomplete'))).toEqual(
      [],
    );
    repo.corruptPath = undefined;
    const model = await attempt();
    expect(model.config.hidden).toBe(32);
  });

  it('that does not exist, is gated, has no safetensors weights or cannot be reached gives a HubError saying what to do', async () => {
    const hubOptions = { endpoint: hub.url, cacheDir: await cache() };
    const missing = await BertModel.load('tsbert-test/nothing-here', { hub: hubOptions }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(HubError);
    expect(missing).toMatchObject({ status: 404 });
    expect((missing as Error).message).toMatch(
      /^'tsbert-test\/nothing-here' is not a model on http:\/\/127\.0\.0\.1:\d+, nor a local folder/,
    );

    const gated = await BertModel.load('tsbert-test/gated', { hub: hubOptions }).catch((e: unknown) => e);
    expect(gated).toMatchObject({ name: 'HubError', status: 401 });
    expect((gated as Error).message).toMatch(/needs a Hugging Face access token .*restricted.*set HF_TOKEN/);
    process.env.HF_TOKEN = 'hf_secret';
    try {
      expect((await BertModel.load('tsbert-test/gated', { hub: hubOptions })).config.hidden).toBe(32);
    } finally {
      delete process.env.HF_TOKEN;
    }

    await expect(BertModel.load('tsbert-test/pytorch-only', { hub: hubOptions })).rejects.toThrow(
      /has no model\.safetensors: tsbert reads safetensors weights only \(it has pytorch_model\.bin\)/,
    );
    await expect(BertModel.load(ID, { hub: { endpoint: await nowhere(), cacheDir: await cache() } })).rejects.toThrow(
      /is not a local folder, and http:\/\/127\.0\.0\.1:\d+ cannot be reached \(ECONNREFUSED\) to download it; nor is it in the cache/,
    );
    // a path that is neither a folder nor a Hub id is a missing folder, as before
    await expect(BertModel.load('/no/such/folder')).rejects.toThrow(CheckpointError);
  });

  it('works from the command line through HF_ENDPOINT, HF_HUB_CACHE and HF_TOKEN; failures are one line', async () => {
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: await cache() };
    const input = join(await mkdtemp(join(tmpdir(), 'tsbert-hub-cli-')), 'texts.txt');
    await writeFile(input, `${TEXTS.join('\n')}\n`);
    const embedded = await tsbertWith(env, 'embed', '--model', ID, '--input', input);
    expect(embedded.code, embedded.stderr).toBe(0);
    const lines = embedded.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    const first = JSON.parse(lines[0]) as number[];
    expect(Math.hypot(...first)).toBeCloseTo(1, 5); // the repository's Normalize module
    const gated = await tsbertWith(env, 'embed', '--model', 'tsbert-test/gated', '--input', input);
    expect(gated.code).toBe(1);
    expect(gated.stderr).toMatch(/'tsbert-test\/gated' needs a Hugging Face access token .*set HF_TOKEN/);
    expect(gated.stderr).not.toMatch(/\n\s+at /);
    const allowed = await tsbertWith(
      { ...env, HF_TOKEN: 'hf_secret' },
      'embed',
      '--model',
      'tsbert-test/gated',
      '--input',
      input,
    );
    expect(allowed.code, allowed.stderr).toBe(0);
  });
});
