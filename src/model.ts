/**
 * {@link BertModel}: a native BERT model with its vocabulary, saved to and loaded from a
 * folder (weights as safetensors, config and vocabulary as JSON).
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { type BertConfig, type ModelSizes, TEXTBOOK_SIZES } from './config.js';
import { Vocab } from './data/vocab.js';
import { type Device, type ResolvedDevice, resolveDevice } from './device.js';
import { CheckpointError } from './errors.js';
import { binding } from './native.js';

/** The native model class of the addon. */
type NativeBert = InstanceType<typeof binding.NativeBert>;

/** How a new model is made. */
export interface CreateModelOptions {
  /** Sizes; missing ones take the textbook values. */
  config?: Partial<ModelSizes>;
  /** Seeds the initial weights and dropout (an integer ≥ 0); default 0. */
  seed?: number;
  /** Adam's learning rate; default 0.01. */
  lr?: number;
  /** L2 weight decay added to gradients; default 0. */
  weightDecay?: number;
  /** Where the model runs; default `'auto'`. */
  device?: Device;
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

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Writes `bytes` to `dir/name` through a temporary file and a rename. */
async function writeAtomic(dir: string, name: string, bytes: string | Uint8Array): Promise<void> {
  const tmp = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  await writeFile(tmp, bytes, { flush: true });
  await rename(tmp, join(dir, name));
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
  const sizes =
    c &&
    ['vocabSize', 'hidden', 'ffnHidden', 'heads', 'layers', 'maxPositions'].every((k) =>
      Number.isInteger(c[k as keyof BertConfig]),
    );
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

/** A BERT model (native, with its Adam state) and the vocabulary its token ids come from. */
export class BertModel {
  /** The native model: training steps, encoding, parameters. */
  readonly native: NativeBert;
  /** The vocabulary that maps words to this model's token ids. */
  readonly vocab: Vocab;
  /** The device the model runs on (several: trained data-parallel). */
  readonly device: ResolvedDevice;

  private constructor(native: NativeBert, vocab: Vocab, device: ResolvedDevice) {
    this.native = native;
    this.vocab = vocab;
    this.device = device;
  }

  /** A freshly initialised model for `vocab`; the same options give bit-identical weights. */
  static create(vocab: Vocab, options: CreateModelOptions = {}): BertModel {
    const device = resolveDevice(options.device);
    const config = { ...TEXTBOOK_SIZES, ...options.config, vocabSize: vocab.size };
    const native = new binding.NativeBert(config, {
      seed: options.seed,
      lr: options.lr,
      weightDecay: options.weightDecay,
      device: Array.isArray(device) ? [...device] : device,
    });
    return new BertModel(native, vocab, device);
  }

  /** The model's sizes. */
  get config(): BertConfig {
    return this.native.config;
  }

  /**
   * Saves the model to `dir` (created if needed): the weights as safetensors, the vocabulary
   * and `config.json` as JSON. Every file is written to a temporary name and renamed; the
   * weights and vocabulary files are named by content and `config.json`, which names them
   * with their checksums, is replaced last. An interrupted save therefore leaves the folder's
   * previous model (or nothing) loadable, never a half-written one.
   */
  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const tmpWeights = join(dir, `.weights.${randomBytes(6).toString('hex')}.tmp`);
    await this.native.saveWeights(tmpWeights);
    let weights: Buffer;
    try {
      weights = await readFile(tmpWeights);
    } finally {
      await rm(tmpWeights, { force: true });
    }
    const vocab = Buffer.from(JSON.stringify(this.vocab.toJSON()));
    const [weightsSha, vocabSha] = [sha256(weights), sha256(vocab)];
    const manifest: Manifest = {
      format: 'tsbert',
      version: 1,
      config: this.config,
      weights: { file: `weights-${weightsSha.slice(0, 16)}.safetensors`, sha256: weightsSha },
      vocab: { file: `vocab-${vocabSha.slice(0, 16)}.json`, sha256: vocabSha },
    };
    await writeAtomic(dir, manifest.weights.file, weights);
    await writeAtomic(dir, manifest.vocab.file, vocab);
    await writeAtomic(dir, MANIFEST, `${JSON.stringify(manifest, null, 2)}\n`);
    const keep = new Set([MANIFEST, manifest.weights.file, manifest.vocab.file]);
    for (const name of await readdir(dir)) {
      if (!keep.has(name) && /^(weights-[0-9a-f]{16}\.safetensors|vocab-[0-9a-f]{16}\.json)$/.test(name)) {
        await rm(join(dir, name), { force: true });
      }
    }
  }

  /**
   * Loads a model saved by {@link BertModel.save}. A missing folder or file, a checksum
   * mismatch, or weights that do not fit the config give a {@link CheckpointError}.
   */
  static async load(dir: string, options: { device?: Device } = {}): Promise<BertModel> {
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
    await readChecked(dir, manifest.weights, 'weights');
    const device = resolveDevice(options.device);
    const native = new binding.NativeBert(manifest.config, { device: Array.isArray(device) ? [...device] : device });
    try {
      await native.loadWeights(join(dir, manifest.weights.file));
    } catch (cause) {
      throw new CheckpointError((cause as Error).message, { cause });
    }
    return new BertModel(native, vocab, device);
  }
}
