/**
 * The model folder: `config.json` (a manifest naming the other files with their SHA-256),
 * the weights (safetensors bytes, made and read by the native core) and the vocabulary
 * (JSON). Every file is written to a temporary name and renamed, so an interrupted save
 * leaves the folder's previous model (or nothing) loadable, never a half-written one; the next
 * save removes the temporary files a killed one left.
 *
 * @internal
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { BertConfig } from './config.js';
import { Vocab } from './data/vocab.js';
import { CheckpointError } from './errors.js';

/** What a model folder holds, read and checked. */
export interface ModelFiles {
  /** The model's sizes. */
  config: BertConfig;
  /** The weights: a safetensors file's bytes. */
  weights: Buffer;
  /** Where the weights were read from (for messages). */
  weightsPath: string;
  /** Where the config was read from (for messages). */
  configPath: string;
  /** The vocabulary. */
  vocab: Vocab;
}

/** `config.json` of a saved model: the sizes, and the files with their SHA-256. */
interface Manifest {
  format: 'tsbert';
  version: 1;
  config: BertConfig;
  weights: { file: string; sha256: string };
  vocab: { file: string; sha256: string };
}

const MANIFEST = 'config.json';
/** Names of the content-addressed files a save writes (older ones are removed). */
const CONTENT_FILE = /^(weights-[0-9a-f]{16}\.safetensors|vocab-[0-9a-f]{16}\.json)$/;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A temporary file of a save: `.<name>.<pid of the saving process>.<random>.tmp`. */
const TEMP_FILE = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/** Writes `bytes` to `dir/name` through a temporary file and a rename. */
async function writeAtomic(dir: string, name: string, bytes: string | Uint8Array): Promise<void> {
  const tmp = join(dir, `.${name}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  await writeFile(tmp, bytes, { flush: true });
  await rename(tmp, join(dir, name));
}

/** Whether process `pid` is running (a save of it may be in flight). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Saves a model to `dir` (created if needed): the weights and vocabulary files are named by
 * content, and `config.json`, which names them with their checksums, is replaced last.
 */
export async function writeModelFolder(
  dir: string,
  model: Omit<ModelFiles, 'weightsPath' | 'configPath'>,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const vocab = Buffer.from(JSON.stringify(model.vocab.toJSON()));
  const [weightsSha, vocabSha] = [sha256(model.weights), sha256(vocab)];
  const manifest: Manifest = {
    format: 'tsbert',
    version: 1,
    config: model.config,
    weights: { file: `weights-${weightsSha.slice(0, 16)}.safetensors`, sha256: weightsSha },
    vocab: { file: `vocab-${vocabSha.slice(0, 16)}.json`, sha256: vocabSha },
  };
  await writeAtomic(dir, manifest.weights.file, model.weights);
  await writeAtomic(dir, manifest.vocab.file, vocab);
  await writeAtomic(dir, MANIFEST, `${JSON.stringify(manifest, null, 2)}\n`);
  const keep = new Set([MANIFEST, manifest.weights.file, manifest.vocab.file]);
  for (const name of await readdir(dir)) {
    const temp = TEMP_FILE.exec(name);
    const stale = temp !== null && !running(Number(temp[1])); // left by a save that was killed
    if (stale || (!keep.has(name) && CONTENT_FILE.test(name))) await rm(join(dir, name), { force: true });
  }
}

async function readManifest(dir: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST), 'utf8');
  } catch (cause) {
    throw new CheckpointError(`no tsbert model in '${dir}': cannot read ${MANIFEST}`, { cause });
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(text) as Manifest;
  } catch (cause) {
    throw new CheckpointError(`'${join(dir, MANIFEST)}' is not valid JSON`, { cause });
  }
  const c = manifest?.config;
  // the sizes' values are the native core's to check (as integers in range that fit in memory)
  const sizes = typeof c === 'object' && c !== null && !Array.isArray(c);
  if (
    manifest?.format !== 'tsbert' ||
    manifest.version !== 1 ||
    !sizes ||
    typeof manifest.weights?.file !== 'string' ||
    typeof manifest.vocab?.file !== 'string'
  ) {
    throw new CheckpointError(`'${join(dir, MANIFEST)}' is not a tsbert model manifest (format 1)`);
  }
  return manifest;
}

/** Reads a file named by the manifest and checks its checksum. */
async function readChecked(dir: string, entry: { file: string; sha256: string }, what: string): Promise<Buffer> {
  if (entry.file.includes('/') || entry.file.includes('\\')) {
    throw new CheckpointError(`'${join(dir, MANIFEST)}' names a ${what} file outside the folder: ${entry.file}`);
  }
  const path = join(dir, entry.file);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    throw new CheckpointError(`${what} file '${path}' is missing`, { cause });
  }
  if (sha256(bytes) !== entry.sha256) {
    throw new CheckpointError(`${what} file '${path}' is corrupt or incomplete (checksum mismatch)`);
  }
  return bytes;
}

/**
 * Reads the model folder `dir` written by {@link writeModelFolder}, each file once, checked
 * against its checksum. A missing folder or file, a checksum mismatch or a vocabulary that
 * does not fit the config is a {@link CheckpointError}; whether the weights fit the config is
 * the native core's check when they are loaded.
 */
export async function readModelFolder(dir: string): Promise<ModelFiles> {
  const manifest = await readManifest(dir);
  const vocabBytes = await readChecked(dir, manifest.vocab, 'vocabulary');
  let vocab: Vocab;
  try {
    vocab = Vocab.fromJSON(JSON.parse(vocabBytes.toString('utf8')));
  } catch (cause) {
    throw new CheckpointError(`vocabulary file '${join(dir, manifest.vocab.file)}' is not a tsbert vocabulary`, {
      cause,
    });
  }
  if (vocab.size !== manifest.config.vocabSize) {
    throw new CheckpointError(
      `'${dir}': the vocabulary has ${vocab.size} tokens but the config says ${manifest.config.vocabSize}`,
    );
  }
  const weights = await readChecked(dir, manifest.weights, 'weights');
  return {
    config: manifest.config,
    weights,
    weightsPath: join(dir, manifest.weights.file),
    configPath: join(dir, MANIFEST),
    vocab,
  };
}
