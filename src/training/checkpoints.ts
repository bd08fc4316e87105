/**
 * Training checkpoints: everything a run needs to go on. A checkpoint is a folder
 * `checkpoints/step-000123/` of the run's output folder holding the model (tsbert's format),
 * the optimizer's state (Adam's moments and step count, the dropout streams) and `run.json`
 * (the run's options, the step, the position in the data). It is written under a temporary
 * name and renamed, so a run killed while saving leaves the previous checkpoints intact;
 * only the last few are kept.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CheckpointError } from '../errors.js';
import type { BertModel } from '../model.js';
import { running } from '../model-folder.js';

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

/** `run.json`: the position and the run's options (JSON values). */
export interface RunState<Options> extends RunPosition {
  /** Layout version of `run.json`. */
  version: 1;
  /** The run's options, as resolved when it started. */
  options: Options;
}

/** A checkpoint read back. */
export interface Checkpoint<Options> {
  /** Its folder (a model folder too). */
  dir: string;
  /** What `run.json` holds. */
  state: RunState<Options>;
  /** The optimizer state's bytes. */
  optimizer: Uint8Array;
}

const nameOf = (step: number) => `step-${String(step).padStart(6, '0')}`;

/** The checkpoint folders of `root` (a `checkpoints` folder), oldest first. */
async function checkpointsIn(root: string): Promise<{ name: string; step: number }[]> {
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
export async function writeCheckpoint<Options>(
  runDir: string,
  model: BertModel,
  state: RunState<Options>,
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
    await writeFile(join(tmp, OPTIMIZER_FILE), await model.saveOptimizerState());
    await writeFile(join(tmp, RUN_FILE), `${JSON.stringify(state, null, 2)}\n`, { flush: true });
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
    throw error;
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

/** Reads the checkpoint in `dir` (see {@link findCheckpoint}); a {@link CheckpointError} naming a missing or bad file. */
export async function readCheckpoint<Options>(dir: string): Promise<Checkpoint<Options>> {
  const found = await findCheckpoint(dir);
  const read = async (name: string) =>
    readFile(join(found, name)).catch((cause: unknown) => {
      throw new CheckpointError(
        `checkpoint '${found}': cannot read ${name} (${(cause as NodeJS.ErrnoException).code})`,
        {
          cause,
        },
      );
    });
  let state: RunState<Options>;
  try {
    state = JSON.parse((await read(RUN_FILE)).toString('utf8')) as RunState<Options>;
  } catch (cause) {
    if (cause instanceof CheckpointError) throw cause;
    throw new CheckpointError(`checkpoint '${found}': ${RUN_FILE} is not JSON`, { cause });
  }
  const whole = (n: unknown) => Number.isInteger(n) && (n as number) >= 0;
  if (
    state?.version !== 1 ||
    !whole(state.step) ||
    !whole(state.batchesServed) ||
    !whole(state.numExamples) ||
    typeof state.options !== 'object'
  ) {
    throw new CheckpointError(`checkpoint '${found}': ${RUN_FILE} is not a tsbert run state (version 1)`);
  }
  return { dir: found, state, optimizer: await read(OPTIMIZER_FILE) };
}
