/**
 * A sentence-transformers folder's own settings: which modules it runs (`modules.json`), how
 * its `Pooling` module pools (`1_Pooling/config.json`), how long a text may be and whether it
 * is lower-cased (`sentence_bert_config.json`), so that {@link embed} gives what
 * `SentenceTransformer(dir).encode()` gives; and the copy of those files when such a model is
 * saved.
 *
 * @module
 */
import { cp, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { CheckpointError } from './errors.js';
import { pathExists, readOptional, writeAtomic } from './model-folder.js';

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

/** A module of `modules.json`: its folder and class, and its entry as the file has it. */
export interface ModuleEntry {
  /** The module's folder, relative to the model's (`''`: the folder itself). */
  path: string;
  /** Its class (`sentence_transformers.models.Pooling`). */
  type: string;
  /** The whole entry, as `modules.json` has it (`idx`, `name`, …). */
  entry: Record<string, unknown>;
}

/** The class name of a module `type` (`sentence_transformers.models.Pooling` → `Pooling`). */
const className = (type: string) => type.slice(type.lastIndexOf('.') + 1);

/** Whether a module of `modules.json` is the `Transformer` (the model itself). */
export const isTransformer = (m: ModuleEntry) => className(m.type) === 'Transformer';

/** The parsed JSON of `dir/name`, `undefined` when there is no such file; bad JSON a {@link CheckpointError}. */
async function readJson(dir: string, name: string): Promise<unknown> {
  const bytes = await readOptional(dir, name);
  if (bytes === undefined) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (cause) {
    throw new CheckpointError(`'${join(dir, name)}' is not valid JSON`, { cause });
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The modules of `dir/modules.json`, checked (`undefined` when there is none): an entry without
 * a string `type` and `path`, or with a path outside the folder, is a {@link CheckpointError}.
 */
export async function readModules(dir: string): Promise<ModuleEntry[] | undefined> {
  const path = join(dir, 'modules.json');
  const json = await readJson(dir, 'modules.json');
  if (json === undefined) return undefined;
  const bad = (why: string) => new CheckpointError(`'${path}' is not a sentence-transformers module list: ${why}`);
  if (!Array.isArray(json)) throw bad('expected an array');
  return json.map((m, i) => {
    if (!isObject(m) || typeof m.type !== 'string' || typeof m.path !== 'string') {
      throw bad(`entry ${i} lacks a string 'type' and 'path'`);
    }
    if (m.path.split(/[/\\]/).includes('..')) throw bad(`entry ${i} names a path outside the folder: ${m.path}`);
    return { type: m.type, path: m.path, entry: m };
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
  const modules = await readModules(dir);
  if (modules === undefined) return undefined;
  const settings: SentenceSettings = {
    pooling: ['mean'],
    normalize: false,
    lowercase: false,
    unsupported: [],
    transformerPath: '',
  };
  let transformers = 0;
  for (const m of modules) {
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
    const listPath = join(dir, 'modules.json');
    throw new CheckpointError(`'${listPath}' names ${transformers} Transformer modules; tsbert runs folders with one`);
  }
  return settings;
}

/** Files a sentence-transformers folder holds beside the model and `modules.json` that a save keeps (the model card and license too). */
const TOP_FILES = ['config_sentence_transformers.json', 'README.md', 'LICENSE', 'LICENSE.md', 'LICENSE.txt'];

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
  const modules = (await readModules(source)) ?? [];
  // the modules' folders first and modules.json last: an interrupted copy never names a folder it lacks
  for (const m of modules) {
    const from = join(source, m.path);
    if (isTransformer(m) || m.path === '' || !(await pathExists(from))) continue;
    await cp(from, join(dir, m.path), { recursive: true, force: true });
  }
  const copies = [
    ...MODEL_FILES.map((name) => [join(source, settings.transformerPath, name), name]),
    ...TOP_FILES.map((name) => [join(source, name), name]),
  ];
  for (const [from, name] of copies) {
    if (await pathExists(from)) await writeAtomic(dir, name, await readFile(from));
  }
  const written = modules.map((m) => (isTransformer(m) ? { ...m.entry, path: '' } : m.entry));
  await writeAtomic(dir, 'modules.json', `${JSON.stringify(written, null, 2)}\n`);
}
