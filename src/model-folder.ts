/**
 * Model folders on disk. tsbert's own: `config.json` (a manifest naming the other files with
 * their SHA-256), the weights (safetensors bytes, made and read by the native core) and the
 * vocabulary or tokenizer (JSON); every file written to a temporary name and renamed, so an
 * interrupted save leaves the folder's previous model (or nothing) loadable, never a half-written
 * one, and the next save removes what a killed one left. And Hugging Face's: `config.json`
 * (`model_type: "bert"`), `model.safetensors`, and `tokenizer.json` or `vocab.txt`. Reading a
 * folder gives its files; whether the config and the weights make a model is the native
 * core's check, as it loads them (`BertModel.load`).
 *
 * @internal
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { CallQueue } from './call-queue.js';
import type { BertConfig } from './config.js';
import { Vocab } from './data/vocab.js';
import { CheckpointError } from './errors.js';
import { Tokenizer } from './tokenizer.js';

/** What a model folder holds, read and checked. */
export interface ModelFiles {
  /**
   * tsbert's manifest's config (the model's sizes and variants), or the text of Hugging Face's
   * `config.json` (whose folder names tensors as Hugging Face does).
   */
  config: BertConfig | string;
  /**
   * The weights' safetensors file (its checksum checked, for tsbert's format): the native core
   * reads it a tensor at a time, so that a load never holds the whole file besides the model.
   */
  weightsPath: string;
  /** Where the config was read from (for messages). */
  configPath: string;
  /** The tokenizer. */
  tokenizer: Tokenizer;
  /** The textbook vocabulary, for a model that has one. */
  vocab?: Vocab;
  /** The names of a task head's labels in id order (Hugging Face's `id2label`), when the folder gives them. */
  labels?: string[];
}

/** `config.json` of a tsbert model: the sizes, and the files with their SHA-256. */
interface Manifest {
  format: 'tsbert';
  version: 1;
  config: BertConfig;
  weights: { file: string; sha256: string };
  /** A textbook vocabulary (the model's tokenizer is made from it). */
  vocab?: { file: string; sha256: string };
  /** A `tokenizer.json`, for a model that has no textbook vocabulary. */
  tokenizer?: { file: string; sha256: string };
  /** The names of a task head's labels, in id order. */
  labels?: string[];
}

const MANIFEST = 'config.json';
/** Names of the content-addressed files a save writes (older ones are removed). */
const CONTENT_FILE = /^(weights-[0-9a-f]{16}\.safetensors|(vocab|tokenizer)-[0-9a-f]{16}\.json)$/;
/** A temporary file of a save: `.<name>.<pid of the saving process>.<random>.tmp`. */
const TEMP_FILE = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/**
 * Writes `bytes` to `dir/name` through a temporary file and a rename. A failure (a full disk,
 * a folder in the way) removes the temporary file and is an `Error` naming the file.
 */
export async function writeAtomic(dir: string, name: string, bytes: string | Uint8Array): Promise<void> {
  const tmp = join(dir, `.${name}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, bytes, { flush: true });
    await rename(tmp, join(dir, name));
  } catch (cause) {
    await rm(tmp, { force: true });
    const code = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
    throw new Error(`cannot write '${join(dir, name)}' (${code})`, { cause });
  }
}

/**
 * Whether process `pid` is running (a save of it may be in flight).
 *
 * @internal
 */
export function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The saves into each folder (by absolute path) while one is pending. */
const SAVING = new Map<string, CallQueue>();

/**
 * Runs `save` once every save into `dir` asked for before it has settled: saves into one folder
 * run one at a time, in the order asked (two at once could each remove the files the other's
 * manifest names).
 */
export function oneSaveAtATime<T>(dir: string, save: () => Promise<T>): Promise<T> {
  const key = resolve(dir);
  let queue = SAVING.get(key);
  if (!queue) {
    queue = new CallQueue(() => SAVING.delete(key));
    SAVING.set(key, queue);
  }
  return queue.run(save);
}

/** Removes the temporary files of saves that were killed, and content files `keep` lacks. */
async function tidy(dir: string, keep: ReadonlySet<string>): Promise<void> {
  for (const name of await readdir(dir)) {
    const temp = TEMP_FILE.exec(name);
    const stale = temp !== null && !running(Number(temp[1]));
    if (stale || (!keep.has(name) && CONTENT_FILE.test(name))) await rm(join(dir, name), { force: true });
  }
}

/**
 * Saves a model in tsbert's layout to `dir` (created if needed): the weights and the vocabulary
 * (or, without one, the tokenizer) are named by content, and `config.json`, which names them
 * with their checksums, is replaced last (saves into one folder at once: see
 * {@link oneSaveAtATime}).
 */
export async function writeModelFolder(
  dir: string,
  model: { config: BertConfig; weights: Uint8Array; tokenizer: Tokenizer; vocab?: Vocab; labels?: readonly string[] },
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const words = model.vocab ? Buffer.from(JSON.stringify(model.vocab.toJSON())) : Buffer.from(model.tokenizer.toJSON());
  const [weightsSha, wordsSha] = [sha256(model.weights), sha256(words)];
  const wordsEntry = { file: `${model.vocab ? 'vocab' : 'tokenizer'}-${wordsSha.slice(0, 16)}.json`, sha256: wordsSha };
  const manifest: Manifest = {
    format: 'tsbert',
    version: 1,
    config: model.config,
    weights: { file: `weights-${weightsSha.slice(0, 16)}.safetensors`, sha256: weightsSha },
    ...(model.vocab ? { vocab: wordsEntry } : { tokenizer: wordsEntry }),
    ...(model.labels ? { labels: [...model.labels] } : {}),
  };
  await writeAtomic(dir, manifest.weights.file, model.weights);
  await writeAtomic(dir, wordsEntry.file, words);
  await writeAtomic(dir, MANIFEST, `${JSON.stringify(manifest, null, 2)}\n`);
  await tidy(dir, new Set([MANIFEST, manifest.weights.file, wordsEntry.file]));
}

/**
 * The transformers release whose `from_pretrained` loads tsbert's Hugging Face exports with the
 * same outputs (`npm run bench:hf`): the one bench/reference/requirements.txt pins (a test keeps
 * the two equal), written into every exported `config.json`.
 */
export const TRANSFORMERS_CHECKED = '5.24.0';

/**
 * Saves a model in Hugging Face's layout to `dir`: `config.json` (`hfConfig`, with the
 * tokenizer's special token ids and {@link TRANSFORMERS_CHECKED}), `model.safetensors` (Hugging
 * Face's names), `tokenizer.json` (no padding built in), `tokenizer_config.json` and
 * `special_tokens_map.json`; each file written atomically.
 */
export async function writeHuggingFaceFolder(
  dir: string,
  model: {
    hfConfig: Record<string, unknown>;
    weights: Uint8Array;
    tokenizer: Tokenizer;
    maxLength: number;
    labels?: readonly string[];
  },
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const t = model.tokenizer;
  const special = (names: string[]) => names.find((n) => t.tokenToId(n) !== undefined);
  const tokens = {
    unk_token: special(['[UNK]', '<unk>']),
    pad_token: special(['[PAD]', '<pad>']),
    cls_token: special(['[CLS]', '<cls>']),
    sep_token: special(['[SEP]', '<sep>']),
    mask_token: special(['[MASK]', '<mask>']),
  };
  const names = model.labels && {
    id2label: Object.fromEntries(model.labels.map((label, i) => [String(i), label])),
    label2id: Object.fromEntries(model.labels.map((label, i) => [label, i])),
  };
  const config = { ...model.hfConfig, ...names, pad_token_id: t.padId, transformers_version: TRANSFORMERS_CHECKED };
  // the segment ids too: without model_input_names, transformers gives pairs none (all segment 0)
  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    model_max_length: model.maxLength,
    model_input_names: ['input_ids', 'token_type_ids', 'attention_mask'],
    ...tokens,
  };
  await writeAtomic(dir, 'model.safetensors', model.weights);
  // without the source's padding (MiniLM's pads every text to 128 ids: a trap for whoever reads the file alone)
  await writeAtomic(dir, 'tokenizer.json', JSON.stringify({ ...JSON.parse(t.toJSON()), padding: null }));
  await writeAtomic(dir, 'tokenizer_config.json', `${JSON.stringify(tokenizerConfig, null, 2)}\n`);
  await writeAtomic(dir, 'special_tokens_map.json', `${JSON.stringify(tokens, null, 2)}\n`);
  await writeAtomic(dir, MANIFEST, `${JSON.stringify(config, null, 2)}\n`);
  await tidy(dir, new Set());
}

/** Whether `path` exists (a link counts when what it points to does). */
export const pathExists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

/** The text of `dir/name`, or `undefined` when there is no such file. */
export async function readOptional(dir: string, name: string): Promise<Buffer | undefined> {
  return readFile(join(dir, name)).catch((cause: NodeJS.ErrnoException) => {
    if (cause.code === 'ENOENT') return undefined;
    throw new CheckpointError(`'${join(dir, name)}' cannot be read (${cause.code ?? cause.message})`, { cause });
  });
}

/** The path of the file a manifest's `entry` names, which must lie in `dir`. */
function manifestPath(dir: string, entry: { file: string }, what: string): string {
  if (typeof entry.file !== 'string' || entry.file.includes('/') || entry.file.includes('\\')) {
    throw new CheckpointError(`'${join(dir, MANIFEST)}' names a ${what} file outside the folder: ${entry.file}`);
  }
  return join(dir, entry.file);
}

const checksumMismatch = (what: string, path: string) =>
  new CheckpointError(`${what} file '${path}' is corrupt or incomplete (checksum mismatch)`);

/** Reads a file named by the manifest and checks its checksum. */
async function readChecked(dir: string, entry: { file: string; sha256: string }, what: string): Promise<Buffer> {
  const path = manifestPath(dir, entry, what);
  const bytes = await readOptional(dir, entry.file);
  if (!bytes) throw new CheckpointError(`${what} file '${path}' is missing`);
  if (sha256(bytes) !== entry.sha256) throw checksumMismatch(what, path);
  return bytes;
}

/**
 * The path of a file named by the manifest, its checksum checked by streaming it: a weights
 * file is never held whole (the native core reads it a tensor at a time).
 */
async function checkedPath(dir: string, entry: { file: string; sha256: string }, what: string): Promise<string> {
  const path = manifestPath(dir, entry, what);
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CheckpointError(`${what} file '${path}' is missing`, { cause });
    throw new CheckpointError(`'${path}' cannot be read (${code ?? (cause as Error).message})`, { cause });
  }
  if (hash.digest('hex') !== entry.sha256) throw checksumMismatch(what, path);
  return path;
}

/** A tokenizer from bytes, any failure a {@link CheckpointError} naming `path`. */
function tokenizerOf(path: string, make: () => Tokenizer): Tokenizer {
  try {
    return make();
  } catch (cause) {
    throw new CheckpointError(`tokenizer file '${path}': ${(cause as Error).message}`, { cause });
  }
}

async function readTsbertFolder(dir: string, manifest: Manifest): Promise<ModelFiles> {
  const c = manifest.config;
  // the sizes' values are the native core's to check (as integers in range that fit in memory)
  const sizes = typeof c === 'object' && c !== null && !Array.isArray(c);
  const words = manifest.vocab ?? manifest.tokenizer;
  if (
    manifest.version !== 1 ||
    !sizes ||
    typeof manifest.weights?.file !== 'string' ||
    typeof words?.file !== 'string'
  ) {
    throw new CheckpointError(`'${join(dir, MANIFEST)}' is not a tsbert model manifest (format 1)`);
  }
  let vocab: Vocab | undefined;
  let tokenizer: Tokenizer;
  const wordsPath = join(dir, words.file);
  if (manifest.vocab) {
    const bytes = await readChecked(dir, manifest.vocab, 'vocabulary');
    try {
      vocab = Vocab.fromJSON(JSON.parse(bytes.toString('utf8')));
    } catch (cause) {
      throw new CheckpointError(`vocabulary file '${wordsPath}' is not a tsbert vocabulary`, { cause });
    }
    const known = vocab;
    tokenizer = tokenizerOf(wordsPath, () => Tokenizer.fromVocab(known));
  } else {
    const bytes = await readChecked(dir, words, 'tokenizer');
    tokenizer = tokenizerOf(wordsPath, () => Tokenizer.onDemand({ json: bytes.toString('utf8') }));
  }
  if (tokenizer.vocabSize !== c.vocabSize) {
    throw new CheckpointError(
      `'${dir}': the vocabulary has ${tokenizer.vocabSize} tokens but the config says ${c.vocabSize}`,
    );
  }
  const weightsPath = await checkedPath(dir, manifest.weights, 'weights');
  const configPath = join(dir, MANIFEST);
  const { labels } = manifest;
  if (labels !== undefined && !(Array.isArray(labels) && labels.every((l) => typeof l === 'string'))) {
    throw new CheckpointError(`'${configPath}': labels must be an array of label names`);
  }
  return {
    config: c,
    weightsPath,
    configPath,
    tokenizer,
    vocab,
    labels,
  };
}

async function readHuggingFaceFolder(
  dir: string,
  configText: string,
  fields: Record<string, unknown>,
): Promise<ModelFiles> {
  const weightsPath = join(dir, 'model.safetensors');
  if (!(await pathExists(weightsPath))) {
    const torchOnly = await pathExists(join(dir, 'pytorch_model.bin'));
    throw new CheckpointError(
      torchOnly
        ? `'${dir}' has only pytorch_model.bin: tsbert reads safetensors (convert it with transformers: model.save_pretrained(dir, safe_serialization=True))`
        : `'${weightsPath}' is missing`,
    );
  }
  const json = await readOptional(dir, 'tokenizer.json');
  const vocabTxt = json ? undefined : await readOptional(dir, 'vocab.txt');
  let tokenizer: Tokenizer;
  if (json) {
    tokenizer = tokenizerOf(join(dir, 'tokenizer.json'), () => Tokenizer.onDemand({ json: json.toString('utf8') }));
  } else if (vocabTxt) {
    const settings = await readOptional(dir, 'tokenizer_config.json');
    let lowercase = true;
    try {
      lowercase = settings ? JSON.parse(settings.toString('utf8')).do_lower_case !== false : true;
    } catch (cause) {
      throw new CheckpointError(`'${join(dir, 'tokenizer_config.json')}' is not valid JSON`, { cause });
    }
    const path = join(dir, 'vocab.txt');
    tokenizer = tokenizerOf(path, () => Tokenizer.onDemand({ vocabTxt: vocabTxt.toString('utf8'), lowercase }));
  } else {
    throw new CheckpointError(`'${dir}' has no tokenizer.json or vocab.txt: tsbert needs the model's tokenizer`);
  }
  const labels = labelsOf(fields.id2label, join(dir, MANIFEST));
  return { config: configText, weightsPath, configPath: join(dir, MANIFEST), tokenizer, labels };
}

/**
 * Label names in id order from Hugging Face's `id2label` (`{"0": "negative", …}`), or
 * `undefined` without one; ids that are not 0 … n-1 or names that are not strings are a
 * {@link CheckpointError} naming `path`.
 */
function labelsOf(id2label: unknown, path: string): string[] | undefined {
  if (id2label === undefined || id2label === null) return undefined;
  const entries = typeof id2label === 'object' && !Array.isArray(id2label) ? Object.entries(id2label) : undefined;
  const labels: string[] = [];
  for (const [id, name] of entries ?? [['?', undefined]]) {
    const i = Number(id);
    if (!Number.isInteger(i) || i < 0 || i >= (entries?.length ?? 0) || typeof name !== 'string') {
      throw new CheckpointError(`'${path}': id2label must map the ids 0 … n-1 to label names`);
    }
    labels[i] = name;
  }
  return labels;
}

/**
 * Reads the model folder `dir`: tsbert's (each file once, checked against its checksum) or
 * Hugging Face's. A missing folder or file, a checksum mismatch, a tokenizer that is not one or
 * does not fit the manifest's config: a {@link CheckpointError} naming it. Whether the config
 * and the weights make a model (and fit its tokenizer) is the native core's check, before the
 * model is built.
 */
export async function readModelFolder(dir: string): Promise<ModelFiles> {
  const text = await readFile(join(dir, MANIFEST), 'utf8').catch((cause: unknown) => {
    throw new CheckpointError(`no model in '${dir}': cannot read ${MANIFEST}`, { cause });
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new CheckpointError(`'${join(dir, MANIFEST)}' is not valid JSON`, { cause });
  }
  const fields = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  if (fields.format === 'tsbert') return readTsbertFolder(dir, parsed as Manifest);
  if ('model_type' in fields) return readHuggingFaceFolder(dir, text, fields);
  throw new CheckpointError(
    `'${join(dir, MANIFEST)}' is neither a tsbert model manifest nor a Hugging Face config (no format or model_type)`,
  );
}
