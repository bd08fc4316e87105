/**
 * A run's output folder is never lost to another run (issue 22, findings 1–4): a run stopped
 * before its first step writes nothing; a new run refuses a folder holding another run unless
 * it resumes it or overwrites; one run at a time holds a folder; a finite blow-up is a
 * divergence; saves into one folder at once leave a loadable model.
 */
import { mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { BertModel, encode, type HistoryLine, pretrain, TrainingDivergedError } from '../../src/index.js';
import { LOCK_FILE } from '../../src/training/run-folder.js';
import { paragraphs, TINY } from '../api/corpus.js';

const data = paragraphs(200);
const folder = async (name: string) => join(await mkdtemp(join(tmpdir(), `tsbert-out-${name}-`)), 'run');

/** Every file under `dir` with its bytes (base64), sorted by path. */
async function snapshot(dir: string): Promise<[string, string][]> {
  const names = (await readdir(dir, { recursive: true })).sort();
  const files: [string, string][] = [];
  for (const name of names) {
    if ((await stat(join(dir, name))).isFile())
      files.push([name, (await readFile(join(dir, name))).toString('base64')]);
  }
  return files;
}

const steps = async (dir: string) =>
  (await readFile(join(dir, 'history.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as HistoryLine)
    .filter((l) => l.kind === 'step')
    .map((l) => l.step);

describe('a run stopped before its first step', () => {
  it('rejects with the signal’s reason and leaves the model, checkpoints and history in out as they were', async () => {
    const out = await folder('stopped');
    await pretrain({ data, steps: 3, ...TINY, out });
    const before = await snapshot(out);
    const error = await pretrain({ data, steps: 6, ...TINY, out, resume: out, signal: AbortSignal.abort() }).catch(
      (e: unknown) => e,
    );
    expect((error as Error).name).toBe('AbortError');
    const fresh = await pretrain({ data, steps: 6, ...TINY, out, overwrite: true, signal: AbortSignal.abort() }).catch(
      (e: unknown) => e,
    );
    expect((fresh as Error).name).toBe('AbortError');
    expect(await snapshot(out)).toEqual(before);
  });

  it('stops while the corpus is read, within a second, writing nothing (not even the folder)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-big-corpus-'));
    const corpus = join(dir, 'corpus.txt');
    await writeFile(corpus, paragraphs(60_000).join('\n')); // about 12 MB
    const out = await folder('reading');
    const controller = new AbortController();
    let stoppedAt = 0;
    let lastProgress = 0;
    const error = await pretrain({
      data: corpus,
      steps: 2,
      ...TINY,
      out,
      signal: controller.signal,
      onDataProgress: (done, total) => {
        lastProgress = done / total;
        if (!controller.signal.aborted) {
          stoppedAt = performance.now();
          controller.abort();
        }
      },
    }).catch((e: unknown) => e);
    expect((error as Error).name).toBe('AbortError');
    expect(performance.now() - stoppedAt).toBeLessThan(1000);
    expect(lastProgress).toBeLessThan(1);
    await expect(stat(out)).rejects.toThrow(/ENOENT/);
  });
});

describe('a new run into a folder that holds another run', () => {
  it('is refused, naming resume and overwrite, unless it overwrites; then only its own checkpoints are kept and resumed', async () => {
    const out = await folder('taken');
    await pretrain({ data, steps: 8, saveEvery: 2, ...TINY, out });
    const before = await snapshot(out);
    await expect(pretrain({ data, steps: 3, ...TINY, seed: 9, out })).rejects.toThrow(
      /^out: '.*run' holds what another run left \(a model, 3 checkpoints, history.jsonl\); continue that run with resume \(--resume .*\), replace it with overwrite \(--overwrite\)/,
    );
    expect(await snapshot(out)).toEqual(before);

    const { checkpoint } = await pretrain({ data, steps: 3, ...TINY, seed: 9, out, overwrite: true });
    expect(checkpoint).toBe(join(out, 'checkpoints', 'step-000003'));
    expect(await readdir(join(out, 'checkpoints'))).toEqual(['step-000003']);
    const resumed = await pretrain({ data, steps: 5, ...TINY, out, resume: out });
    expect(resumed.history.map((r) => r.step)).toEqual([4, 5]);
    expect(await steps(out)).toEqual([1, 2, 3, 4, 5]);
  });

  it('refuses to resume a checkpoint of the folder that is not its latest, unless it overwrites the later ones', async () => {
    const out = await folder('branch');
    await pretrain({ data, steps: 6, saveEvery: 2, ...TINY, out });
    const older = join(out, 'checkpoints', 'step-000004');
    await expect(pretrain({ data, steps: 8, ...TINY, out, resume: older })).rejects.toThrow(
      /^resume: '.*step-000004' is not the latest checkpoint of '.*run' \(step-000006 is\)/,
    );
    await pretrain({ data, steps: 5, ...TINY, out, resume: older, overwrite: true });
    expect(await readdir(join(out, 'checkpoints'))).toEqual(['step-000002', 'step-000004', 'step-000005']);
    expect(await steps(out)).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('one run at a time in a folder', () => {
  it('refuses a second run while the first holds the folder, and takes over the lock of a killed one', async () => {
    const out = await folder('locked');
    const first = pretrain({ data, steps: 30, ...TINY, out });
    await new Promise((r) => setTimeout(r, 50));
    await expect(pretrain({ data, steps: 3, ...TINY, out, overwrite: true })).rejects.toThrow(
      /^out: '.*run' is in use by another run \(process \d+, this one\)/,
    );
    await first;
    // a lock left by a process that no longer runs is stale
    await writeFile(
      join(out, LOCK_FILE),
      JSON.stringify({ pid: 2 ** 22 + 17, host: (await import('node:os')).hostname() }),
    );
    await pretrain({ data, steps: 31, ...TINY, out, resume: out });
    await expect(stat(join(out, LOCK_FILE))).rejects.toThrow(/ENOENT/);
  });
});

describe('a run that blows up without a NaN', () => {
  it('is stopped as diverged by the uniform-guess rule and leaves the model in out as it was', async () => {
    const out = await folder('blown');
    await pretrain({ data, steps: 2, ...TINY, out });
    const model = async () => (await snapshot(out)).filter(([n]) => !/^(checkpoints|history|loss)/.test(n));
    const before = await model();
    const error = await pretrain({ data, steps: 40, ...TINY, lr: 1e6, out, overwrite: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrainingDivergedError);
    expect((error as Error).message).toMatch(/loss is [\d.e+]+, over 10 times a uniform guess's \(ln \d+ = [\d.]+\)/);
    expect(await model()).toEqual(before);
  });
});

describe('saves into one folder at once', () => {
  it('leave the model of the last save asked for, loadable', async () => {
    const [a, b] = await Promise.all([1, 2].map((seed) => pretrain({ data, steps: 2, ...TINY, seed })));
    const words = ['a', 'crane', 'is', 'flying'];
    for (let i = 0; i < 8; i++) {
      const dir = await mkdtemp(join(tmpdir(), 'tsbert-saves-'));
      await mkdir(dir, { recursive: true });
      await Promise.all([a.model.save(dir), b.model.save(dir), a.model.save(dir), b.model.save(dir)]);
      const loaded = await BertModel.load(dir);
      expect(Array.from((await encode(loaded, words)).data)).toEqual(Array.from((await encode(b.model, words)).data));
    }
  });
});

describe('a save that cannot be written', () => {
  it('names the file and leaves no temporary file behind', async () => {
    const { model } = await pretrain({ data, steps: 1, ...TINY });
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-blocked-'));
    await mkdir(join(dir, 'config.json', 'inside'), { recursive: true }); // a folder where config.json goes
    await expect(model.save(dir)).rejects.toThrow(/^cannot write '.*config\.json' \((EISDIR|ENOTEMPTY|EEXIST)\)$/);
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});
