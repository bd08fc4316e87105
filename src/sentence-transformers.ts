/**
 * A sentence-transformers folder's own settings: which modules it runs (`modules.json`), how
 * its `Pooling` module pools (`1_Pooling/config.json`), how long a text may be and whether it
 * is lower-cased (`sentence_bert_config.json`), so that {@link embed} gives what
 * `SentenceTransformer(dir).encode()` gives; and the copy of those files when such a model is
 * saved.
 *
 * @module
 */
import { cp, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { CheckpointError } from './errors.js';
import { writeAtomic } from './model-folder.js';

/** sentence-transformers' pooling modes, in the order its legacy flags concatenate them. */
export const POOLING_MODES = ['cls', 'max', 'mean', 'mean_sqrt_len_tokens', 'weightedmean', 'lasttoken'] as const;

/**
 * How token states become one vector, as sentence-transformers names it: the mean of the real
 * tokens, the first (`cls`) or last token's state, the maximum, the sum over the square root
 * of the length, or the mean weighted by position.
 */
export type PoolingMode = (typeof POOLING_MODES)[number];

/** The legacy flags of `1_Pooling/config.json`, each with its mode. */
const LEGACY_FLAGS: Record<string, PoolingMode> = {
  pooling_mode_cls_token: 'cls',
  pooling_mode_max_tokens: 'max',
  pooling_mode_mean_tokens: 'mean',
  pooling_mode_mean_sqrt_len_tokens: 'mean_sqrt_len_tokens',
  pooling_mode_weightedmean_tokens: 'weightedmean',
  pooling_mode_lasttoken: 'lasttoken',
};

/** How a sentence-transformers folder embeds, read from its files. */
export interface SentenceSettings {
  /** The `Pooling` module's modes (their vectors side by side); `['mean']` without one. */
  pooling: PoolingMode[];
  /** Whether a `Normalize` module divides each vector by its L2 norm. */
  normalize: boolean;
  /** `max_seq_length`: tokens a text keeps, special tokens included (unset: the model's positions). */
  maxLength?: number;
  /** `do_lower_case`: texts are lower-cased before tokenizing. */
  lowercase: boolean;
  /** The modules tsbert cannot run (a `Dense` layer, …), as `type (path)`; embedding then fails naming them. */
  unsupported: string[];
  /** The `Transformer` module's folder (the model itself), relative to the folder; `''` for the folder. */
  transformerPath: string;
}

/** A module of `modules.json`. */
interface ModuleEntry {
  path: string;
  type: string;
}

/** The class name of a module `type` (`sentence_transformers.models.Pooling` → `Pooling`). */
const className = (type: string) => type.slice(type.lastIndexOf('.') + 1);

/** The parsed JSON of `dir/name`, `undefined` when there is no such file; bad JSON a {@link CheckpointError}. */
async function readJson(dir: string, name: string): Promise<unknown> {
  const path = join(dir, name);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CheckpointError(`'${path}' cannot be read (${(cause as NodeJS.ErrnoException).code})`, { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new CheckpointError(`'${path}' is not valid JSON`, { cause });
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The modules of `modules.json`, checked. */
function modulesOf(json: unknown, path: string): ModuleEntry[] {
  const bad = (why: string) => new CheckpointError(`'${path}' is not a sentence-transformers module list: ${why}`);
  if (!Array.isArray(json)) throw bad('expected an array');
  return json.map((m, i) => {
    if (!isObject(m) || typeof m.type !== 'string' || typeof m.path !== 'string') {
      throw bad(`entry ${i} lacks a string 'type' and 'path'`);
    }
    if (m.path.split(/[/\\]/).includes('..')) throw bad(`entry ${i} names a path outside the folder: ${m.path}`);
    return { type: m.type, path: m.path };
  });
}

/** The modes of a `Pooling` module's config (`pooling_mode`, or the legacy flags). */
function poolingOf(json: unknown, path: string): PoolingMode[] {
  const bad = (why: string) => new CheckpointError(`'${path}': ${why}`);
  if (!isObject(json)) throw bad('expected an object');
  const known = (m: unknown): PoolingMode => {
    if (!POOLING_MODES.includes(m as PoolingMode)) {
      throw bad(`pooling mode ${JSON.stringify(m)} is not one of ${POOLING_MODES.join(', ')}`);
    }
    return m as PoolingMode;
  };
  if ('pooling_mode' in json) {
    const modes = Array.isArray(json.pooling_mode) ? json.pooling_mode : [json.pooling_mode];
    if (modes.length === 0) throw bad('pooling_mode is empty');
    return modes.map(known);
  }
  const modes = Object.entries(LEGACY_FLAGS)
    .filter(([flag]) => json[flag] === true)
    .map(([, mode]) => mode);
  return modes.length > 0 ? modes : ['mean'];
}

/**
 * The settings of the sentence-transformers folder `dir` (`undefined` when it has no
 * `modules.json`). A malformed file is a {@link CheckpointError} naming it; a module tsbert
 * cannot run is listed in `unsupported`.
 */
export async function readSentenceSettings(dir: string): Promise<SentenceSettings | undefined> {
  const listPath = join(dir, 'modules.json');
  const list = await readJson(dir, 'modules.json');
  if (list === undefined) return undefined;
  const settings: SentenceSettings = {
    pooling: ['mean'],
    normalize: false,
    lowercase: false,
    unsupported: [],
    transformerPath: '',
  };
  let transformers = 0;
  for (const m of modulesOf(list, listPath)) {
    switch (className(m.type)) {
      case 'Transformer': {
        transformers += 1;
        settings.transformerPath = m.path;
        const config = await readJson(join(dir, m.path), 'sentence_bert_config.json');
        if (isObject(config)) {
          const max = config.max_seq_length;
          if (max !== undefined && max !== null) {
            if (!Number.isInteger(max) || (max as number) < 1) {
              throw new CheckpointError(
                `'${join(dir, m.path, 'sentence_bert_config.json')}': max_seq_length ${JSON.stringify(max)} is not a positive integer`,
              );
            }
            settings.maxLength = max as number;
          }
          settings.lowercase = config.do_lower_case === true;
        }
        break;
      }
      case 'Pooling': {
        const path = join(dir, m.path, 'config.json');
        const config = await readJson(join(dir, m.path), 'config.json');
        if (config === undefined) throw new CheckpointError(`'${path}' is missing (the Pooling module's settings)`);
        settings.pooling = poolingOf(config, path);
        break;
      }
      case 'Normalize':
        settings.normalize = true;
        break;
      default:
        settings.unsupported.push(`${m.type} (${m.path || '.'})`);
    }
  }
  if (transformers !== 1) {
    throw new CheckpointError(`'${listPath}' names ${transformers} Transformer modules; tsbert runs folders with one`);
  }
  return settings;
}

/** Files a sentence-transformers folder holds beside the model that a save keeps (the model card and license too), `modules.json` first. */
const TOP_FILES = [
  'modules.json',
  'config_sentence_transformers.json',
  'README.md',
  'LICENSE',
  'LICENSE.md',
  'LICENSE.txt',
];

/** Files of the `Transformer` module's folder that a save keeps beside the weights. */
const MODEL_FILES = ['sentence_bert_config.json', 'vocab.txt'];

/**
 * Copies the sentence-transformers files of the folder `source` (read as `settings`) into
 * `dir`, where a model has just been saved: `modules.json` (its `Transformer` now `dir`
 * itself), the other modules' folders, `sentence_bert_config.json`, `vocab.txt`,
 * `config_sentence_transformers.json`, the model card and the license, whichever the source
 * has. Nothing is copied onto itself.
 */
export async function copySentenceFiles(source: string, settings: SentenceSettings, dir: string): Promise<void> {
  if (resolve(source) === resolve(dir)) return;
  const present = async (path: string) => (await stat(path).catch(() => undefined)) !== undefined;
  const modules = modulesOf(await readJson(source, 'modules.json'), join(source, 'modules.json'));
  // the modules' folders first and modules.json last: an interrupted copy never names a folder it lacks
  for (const m of modules) {
    const from = join(source, m.path);
    if (className(m.type) === 'Transformer' || m.path === '' || !(await present(from))) continue;
    await cp(from, join(dir, m.path), { recursive: true, force: true });
  }
  for (const name of MODEL_FILES) {
    const from = join(source, settings.transformerPath, name);
    if (await present(from)) await writeAtomic(dir, name, await readFile(from));
  }
  for (const name of TOP_FILES.slice(1)) {
    const from = join(source, name);
    if (await present(from)) await writeAtomic(dir, name, await readFile(from));
  }
  const original = (await readJson(source, 'modules.json')) as Record<string, unknown>[];
  const written = original.map((m, i) => (className(modules[i].type) === 'Transformer' ? { ...m, path: '' } : m));
  await writeAtomic(dir, 'modules.json', `${JSON.stringify(written, null, 2)}\n`);
}
