/**
 * A run's output folder, kept from other runs: one run at a time holds it (a lock file naming
 * the process, which a killed process does not leave stuck); a new run refuses a folder that
 * holds what another run left (a model, checkpoints, a history) unless it resumes that run or
 * is told to overwrite it; and nothing of the old run is removed before the new one has
 * trained a step, so that a run that trains nothing writes nothing.
 *
 * @module
 */

import { mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';

import { running } from '../model-folder.js';
import { CHECKPOINTS_DIR, checkpointsIn } from './checkpoints.js';
import { HISTORY_FILE } from './history.js';

/** The lock file of a held folder: `{ pid, host }` of the run that holds it. */
export const LOCK_FILE = '.tsbert-run.lock';

/** The folders this process holds (a lock file naming this process's id is stale otherwise: a reused id). */
const HELD = new Set<string>();

/** How a run takes its folder. */
export interface HoldOptions {
  /** The checkpoint the run resumes (its folder and step), if it does. */
  resumed?: { dir: string; step: number };
  /** Replace what another run left (its checkpoints once this run has trained a step, its model at the end). */
  overwrite: boolean;
}

/** What `dir` holds of an earlier run, in words (empty: nothing). */
async function leftovers(dir: string, checkpoints: number): Promise<string[]> {
  const has = (name: string) =>
    stat(join(dir, name)).then(
      () => true,
      () => false,
    );
  const found: string[] = [];
  if (await has('config.json')) found.push('a model');
  if (checkpoints > 0) found.push(`${checkpoints} checkpoint${checkpoints > 1 ? 's' : ''}`);
  if (await has(HISTORY_FILE)) found.push(HISTORY_FILE);
  return found;
}

/** The process that holds `lock`, if its file names a live one (on this machine). */
async function holder(lock: string): Promise<number | undefined> {
  const text = await readFile(lock, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const { pid, host } = JSON.parse(text) as { pid: unknown; host: unknown };
    if (typeof pid !== 'number' || host !== hostname()) return undefined;
    if (pid === process.pid) return HELD.has(lock) ? pid : undefined;
    return running(pid) ? pid : undefined;
  } catch {
    return undefined; // a lock cut by a crash while it was written
  }
}

/** A run's hold on its output folder (see the module's doc). */
export class RunFolder {
  /** The folder. */
  readonly dir: string;
  readonly #lock: string;
  readonly #created: boolean;
  readonly #resumed: HoldOptions['resumed'];
  #claimed = false;

  private constructor(dir: string, lock: string, created: boolean, resumed: HoldOptions['resumed']) {
    this.dir = dir;
    this.#lock = lock;
    this.#created = created;
    this.#resumed = resumed;
  }

  /**
   * Takes `dir` (made if needed) for a run: an `Error` when another run holds it; a
   * `RangeError` naming `resume` and `overwrite` when it holds another run's model, checkpoints
   * or history and this run neither resumes that run's latest checkpoint nor overwrites.
   */
  static async hold(dir: string, options: HoldOptions): Promise<RunFolder> {
    const created = (await mkdir(dir, { recursive: true })) !== undefined;
    const lock = resolve(dir, LOCK_FILE);
    const record = `${JSON.stringify({ pid: process.pid, host: hostname() })}\n`;
    for (let attempt = 0; ; attempt++) {
      try {
        await writeFile(lock, record, { flag: 'wx' });
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
        const pid = await holder(lock);
        if (pid !== undefined) {
          throw new Error(
            `out: '${dir}' is in use by another run (process ${pid}${pid === process.pid ? ', this one' : ''}); wait for it to end or choose another folder`,
          );
        }
        // stale: its run was killed; moved aside first, so that only one taker removes it
        const aside = `${lock}.${process.pid}.stale`;
        await rename(lock, aside).catch(() => {});
        await rm(aside, { force: true });
      }
    }
    HELD.add(lock);
    const folder = new RunFolder(dir, lock, created, options.resumed);
    try {
      await folder.#check(options);
    } catch (error) {
      await folder.release();
      throw error;
    }
    return folder;
  }

  async #check({ resumed, overwrite }: HoldOptions): Promise<void> {
    if (overwrite) return;
    const all = await checkpointsIn(join(this.dir, CHECKPOINTS_DIR));
    const latest = all.at(-1);
    if (resumed && latest && resolve(resumed.dir) === resolve(this.dir, CHECKPOINTS_DIR, latest.name)) return;
    if (resumed && latest && resolve(resumed.dir, '..') === resolve(this.dir, CHECKPOINTS_DIR)) {
      throw new RangeError(
        `resume: '${resumed.dir}' is not the latest checkpoint of '${this.dir}' (${latest.name} is): going on from it would mix that run's later checkpoints with this one's; resume the latest, or give overwrite (--overwrite) to drop the later ones`,
      );
    }
    const found = await leftovers(this.dir, all.length);
    if (found.length > 0) {
      throw new RangeError(
        `out: '${this.dir}' holds what another run left (${found.join(', ')}); continue that run with resume (--resume ${this.dir}), replace it with overwrite (--overwrite), or choose another folder`,
      );
    }
  }

  /**
   * Makes the folder this run's, once it has trained a step: removes the checkpoints that are
   * not this run's past (all of them for a new run, those after the resumed step otherwise).
   * Does nothing the second time.
   */
  async claim(): Promise<void> {
    if (this.#claimed) return;
    this.#claimed = true;
    const root = join(this.dir, CHECKPOINTS_DIR);
    const past = this.#resumed && resolve(this.#resumed.dir, '..') === resolve(root) ? this.#resumed.step : -1;
    for (const old of await checkpointsIn(root)) {
      if (old.step > past) await rm(join(root, old.name), { recursive: true, force: true });
    }
  }

  /** Lets the folder go: removes the lock, and the folder itself if this run made it and left it empty. */
  async release(): Promise<void> {
    HELD.delete(this.#lock);
    await rm(this.#lock, { force: true });
    if (this.#created && (await readdir(this.dir).catch(() => ['?'])).length === 0) {
      await rmdir(this.dir).catch(() => {});
    }
  }
}
