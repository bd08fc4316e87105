/**
 * Every file of a checkpoint is checked when a run resumes from it, and a history cut short
 * by a crash gets its last step back (issue 22, findings 10 and 11).
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { CheckpointError, type HistoryLine, pretrain } from '../../src/index.js';
import { paragraphs, TINY } from '../api/corpus.js';

const data = paragraphs(200);

/** A finished 2-step run and its last checkpoint's folder. */
async function run(): Promise<{ out: string; checkpoint: string }> {
  const out = join(await mkdtemp(join(tmpdir(), 'tsbert-integrity-')), 'run');
  const { checkpoint } = await pretrain({ data, steps: 2, ...TINY, out });
  return { out, checkpoint: checkpoint as string };
}

const resume = (out: string) => pretrain({ data, steps: 3, ...TINY, out, resume: out });

/** `bytes` of a safetensors file with every value of its tensor `name` (f32) set to NaN. */
function withNaN(bytes: Buffer, name: string): Buffer {
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const [start, end] = header[name].data_offsets as [number, number];
  const out = Buffer.from(bytes);
  for (let at = 8 + headerLength + start; at < 8 + headerLength + end; at += 4) out.writeFloatLE(Number.NaN, at);
  return out;
}

describe('a checkpoint read back', () => {
  it('refuses an edited run.json (its options or its step), naming the checkpoint', async () => {
    const { out, checkpoint } = await run();
    const path = join(checkpoint, 'run.json');
    const original = await readFile(path, 'utf8');
    for (const edit of [
      (s: { options: { lr: number } }) => {
        s.options.lr = 0.5;
      },
      (s: { step: number }) => {
        s.step = 1;
      },
    ]) {
      const state = JSON.parse(original);
      edit(state);
      await writeFile(path, JSON.stringify(state, null, 2));
      const error = await resume(out).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CheckpointError);
      expect((error as Error).message).toBe(
        `checkpoint '${checkpoint}': run.json was edited or is corrupt (checksum mismatch)`,
      );
    }
  });

  it('refuses changed optimizer bytes and a changed model manifest, naming the checkpoint and the file', async () => {
    const { out, checkpoint } = await run();
    const optimizer = join(checkpoint, 'optimizer.safetensors');
    const bytes = await readFile(optimizer);
    const garbage = Buffer.from(bytes);
    garbage.writeFloatLE(123.5, garbage.length - 4); // finite garbage in Adam's moments
    await writeFile(optimizer, garbage);
    await expect(resume(out)).rejects.toThrow(
      `checkpoint '${checkpoint}': optimizer.safetensors was edited or is corrupt (checksum mismatch)`,
    );
    await writeFile(optimizer, bytes);
    const manifest = join(checkpoint, 'config.json');
    const text = await readFile(manifest, 'utf8');
    await writeFile(manifest, text.replace(/"dropout": [\d.]+/, '"dropout": 0.35'));
    await expect(resume(out)).rejects.toThrow(
      `checkpoint '${checkpoint}': config.json was edited or is corrupt (checksum mismatch)`,
    );
  });

  it('names the checkpoint when its optimizer state holds NaN (an unchecked version-1 run.json)', async () => {
    const { out, checkpoint } = await run();
    const state = JSON.parse(await readFile(join(checkpoint, 'run.json'), 'utf8'));
    const { files, sha256, record, ...v1 } = state;
    await writeFile(join(checkpoint, 'run.json'), JSON.stringify({ ...v1, version: 1 }));
    const optimizer = join(checkpoint, 'optimizer.safetensors');
    await writeFile(optimizer, withNaN(await readFile(optimizer), 'v.mlm.mlp.3.weight'));
    const error = await resume(out).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as Error).message).toBe(
      `checkpoint '${checkpoint}': optimizer state: 'v.mlm.mlp.3.weight' holds NaN or infinite values`,
    );
  });
});

describe('a resumed run’s options', () => {
  it('names an option of an (unchecked, version-1) run.json that is out of range, and the checkpoint', async () => {
    const { out, checkpoint } = await run();
    const { files, sha256, record, ...state } = JSON.parse(await readFile(join(checkpoint, 'run.json'), 'utf8'));
    await writeFile(
      join(checkpoint, 'run.json'),
      JSON.stringify({ ...state, version: 1, options: { ...state.options, accumulate: 0 } }),
    );
    const error = await resume(out).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as Error).message).toBe(
      `checkpoint '${checkpoint}': run.json: accumulate: expected a positive integer, got 0`,
    );
  });

  it('takes a model size given again with the run’s own value, and names one that differs', async () => {
    const { out } = await run();
    const hidden = TINY.config.hidden;
    const same = await pretrain({ data, steps: 3, ...TINY, config: { hidden }, out, resume: out });
    expect(same.summary.lastStep).toBe(3);
    await expect(pretrain({ data, steps: 4, ...TINY, config: { hidden: 16 }, out, resume: out })).rejects.toThrow(
      `hidden: a resumed run keeps its model (it has ${hidden})`,
    );
  });
});

describe('a history cut short by a crash', () => {
  it('gets the line of its checkpoint’s step back when the run resumes', async () => {
    const { out } = await run();
    const path = join(out, 'history.jsonl');
    const lines = (await readFile(path, 'utf8')).trim().split('\n');
    // killed after the checkpoint of step 2 was renamed into place, before its line was appended
    await writeFile(path, `${lines.filter((l) => !/"kind":"step","step":2/.test(l)).join('\n')}\n`);
    await resume(out);
    const steps = (await readFile(path, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as HistoryLine)
      .filter((l) => l.kind === 'step')
      .map((l) => l.step);
    expect(steps).toEqual([1, 2, 3]);
  });
});
