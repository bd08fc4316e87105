/**
 * Models by Hugging Face Hub id (`sentence-transformers/all-MiniLM-L6-v2`): downloaded once,
 * through Hugging Face's own JavaScript client (`@huggingface/hub`), into the cache Python's
 * `huggingface_hub` uses (`HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`:
 * `models--org--name/blobs`, `snapshots/<commit>`, `refs/<revision>`), so that a model Python
 * downloaded is found without a download and one tsbert downloaded is Python's too. Honours
 * `HF_HUB_OFFLINE`, `HF_ENDPOINT` and `HF_TOKEN` (or the token file `huggingface-cli login`
 * writes). A file is checked against the Hub's hash before it enters the cache: an interrupted
 * download is never taken for a complete one.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, posix, relative } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { CheckpointError, HubError } from './errors.js';
import { pathExists } from './model-folder.js';
import { singleBar } from './progress-bar.js';
import { isTransformer, readModules } from './sentence-transformers.js';

/** Where and how a model is fetched from the Hub; unset fields come from the environment. */
export interface HubOptions {
  /** A branch, tag or commit; default `'main'`. */
  revision?: string;
  /** Never reach the network, only the cache; default `HF_HUB_OFFLINE` (`1`, `true`, `yes`, `on`). */
  offline?: boolean;
  /** The cache folder; default as Python's `huggingface_hub` (`HF_HUB_CACHE`, `HF_HOME`/hub, `~/.cache/huggingface/hub`). */
  cacheDir?: string;
  /** The access token for gated and private models; default `HF_TOKEN`, else the file `HF_HOME/token`. */
  token?: string;
  /** The Hub's address; default `HF_ENDPOINT`, else `https://huggingface.co`. */
  endpoint?: string;
  /** Show a progress bar on stderr while downloading; default: when stderr is a terminal. */
  progress?: boolean;
}

/** What a Hub id looks like: `name` or `org/name` (letters, digits, `-`, `_`, `.`). */
const HUB_ID = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;

/** Whether `name` has the form of a Hub id (a folder of that name, if there is one, wins). */
export const looksLikeHubId = (name: string) => HUB_ID.test(name) && !name.includes('..');

/** Top-level files a BERT or sentence-transformers folder may hold that tsbert reads or a save keeps. */
const MODEL_FILES = new Set([
  'config.json',
  'model.safetensors',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.txt',
  'modules.json',
  'sentence_bert_config.json',
  'config_sentence_transformers.json',
  'README.md',
  'LICENSE',
  'LICENSE.md',
  'LICENSE.txt',
]);

/**
 * The Hub client, loaded at the first Hub id rather than by every process that imports tsbert
 * (with its WebAssembly hashers it takes about 6 MiB).
 */
const hubClient = () => import('@huggingface/hub');

const truthy = (v: string | undefined) => v !== undefined && ['1', 'true', 'yes', 'on'].includes(v.toLowerCase());

/** A file of the repository at a commit, as the Hub lists it. */
interface RepoFile {
  path: string;
  size: number;
  /** The git blob id (SHA-1 of `blob <size>\0` + content). */
  oid: string;
  /** For a file in LFS: its SHA-256 and size. */
  lfs?: { oid: string; size: number };
}

/** The cache's name of a file's content: the Hub's ETag (SHA-256 for LFS files, the git blob id otherwise). */
const etagOf = (f: RepoFile) => f.lfs?.oid ?? f.oid;

/** A hash that checks a download against `f`'s ETag. */
function hashFor(f: RepoFile) {
  if (f.lfs) return createHash('sha256');
  const h = createHash('sha1');
  h.update(`blob ${f.size}\0`);
  return h;
}

/** The token from the options, `HF_TOKEN` or the token file; `undefined` when there is none. */
async function tokenFrom(options: HubOptions): Promise<string | undefined> {
  if (options.token) return options.token;
  if (process.env.HF_TOKEN) return process.env.HF_TOKEN;
  const home =
    process.env.HF_HOME ?? join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? '', '.cache'), 'huggingface');
  const file = await readFile(process.env.HF_TOKEN_PATH ?? join(home, 'token'), 'utf8').catch(() => '');
  return file.trim() || undefined;
}

/** A clear error for a failed Hub request. */
function hubFailure(id: string, endpoint: string, cause: unknown): HubError {
  const status = (cause as { statusCode?: number }).statusCode;
  const detail = (cause as Error).message;
  if (status === 401 || status === 403) {
    return new HubError(
      `'${id}' needs a Hugging Face access token (a gated or private model: ${detail}); accept its terms on the Hub, then set HF_TOKEN`,
      { cause, status },
    );
  }
  if (status === 404) {
    return new HubError(`'${id}' is not a model on ${endpoint}, nor a local folder (${detail})`, { cause, status });
  }
  if (status !== undefined)
    return new HubError(`'${id}': ${endpoint} answered ${status}: ${detail}`, { cause, status });
  return new HubError(
    `'${id}' is not a local folder, and ${endpoint} cannot be reached (${networkReason(cause)}) to download it; nor is it in the cache`,
    { cause },
  );
}

/** What a request that got no answer ran into: its cause's code (`ECONNREFUSED`, `UND_ERR_SOCKET`) or message. */
function networkReason(cause: unknown): string {
  const reason = (cause as { cause?: { code?: string; message?: string } }).cause;
  return reason?.code ?? reason?.message ?? (cause as Error).message;
}

/** The commit a revision names in the cache (`refs/<revision>`, or the revision itself when a commit id). */
async function cachedCommit(storage: string, revision: string): Promise<string | undefined> {
  if (/^[0-9a-f]{40}$/.test(revision)) return revision;
  const ref = await readFile(join(storage, 'refs', revision), 'utf8').catch(() => undefined);
  return ref?.trim() || undefined;
}

/** The cached snapshot of `revision`, when it holds a model (`config.json`, or `modules.json`). */
async function cachedSnapshot(storage: string, revision: string): Promise<string | undefined> {
  const commit = await cachedCommit(storage, revision);
  if (!commit) return undefined;
  const snapshot = join(storage, 'snapshots', commit);
  const usable =
    (await pathExists(join(snapshot, 'config.json'))) || (await pathExists(join(snapshot, 'modules.json')));
  return usable ? snapshot : undefined;
}

/**
 * The local folder of Hub model `id` at `options.revision`: the cache's snapshot, the files
 * tsbert reads downloaded first when missing (the weights as `model.safetensors`, the
 * tokenizer, the config, sentence-transformers' files and modules, the model card and
 * license). Failures are {@link HubError}s: a model that does not exist, a gated one without a
 * token, no network and no cached copy, offline without a cached copy, a download that does not
 * match the Hub's hash.
 */
export async function hubSnapshot(id: string, options: HubOptions = {}): Promise<string> {
  const { getHFHubCachePath, getRepoFolderName, listFiles, modelInfo } = await hubClient();
  const revision = options.revision ?? 'main';
  const cacheDir = options.cacheDir ?? getHFHubCachePath();
  const endpoint = (options.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  const storage = join(cacheDir, getRepoFolderName({ name: id, type: 'model' }));
  const offline = options.offline ?? truthy(process.env.HF_HUB_OFFLINE);
  if (offline) {
    const snapshot = await cachedSnapshot(storage, revision);
    if (snapshot) return snapshot;
    throw new HubError(
      `'${id}' (revision ${revision}) is not in the Hugging Face cache '${cacheDir}', and offline mode is on (HF_HUB_OFFLINE): download it once online, or give a model folder`,
    );
  }
  const accessToken = await tokenFrom(options);
  const credentials = { hubUrl: endpoint, ...(accessToken ? { accessToken } : {}) };
  let commit: string;
  let files: RepoFile[];
  try {
    const info = await modelInfo({ name: id, revision, additionalFields: ['sha'], ...credentials });
    commit = (info as { sha?: string }).sha ?? '';
    if (!/^[0-9a-f]{40}$/.test(commit))
      throw new HubError(`'${id}': ${endpoint} gave no commit for revision ${revision}`);
    files = [];
    for await (const f of listFiles({
      repo: { type: 'model', name: id },
      revision: commit,
      recursive: true,
      ...credentials,
    })) {
      if (f.type === 'file') files.push({ path: f.path, size: f.size, oid: f.oid ?? '', lfs: f.lfs });
    }
  } catch (cause) {
    if (cause instanceof HubError) throw cause;
    const failure = hubFailure(id, endpoint, cause);
    // no network (no answer at all): the cached copy, as huggingface_hub does
    const cached = failure.status === undefined ? await cachedSnapshot(storage, revision) : undefined;
    if (cached) return cached;
    throw failure;
  }
  const snapshot = join(storage, 'snapshots', commit);
  const wanted = await selectFiles(id, files, async (f) => {
    await fetchToCache(id, f, commit, storage, { credentials });
    return snapshot;
  });
  const missing: RepoFile[] = [];
  for (const f of wanted) if (!(await pathExists(join(snapshot, f.path)))) missing.push(f);
  const bar = (options.progress ?? process.stderr.isTTY) && missing.length > 0 ? progressBar(id, missing) : undefined;
  try {
    for (const f of missing) await fetchToCache(id, f, commit, storage, { credentials, bar });
  } finally {
    bar?.stop();
  }
  if (revision !== commit) {
    await mkdir(join(storage, 'refs'), { recursive: true });
    await writeFile(join(storage, 'refs', revision), commit);
  }
  return snapshot;
}

/**
 * The files of the listing to fetch: the model files at the top and in the folders
 * `modules.json` names (fetched first into the snapshot `fetchModules` returns, when there is
 * one), every file of a module that is not the Transformer. A repository without
 * `model.safetensors` where the model is, or with a malformed `modules.json`, is a
 * {@link HubError}.
 */
async function selectFiles(
  id: string,
  files: RepoFile[],
  fetchModules: (f: RepoFile) => Promise<string>,
): Promise<RepoFile[]> {
  const modulesFile = files.find((f) => f.path === 'modules.json');
  let modelDir = '';
  const moduleDirs: string[] = [];
  if (modulesFile) {
    const modules = await readModules(await fetchModules(modulesFile)).catch((cause: unknown) => {
      if (!(cause instanceof CheckpointError)) throw cause;
      throw new HubError(`'${id}': ${cause.message}`, { cause });
    });
    for (const m of modules ?? []) {
      if (m.path === '') continue;
      if (isTransformer(m)) modelDir = m.path;
      else moduleDirs.push(`${m.path}/`);
    }
  }
  const chosen = files.filter((f) => {
    const dir = posix.dirname(f.path);
    const name = posix.basename(f.path);
    if ((dir === '.' || dir === modelDir) && MODEL_FILES.has(name)) return true;
    return moduleDirs.some((d) => f.path.startsWith(d));
  });
  const weights = posix.join(modelDir, 'model.safetensors');
  if (!chosen.some((f) => f.path === weights)) {
    const others = files.filter((f) => /\.(bin|h5|msgpack|ot|onnx)$/.test(f.path)).map((f) => f.path);
    throw new HubError(
      `'${id}' has no ${weights}: tsbert reads safetensors weights only${others.length ? ` (it has ${others.slice(0, 3).join(', ')})` : ''}`,
    );
  }
  return chosen;
}

/** A progress bar on stderr over the bytes of `files`. */
interface Progress {
  /** `bytes` more arrived. */
  add(bytes: number): void;
  stop(): void;
}

/** A {@link Progress} bar over the bytes of `files`. */
function progressBar(id: string, files: RepoFile[]): Progress {
  const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
  const total = files.reduce((s, f) => s + (f.lfs?.size ?? f.size), 0);
  const bar = singleBar({
    format: `downloading ${id} [{bar}] {percentage}% | {done}/{all} MB`,
    stream: process.stderr,
    hideCursor: true,
    noTTYOutput: true,
    notTTYSchedule: 2000,
  });
  let done = 0;
  bar.start(total, 0, { done: mb(0), all: mb(total) });
  return {
    add(bytes) {
      done += bytes;
      bar.update(done, { done: mb(done), all: mb(total) });
    },
    stop: () => bar.stop(),
  };
}

/**
 * Puts `f` of commit `commit` into the cache, unless there already: its content into
 * `blobs/<etag>` (downloaded to a temporary name, checked against the Hub's hash, then renamed),
 * `snapshots/<commit>/<path>` a relative link to it.
 */
async function fetchToCache(
  id: string,
  f: RepoFile,
  commit: string,
  storage: string,
  how: { credentials: { hubUrl: string; accessToken?: string }; bar?: Progress },
): Promise<void> {
  const pointer = join(storage, 'snapshots', commit, f.path);
  const blob = join(storage, 'blobs', etagOf(f));
  if (await pathExists(pointer)) return;
  await mkdir(dirname(blob), { recursive: true });
  if (!(await pathExists(blob))) {
    const partial = `${blob}.${process.pid}.incomplete`;
    const { downloadFile } = await hubClient();
    try {
      const remote = await downloadFile({
        repo: { type: 'model', name: id },
        path: f.path,
        revision: commit,
        ...how.credentials,
      });
      if (!remote) throw new HubError(`'${id}': ${f.path} is listed but cannot be downloaded`);
      const hash = hashFor(f);
      let received = 0;
      const counted = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          hash.update(chunk);
          received += chunk.length;
          how.bar?.add(chunk.length);
          done(null, chunk);
        },
      });
      await pipeline(Readable.fromWeb(remote.stream() as never), counted, createWriteStream(partial));
      const expected = f.lfs?.size ?? f.size;
      const digest = hash.digest('hex');
      if (received !== expected || digest !== etagOf(f)) {
        throw new HubError(
          `'${id}': the download of ${f.path} is incomplete or corrupt (${received} of ${expected} bytes, hash ${digest.slice(0, 12)}… instead of ${etagOf(f).slice(0, 12)}…); nothing was kept: try again`,
        );
      }
      await rename(partial, blob);
    } catch (cause) {
      await rm(partial, { force: true });
      if (cause instanceof HubError) throw cause;
      const failure = hubFailure(id, how.credentials.hubUrl, cause);
      const why =
        failure.status === undefined
          ? `the connection broke off (${networkReason(cause)})`
          : failure.message.replace(/^'[^']*': /, '');
      throw new HubError(`'${id}': downloading ${f.path} failed: ${why}; nothing partial was kept: try again`, {
        cause,
        status: failure.status,
      });
    }
  }
  await mkdir(dirname(pointer), { recursive: true });
  const target = relative(dirname(pointer), blob);
  await symlink(target, pointer).catch(async (cause: NodeJS.ErrnoException) => {
    // another process made it meanwhile: fine if it points where this one would
    if (cause.code !== 'EEXIST' || (await readlink(pointer).catch(() => '')) !== target) throw cause;
  });
}
