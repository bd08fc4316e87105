import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { BertModel, CheckpointError, encode, pretrain } from '../../src/index.js';
import { paragraphs, TINY } from './corpus.js';

const words = ['a', 'crane', 'is', 'flying'];

describe('save and load', async () => {
  const { model } = await pretrain({ data: paragraphs(200), steps: 2, seed: 4, ...TINY });

  it('loads a saved model that encodes bit-identically', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-model-'));
    await model.save(dir);
    const files = (await readdir(dir)).sort();
    expect(files).toHaveLength(3);
    expect(files[0]).toBe('config.json');
    const loaded = await BertModel.load(dir);
    expect(loaded.config).toEqual(model.config);
    expect(loaded.vocab?.toJSON()).toEqual(model.vocab?.toJSON());
    const [a, b] = [await encode(model, words), await encode(loaded, words)];
    expect(Buffer.from(b.data.buffer).equals(Buffer.from(a.data.buffer))).toBe(true);
  });

  it('refuses a truncated weights file, a missing folder and a corrupt config with a CheckpointError', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-model-'));
    await model.save(dir);
    const weights = (await readdir(dir)).find((f) => f.endsWith('.safetensors'))!;
    await truncate(join(dir, weights), 1000);
    const error = await BertModel.load(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as Error).message).toMatch(/weights file '.*\.safetensors' is corrupt or incomplete/);
    await expect(BertModel.load(join(dir, 'absent'))).rejects.toThrow(
      /no model in '.*absent': cannot read config.json/,
    );
    await writeFile(join(dir, 'config.json'), '{"format": "tsbert", ');
    await expect(BertModel.load(dir)).rejects.toThrow(CheckpointError);
  });

  it('keeps the previous model loadable when a save is interrupted before config.json', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-model-'));
    await model.save(dir);
    const before = await readFile(join(dir, 'config.json'), 'utf8');
    // an interrupted save leaves temporary files and, at worst, new content-named files
    await writeFile(join(dir, '.weights.0123456789ab.tmp'), 'partial');
    await writeFile(join(dir, 'weights-ffffffffffffffff.safetensors'), 'partial');
    const loaded = await BertModel.load(dir);
    expect(await readFile(join(dir, 'config.json'), 'utf8')).toBe(before);
    expect(Array.from((await encode(loaded, words)).data)).toEqual(Array.from((await encode(model, words)).data));
    // the next complete save cleans the stale content-named file
    await model.save(dir);
    expect(await readdir(dir)).not.toContain('weights-ffffffffffffffff.safetensors');
    await rm(dir, { recursive: true });
  });
});
