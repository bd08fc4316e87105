/**
 * Training checkpoints: everything a run needs to go on. A checkpoint is a folder
 * `checkpoints/step-000123/` of the run's output folder holding the model (tsbert's format),
 * the optimizer's state (Adam's moments and step count, the dropout streams) and `run.json`
 * (the run's options, the step, the position in the data, the step's record, and the SHA-256
 * of the optimizer state, of the model's `config.json` and of `run.json` itself: with the
 * model's own checksums, every file of a checkpoint is checked when it is read). It is written
 * under a temporary name and renamed, so a run killed while saving leaves the previous
 * checkpoints intact; only the last few are kept.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointError } from '../errors.js';
import type { BertModel } from '../model.js';
import { running } from '../model-folder.js';
import type { StepRecord } from './history.js';

/** The folder of a run's output folder that holds its checkpoints. */
export const CHECKPOINTS_DIR = 'checkpoints';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const RUN_FILE = 'run.json';
const CHECKPOINT_NAME = /^step-(\d+)$/;
const TEMP_NAME = /^\.step-\d+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/** Where a run is: what `run.json` holds besides the options. */
export interface RunPosition {
  /** Optimizer steps taken. */
  step: number;
  /** Batches of the data served so far, over all epochs (the data's position). */
  batchesServed: number;
  /** Examples an epoch of the training data had (to tell a changed corpus). */
  numExamples: number;
}

/** What a run saves in `run.json`: the position, the run's options (JSON values) and the step's record. */
export interface RunState<Options, Step = StepRecord> extends RunPosition {
  /** The run's options, as resolved when it started. */
  options: Options;
  /** The record of the checkpoint's step (a history cut short by a crash gets it back on resume). */
  record?: Step;
  /** A fine-tuning run's best evaluation so far: its step, its metric's value, and the evaluations since without improvement. */
  best?: { step: number; value: number; stale: number };
}

/** `run.json` as written (version 2): the state, and the checksums of the checkpoint's files and of itself. */
interface RunFile<Options, Step> extends RunState<Options, Step> {
  /** Layout version of `run.json` (1: no checksums, no record). */
  version: 2;
  /** SHA-256 of the optimizer state and of the model's manifest. */
  files: { [OPTIMIZER_FILE]: string; 'config.json': string };
  /** SHA-256 of this JSON without this field, as `JSON.stringify` writes it. */
  sha256: string;
}

const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

/** A checkpoint read back. */
export interface Checkpoint<Options, Step = StepRecord> {
  /** Its folder (a model folder too). */
  dir: string;
  /** What `run.json` holds. */
  state: RunState<Options, Step>;
  /** The optimizer state's bytes. */
  optimizer: Uint8Array;
  /** The model's sizes and variants, as its manifest (`config.json`) gives them. */
  modelConfig: Record<string, unknown>;
}

const nameOf = (step: number) => `step-${String(step).padStart(6, '0')}`;

/**
 * The checkpoint folders of `root` (a `checkpoints` folder), oldest first.
 *
 * @internal
 */
export async function checkpointsIn(root: string): Promise<{ name: string; step: number }[]> {
  const names = await readdir(root).catch(() => [] as string[]);
  return names
    .flatMap((name) => {
      const m = CHECKPOINT_NAME.exec(name);
      return m ? [{ name, step: Number(m[1]) }] : [];
    })
    .sort((a, b) => a.step - b.step);
}

/**
 * Writes a checkpoint of `model` at `state.step` into `runDir/checkpoints/`, atomically, and
 * removes all but the last `keep` (and what killed saves left). Returns its folder.
 */
export async function writeCheckpoint<Options, Step = StepRecord>(
  runDir: string,
  model: BertModel,
  state: RunState<Options, Step>,
  keep: number,
): Promise<string> {
  const root = join(runDir, CHECKPOINTS_DIR);
  await mkdir(root, { recursive: true });
  for (const name of await readdir(root)) {
    const temp = TEMP_NAME.exec(name);
    if (temp && !running(Number(temp[1]))) await rm(join(root, name), { recursive: true, force: true });
  }
  const tmp = join(root, `.step-${state.step}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await model.save(tmp);
    const optimizer = await model.saveOptimizerState();
    await writeFile(join(tmp, OPTIMIZER_FILE), optimizer, { flush: true });
    const files = {
      [OPTIMIZER_FILE]: sha256(optimizer),
      'config.json': sha256(await readFile(join(tmp, 'config.json'))),
    };
    const unsigned = { version: 2 as const, ...state, files };
    const run: RunFile<Options, Step> = { ...unsigned, sha256: sha256(JSON.stringify(unsigned)) };
    await writeFile(join(tmp, RUN_FILE), `${JSON.stringify(run, null, 2)}\n`, { flush: true });
    const dir = join(root, nameOf(state.step));
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    const all = await checkpointsIn(root);
    for (const old of all.slice(0, Math.max(0, all.length - keep))) {
      await rm(join(root, old.name), { recursive: true, force: true });
    }
    return dir;
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code !== 'string' || !code.startsWith('E')) throw error;
    throw new Error(`cannot write a checkpoint into '${root}' (${code})`, { cause: error });
  }
}

/**
 * The checkpoint `dir` names: a checkpoint folder, or a run's output folder (its latest
 * checkpoint). A {@link CheckpointError} saying what is missing otherwise.
 */
export async function findCheckpoint(dir: string): Promise<string> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new CheckpointError(`resume: '${dir}': no such folder`);
  if (
    await stat(join(dir, RUN_FILE)).then(
      () => true,
      () => false,
    )
  )
    return dir;
  const all = await checkpointsIn(join(dir, CHECKPOINTS_DIR));
  if (all.length === 0) {
    throw new CheckpointError(
      `resume: '${dir}' is neither a checkpoint (no ${RUN_FILE}) nor a run folder with checkpoints`,
    );
  }
  return join(dir, CHECKPOINTS_DIR, all[all.length - 1].name);
}

/**
 * Reads the checkpoint in `dir` (see {@link findCheckpoint}), every file checked against its
 * checksum; a {@link CheckpointError} naming the checkpoint and the missing, edited or
 * corrupt file otherwise. (A version-1 `run.json`, from before checksums, is read unchecked.)
 */
export async function readCheckpoint<Options, Step = StepRecord>(dir: string): Promise<Checkpoint<Options, Step>> {
  const found = await findCheckpoint(dir);
  const fail = (what: string, cause?: unknown) => new CheckpointError(`checkpoint '${found}': ${what}`, { cause });
  const read = async (name: string) =>
    readFile(join(found, name)).catch((cause: unknown) => {
      throw fail(`cannot read ${name} (${(cause as NodeJS.ErrnoException).code})`, cause);
    });
  const text = (await read(RUN_FILE)).toString('utf8');
  let state: RunFile<Options, Step> | (RunState<Options, Step> & { version: 1 });
  try {
    state = JSON.parse(text);
  } catch (cause) {
    throw fail(`${RUN_FILE} is not JSON`, cause);
  }
  const whole = (n: unknown) => Number.isInteger(n) && (n as number) >= 0;
  if (
    (state?.version !== 1 && state?.version !== 2) ||
    !whole(state.step) ||
    !whole(state.batchesServed) ||
    !whole(state.numExamples) ||
    typeof state.options !== 'object' ||
    state.options === null
  ) {
    throw fail(`${RUN_FILE} is not a tsbert run state (version 1 or 2)`);
  }
  const optimizer = await read(OPTIMIZER_FILE);
  const manifest = await read('config.json');
  let modelConfig: Record<string, unknown>;
  try {
    modelConfig = JSON.parse(manifest.toString('utf8')).config;
  } catch (cause) {
    throw fail('config.json is not JSON', cause);
  }
  if (typeof modelConfig !== 'object' || modelConfig === null) throw fail('config.json has no model config');
  if (state.version === 2) {
    const { sha256: sum, ...unsigned } = state;
    if (sha256(JSON.stringify(unsigned)) !== sum)
      throw fail(`${RUN_FILE} was edited or is corrupt (checksum mismatch)`);
    const expected = state.files ?? {};
    const actual = { [OPTIMIZER_FILE]: sha256(optimizer), 'config.json': sha256(manifest) };
    for (const [name, sum] of Object.entries(actual)) {
      if (expected[name as keyof typeof expected] !== sum) {
        throw fail(`${name} was edited or is corrupt (checksum mismatch)`);
      }
    }
  }
  return { dir: found, state, optimizer, modelConfig };
}
