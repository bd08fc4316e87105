/**
 * Installed as a user would (after checking that the typings expose no generated binding type): `npm pack` of the main package and of the linux-x64-gnu
 * platform package (holding the prebuilt `.node`), both installed into an empty folder with
 * no Rust toolchain on PATH, then the crane example through `import` and through `require`;
 * and the main package alone, whose loader names the platform package it lacks.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const root = join(import.meta.dirname, '../..');
const platform = join(root, 'npm/linux-x64-gnu');
const supported = process.platform === 'linux' && process.arch === 'x64';

/** PATH with node's folder and the system's, but no cargo or rustc. */
const PATH = [dirname(process.execPath), '/usr/local/sbin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':');

const example = (load: string) => `
${load}
const lines = Array.from({ length: 80 }, (_, i) => ' a crane is flying over the river . the crane driver came to work . he just left the house . ');
const { model, summary } = await pretrain({ data: lines, steps: 2, batchSize: 16, maxLen: 24, minFreq: 1, config: { hidden: 16, ffnHidden: 32 } });
const single = await encode(model, ['a', 'crane', 'is', 'flying']);
const pair = await encode(model, ['a', 'crane', 'driver', 'came'], ['he', 'just', 'left']);
console.log(JSON.stringify({ single: single.shape, pair: pair.shape, cls: single.token(0).shape, device: summary.device }));
`;

describe.skipIf(!supported)('the packed packages', () => {
  it('install without Rust and run the crane example through import and require', async () => {
    const work = await mkdtemp(join(tmpdir(), 'tsbert-pack-'));
    await exec('npm', ['run', 'build:ts'], { cwd: root });
    // the public typings are the hand-written API: no type that `napi build` generated
    const generated = (await readFile(join(root, 'binding/index.d.cts'), 'utf8')).matchAll(
      /^export (?:declare )?(?:class|interface|function|const|type) (\w+)/gm,
    );
    const names = [...generated].map((m) => m[1]);
    expect(names).toContain('NativeBert');
    for (const typings of ['dist/index.d.ts', 'dist/index.d.cts']) {
      const text = await readFile(join(root, typings), 'utf8');
      expect(text).not.toMatch(/binding\/index/);
      for (const name of names) expect(text, `${typings} names ${name}`).not.toMatch(new RegExp(`\\b${name}\\b`));
    }
    await exec('npm', ['pack', '--ignore-scripts', '--pack-destination', work], { cwd: root });
    await copyFile(join(root, 'binding/tsbert.linux-x64-gnu.node'), join(platform, 'tsbert.linux-x64-gnu.node'));
    await exec('npm', ['pack', '--pack-destination', work], { cwd: platform });
    const tarballs = (await readdir(work)).filter((f) => f.endsWith('.tgz')).sort();
    expect(tarballs).toEqual(['tsbert-0.1.0.tgz', 'tsbert-linux-x64-gnu-0.1.0.tgz']);

    const app = join(work, 'app');
    const env = { ...process.env, PATH, CARGO_HOME: '/nonexistent', RUSTUP_HOME: '/nonexistent' };
    await exec('mkdir', ['-p', app]);
    await writeFile(join(app, 'package.json'), '{ "name": "app", "private": true }\n');
    await expect(exec('sh', ['-c', 'command -v cargo || command -v rustc'], { env })).rejects.toBeTruthy();
    await exec('npm', ['install', '--no-audit', '--no-fund', ...tarballs.map((t) => join(work, t))], { cwd: app, env });
    const installed = await readdir(join(app, 'node_modules/tsbert/binding'));
    expect(installed.some((f) => f.endsWith('.node'))).toBe(false); // the .node comes from the platform package

    await writeFile(join(app, 'crane.mjs'), example("import { pretrain, encode } from 'tsbert';"));
    await writeFile(
      join(app, 'crane.cjs'),
      `(async () => {${example("const { pretrain, encode } = require('tsbert');")}})();`,
    );
    const expected = { single: [1, 6, 16], pair: [1, 10, 16], cls: [1, 16], device: 'cpu' };
    for (const script of ['crane.mjs', 'crane.cjs']) {
      const { stdout } = await exec(process.execPath, [script], { cwd: app, env });
      expect(JSON.parse(stdout), script).toEqual(expected);
    }

    // without the platform package (optional dependencies left out), the error names it
    const bare = join(work, 'bare');
    await exec('mkdir', ['-p', bare]);
    await writeFile(join(bare, 'package.json'), '{ "name": "bare", "private": true }\n');
    await exec('npm', ['install', '--no-audit', '--no-fund', join(work, 'tsbert-0.1.0.tgz')], { cwd: bare, env });
    await writeFile(join(bare, 'crane.mjs'), example("import { pretrain, encode } from 'tsbert';"));
    const failed = await exec(process.execPath, ['crane.mjs'], { cwd: bare, env }).catch((e) => e);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      /the native addon for linux-x64-gnu did not load: install the package tsbert-linux-x64-gnu/,
    );
  }, 300_000);
});
