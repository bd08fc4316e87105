/**
 * What the second hostile test found in the CLI and the API's edges (issue 22): each test failed
 * before its fix.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

import { pretrain } from '../../src/index.js';
import { SMALL, spawnTsbert, tsbert } from './cli-process.js';
import { corpusFolder, paragraphs, TINY } from './corpus.js';

const run = promisify(execFile);

/** Every file under `dir` with its bytes, sorted by path. */
async function snapshot(dir: string): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for (const name of (await readdir(dir, { recursive: true })).sort()) {
    const path = join(dir, name);
    if ((await stat(path)).isFile()) out.push([name, (await readFile(path)).toString('base64')]);
  }
  return out;
}

describe('tsbert pretrain', () => {
  it('stops on SIGTERM while the corpus is read, exits 143 at once, and leaves --out as it was', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'tsbert-hostile-')), 'model');
    const small = await corpusFolder(200);
    expect((await tsbert('pretrain', '--data', small, '--steps', '2', ...SMALL, '--out', out)).code).toBe(0);
    const before = await snapshot(out);
    const big = join(await mkdtemp(join(tmpdir(), 'tsbert-big-')), 'corpus.txt');
    await writeFile(big, paragraphs(150_000).join('\n')); // about 30 MB: seconds to read
    const { child, stderr: read } = spawnTsbert(
      'pretrain',
      '--data',
      big,
      '--steps',
      '5',
      ...SMALL,
      '--out',
      out,
      '--overwrite',
    );
    const closed = new Promise<number | null>((done) => child.on('close', done));
    // the run holds the folder (its lock) before it reads any data
    while (!(await stat(join(out, '.tsbert-run.lock')).catch(() => undefined))) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const killed = performance.now();
    child.kill('SIGTERM');
    expect(await closed, read()).toBe(143);
    expect(performance.now() - killed).toBeLessThan(1500);
    expect(read()).toMatch(
      /^tsbert: interrupted \(SIGTERM\) before the first step: nothing was written to '.*model'$/m,
    );
    expect(await snapshot(out)).toEqual(before);
  });

  it('refuses a flag given twice, and an accumulation whose batches cannot fit, before reading any data', async () => {
    const twice = await tsbert('pretrain', '--steps', '5', '--steps', '9', '--data', '/nonexistent');
    expect(twice.code).toBe(1);
    expect(twice.stderr).toBe('tsbert: --steps is given twice; give each flag once\n');
    const out = join(await mkdtemp(join(tmpdir(), 'tsbert-hostile-')), 'model');
    const huge = await tsbert('pretrain', '--data', '/nonexistent', '--accumulate', '1000000', '--out', out);
    expect(huge.code).toBe(1);
    expect(huge.stderr).toMatch(
      /^tsbert: accumulate: 1000000 batches a step hold [\d.]+ GB \(the step's and the next step's, 2000000 batches of 512 pairs\), more than the [\d.]+ MB the data may take \(dataMemory\)/,
    );
  });
});

describe('a corpus folder', () => {
  it('refuses a link to a FIFO in it at once (opening it would block forever)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-fifo-'));
    await mkdir(join(dir, 'data'));
    await writeFile(join(dir, 'data', 'a.txt'), paragraphs(50).join('\n'));
    execFileSync('mkfifo', [join(dir, 'pipe')]);
    await symlink(join(dir, 'pipe'), join(dir, 'data', 'b.txt'));
    for (const option of ['data', 'valid'] as const) {
      const options =
        option === 'data' ? { data: join(dir, 'data') } : { data: paragraphs(100), valid: join(dir, 'data') };
      await expect(pretrain({ ...options, steps: 1, ...TINY })).rejects.toThrow(
        /^data: '.*b\.txt' is not a regular file \(a FIFO, socket or device\)$/,
      );
    }
  });
});

describe('long and many texts', () => {
  const child = async (kind: 'long' | 'many' | 'task') => {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'long-inputs.ts'), kind],
      {
        timeout: 100_000,
      },
    );
    return JSON.parse(stdout) as { shape: number[]; growthMiB: number };
  };

  it('encodes, fills masks in and embeds a 20 MB text within a bounded memory (it took +3.5 GB)', async () => {
    const { shape, growthMiB } = await child('long');
    expect(shape).toEqual([2, 32]);
    expect(growthMiB).toBeLessThan(600);
  });

  it('embeds 300,000 short texts within a bounded memory (it took +2.6 GB)', async () => {
    const { shape, growthMiB } = await child('many');
    expect(shape).toEqual([300_000, 32]);
    expect(growthMiB).toBeLessThan(800);
  });

  it('classifies, tags and reranks a 20 MB text (alone and in pairs) and 50,000 short ones within a bounded memory (a pair of long texts took 10 GB)', async () => {
    const { shape, growthMiB } = await child('task');
    expect(shape).toEqual([50_002, 10_001, 3]);
    expect(growthMiB).toBeLessThan(800);
  });

  it('tsbert embed names a folder or an endless line given as --input, in one line', async () => {
    const model = join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures/hf/model');
    const zero = await tsbert('embed', '--model', model, '--input', '/dev/zero');
    expect(zero.code).toBe(1);
    expect(zero.stderr).toBe("tsbert: --input: '/dev/zero': line 1 is over 16777216 characters long\n");
    const folder = await tsbert('embed', '--model', model, '--input', tmpdir());
    expect(folder.stderr).toBe(`tsbert: --input: '${tmpdir()}' is a folder, not a file\n`);
  });

  it('embed names a wrong kind of texts or option with a TypeError', async () => {
    const { BertModel, embed } = await import('../../src/index.js');
    const model = await BertModel.load(join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures/hf/model'));
    const cases: [unknown, Record<string, unknown>, RegExp][] = [
      [null, {}, /^texts: expected an array of strings, got null$/],
      [['a'], { batchSize: '3' }, /^batchSize: expected a positive integer, got '3'$/],
      [['a'], { normalize: 'yes' }, /^normalize: expected true or false, got 'yes'$/],
    ];
    for (const [texts, options, message] of cases) {
      const error = await embed(model, texts as string[], options).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(message);
    }
  });
});

describe('a divergence caused by the weight decay', () => {
  it('names the weight decay first in its advice', async () => {
    const error = await pretrain({
      data: paragraphs(200),
      steps: 20,
      ...TINY,
      optimizer: 'adamw',
      weightDecay: 1e30,
    }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(
      /; lower the weight decay \(it is 1e\+30\) or the learning rate \(it is 0\.01\)$/,
    );
  });
});

describe('pretrain options', () => {
  it('refuses an unknown option, a callback or signal of the wrong kind, and an empty out, before any work', async () => {
    const data = paragraphs(50);
    const cases: [Record<string, unknown>, ErrorConstructor, RegExp][] = [
      [{ stepz: 5 }, TypeError, /^stepz: not an option of pretrain/],
      [{ signal: 'yes' }, TypeError, /^signal: expected an AbortSignal$/],
      [{ onStep: 5 }, TypeError, /^onStep: expected a function, got number$/],
      [{ out: '' }, RangeError, /^out: expected a non-empty string, got ''$/],
      [{ overwrite: 'yes' }, TypeError, /^overwrite: expected true or false, got 'yes'$/],
      [{ steps: '3' }, TypeError, /^steps: expected a positive integer, got '3'$/],
      [{ config: 'big' }, TypeError, /^config: expected an object of model sizes$/],
    ];
    for (const [options, kind, message] of cases) {
      const error = await pretrain({ data, ...TINY, ...options }).catch((e: unknown) => e);
      expect(error, JSON.stringify(options)).toBeInstanceOf(kind);
      expect((error as Error).message).toMatch(message);
    }
  });
});
