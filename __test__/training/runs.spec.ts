import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { CheckpointError, type HistoryLine, type PretrainOptions, pretrain } from '../../src/index.js';
import { paragraphs, TINY } from '../api/corpus.js';

const data = paragraphs(300);
const valid = paragraphs(40, 2);
/** Everything a run can vary at once: dropout on (the textbook's 0.1), warmup and cosine decay, clipping, accumulation, AdamW, evaluation. */
const RUN: PretrainOptions = {
  data,
  valid,
  ...TINY,
  batchSize: 16,
  seed: 3,
  lr: 0.005,
  warmupSteps: 2,
  schedule: 'cosine',
  clipNorm: 1,
  accumulate: 2,
  optimizer: 'adamw',
  evalEvery: 2,
  evalExamples: 40,
};

const folder = (name: string) => mkdtemp(join(tmpdir(), `tsbert-run-${name}-`));
const lines = async (dir: string) =>
  (await readFile(join(dir, 'history.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as HistoryLine);
/** The checksum of the final weights, as the model folder's manifest records it. */
const weightsOf = async (dir: string) => JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')).weights.sha256;
/** A line without its timing, which differs between runs. */
const withoutTiming = (l: HistoryLine) => ({ ...l, pairsPerSec: undefined });

describe('a resumable run', () => {
  it('gives N steps in one go and N/2 + resume + N/2 the same losses, evaluations and weights, bit for bit', async () => {
    const [whole, split] = [await folder('whole'), await folder('split')];
    const one = await pretrain({ ...RUN, steps: 6, out: whole });
    // the first half stops as a preempted run does (the schedule decays over the 6 steps it was planned for)
    const stop = new AbortController();
    const first = await pretrain({
      ...RUN,
      steps: 6,
      out: split,
      signal: stop.signal,
      onStep: (r) => r.step === 3 && stop.abort(),
    });
    expect(first.summary).toMatchObject({ aborted: true, lastStep: 3 });
    expect(first.checkpoint).toBe(join(split, 'checkpoints', 'step-000003'));
    const second = await pretrain({ resume: split, steps: 6, data, valid, out: split }); // lines in memory are given again
    expect(second.history.map((r) => r.step)).toEqual([4, 5, 6]);
    expect(second.summary.lastStep).toBe(6);
    expect(second.history).toEqual(
      one.history.slice(3).map((r, i) => ({ ...r, pairsPerSec: second.history[i].pairsPerSec })),
    );
    expect((await lines(split)).map(withoutTiming)).toEqual((await lines(whole)).map(withoutTiming));
    expect(await weightsOf(split)).toBe(await weightsOf(whole));
    const evals = (await lines(whole)).filter((l) => l.kind === 'eval');
    expect(evals.map((l) => l.step)).toEqual([2, 4, 6]);
    for (const e of evals) {
      if (e.kind !== 'eval') continue;
      expect(e.examples).toBe(40);
      expect(e.mlmAccuracy).toBeGreaterThanOrEqual(0);
      expect(e.nspAccuracy).toBeLessThanOrEqual(1);
    }
    const steps = (await lines(whole)).filter((l) => l.kind === 'step');
    expect(steps.map((l) => (l.kind === 'step' ? l.lr : 0))[0]).toBeCloseTo(0.0025, 12); // warmup: lr / 2 at step 1
  });

  it('keeps the last checkpoints, writes them atomically, and resumes from a run folder or a checkpoint', async () => {
    const out = await folder('keep');
    await pretrain({ ...RUN, steps: 5, out, saveEvery: 1, keepCheckpoints: 2 });
    const kept = await readdir(join(out, 'checkpoints'));
    expect(kept).toEqual(['step-000004', 'step-000005']);
    for (const name of kept) {
      expect((await readdir(join(out, 'checkpoints', name))).sort()).toEqual(
        expect.arrayContaining(['config.json', 'optimizer.safetensors', 'run.json']),
      );
    }
    const fromCheckpoint = await pretrain({ resume: join(out, 'checkpoints', 'step-000004'), steps: 5, data });
    const fromFolder = await pretrain({ resume: out, steps: 7, data });
    expect(fromCheckpoint.history.map((r) => r.step)).toEqual([5]);
    expect(fromFolder.history.map((r) => r.step)).toEqual([6, 7]);
  });

  it('refuses to change what makes the run, another corpus, and a damaged checkpoint', async () => {
    const out = await folder('refuse');
    await pretrain({ ...RUN, steps: 3, out });
    await expect(pretrain({ resume: out, steps: 4, data, lr: 0.1 })).rejects.toThrow(
      /^lr: a resumed run keeps its options \(it has 0\.005\)/,
    );
    await expect(pretrain({ resume: out, steps: 3, data })).rejects.toThrow(/^steps: the run is at step 3 already/);
    await expect(pretrain({ resume: out, steps: 4, data: paragraphs(200, 9) })).rejects.toThrow(
      /^data: the corpus makes \d+ examples, the run's made \d+/,
    );
    const run = join(out, 'checkpoints', 'step-000003', 'run.json');
    await writeFile(run, '{"version": 1, "step": "two"}');
    await expect(pretrain({ resume: out, steps: 4, data })).rejects.toThrow(CheckpointError);
    await writeFile(run, 'not json');
    await expect(pretrain({ resume: out, steps: 4, data })).rejects.toThrow(/run.json is not JSON/);
    await expect(pretrain({ resume: join(out, 'nothing'), steps: 4, data })).rejects.toThrow(
      /^resume: .*no such folder/,
    );
  });
});

describe('gradient accumulation', () => {
  it('makes the update of one batch of all the rows', async () => {
    const base = { data, ...TINY, config: { ...TINY.config, dropout: 0 }, seed: 5, steps: 2 };
    const [twoOf8, oneOf16] = [await folder('acc2'), await folder('acc1')];
    const a = await pretrain({ ...base, batchSize: 8, accumulate: 2, out: twoOf8 });
    const b = await pretrain({ ...base, batchSize: 16, accumulate: 1, out: oneOf16 });
    // the same 16 rows a step? Batches of 8 are served in the same order as halves of batches of 16
    expect(a.history.map((r) => r.mlmLoss)[0]).toBeCloseTo(b.history[0].mlmLoss, 5);
    expect(a.history.map((r) => r.nspLoss)[1]).toBeCloseTo(b.history[1].nspLoss, 5);
  });
});
