/**
 * Installed as a user would (after checking that the typings expose no generated binding type):
 * `npm pack` of the main package and of the linux-x64-gnu platform package (holding the
 * prebuilt `.node`), both installed into an empty folder with no Rust toolchain on PATH, then
 * the crane example through `import` and through `require`; the main package alone, whose
 * loader names the platform package it lacks; and the opt-in CUDA package added, which the
 * loader prefers when its addon loads and otherwise skips with the reason in `devices()`.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const root = join(import.meta.dirname, '../..');
const platform = join(root, 'npm/linux-x64-gnu');
const cudaPackage = join(root, 'npm/linux-x64-gnu-cuda');
const cudaAddon = 'tsbert-cuda.linux-x64-gnu.node';
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

/** Whether this machine has an NVIDIA driver (`libcuda.so.1` known to the dynamic loader). */
const hasDriver =
  supported &&
  /libcuda\.so\.1\b/.test(
    await exec('ldconfig', ['-p']).then(
      (r) => r.stdout,
      () => '',
    ),
  );

/** A shared library that, like the CUDA addon, cannot load without the driver's libcuda.so.1. */
async function needsDriver(work: string): Promise<string> {
  const dir = join(work, 'needs-driver');
  await exec('mkdir', ['-p', dir]);
  await writeFile(join(dir, 'stub.c'), 'void tsbert_stub(void) {}\n');
  // a libcuda.so with the driver's soname, to link against; it is not on the loader's path
  await exec('cc', [
    '-shared',
    '-fPIC',
    '-Wl,-soname,libcuda.so.1',
    '-o',
    join(dir, 'libcuda.so'),
    join(dir, 'stub.c'),
  ]);
  const addon = join(dir, 'addon.node');
  await exec('cc', ['-shared', '-fPIC', '-o', addon, join(dir, 'stub.c'), '-Wl,--no-as-needed', `-L${dir}`, '-lcuda']);
  return addon;
}

describe.skipIf(!supported)('the packed packages', () => {
  it('install without Rust and run the crane example (import, require); add CUDA; build from source with Rust', async () => {
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
      join(app, 'devices.mjs'),
      "import { devices } from 'tsbert'; console.log(JSON.stringify(devices()));",
    );
    await writeFile(
      join(app, 'crane.cjs'),
      `(async () => {${example("const { pretrain, encode } = require('tsbert');")}})();`,
    );
    const expected = { single: [1, 6, 16], pair: [1, 10, 16], cls: [1, 16], device: 'cpu' };
    for (const script of ['crane.mjs', 'crane.cjs']) {
      const { stdout } = await exec(process.execPath, [script], { cwd: app, env });
      expect(JSON.parse(stdout), script).toEqual(expected);
    }
    const devices = async () => JSON.parse((await exec(process.execPath, ['devices.mjs'], { cwd: app, env })).stdout);
    expect(await devices()).toEqual({
      build: 'cpu',
      addon: 'tsbert-linux-x64-gnu',
      cudaDevices: 0,
      reason:
        'no CUDA build is installed (npm install tsbert-linux-x64-gnu-cuda adds it; in a clone, npm run build:cuda)',
    });

    // the CUDA package, with a stand-in addon that loads (the CPU one): preferred
    await copyFile(join(root, 'binding/tsbert.linux-x64-gnu.node'), join(cudaPackage, cudaAddon));
    await exec('npm', ['pack', '--pack-destination', work], { cwd: cudaPackage });
    await exec('npm', ['install', '--no-audit', '--no-fund', join(work, 'tsbert-linux-x64-gnu-cuda-0.1.0.tgz')], {
      cwd: app,
      env,
    });
    expect(await devices()).toMatchObject({ build: 'cuda', addon: 'tsbert-linux-x64-gnu-cuda', cudaDevices: 0 });
    const { stdout } = await exec(process.execPath, ['crane.mjs'], { cwd: app, env });
    expect(JSON.parse(stdout)).toEqual(expected);
    // ... of another version: skipped, saying which version to install
    const installedCuda = join(app, 'node_modules/tsbert-linux-x64-gnu-cuda');
    const manifest = await readFile(join(installedCuda, 'package.json'), 'utf8');
    await writeFile(join(installedCuda, 'package.json'), manifest.replace('"version": "0.1.0"', '"version": "0.0.9"'));
    expect((await devices()).reason).toBe(
      'tsbert-linux-x64-gnu-cuda 0.0.9 does not match tsbert 0.1.0: npm install tsbert-linux-x64-gnu-cuda@0.1.0',
    );
    await writeFile(join(installedCuda, 'package.json'), manifest);
    // ... whose addon needs a driver this machine lacks (the real CUDA build when one was made
    // here, else a stand-in library needing libcuda.so.1): the CPU addon, and the reason
    if (!hasDriver) {
      const real = join(root, 'binding', cudaAddon);
      await copyFile(existsSync(real) ? real : await needsDriver(work), join(installedCuda, cudaAddon));
      expect(await devices()).toEqual({
        build: 'cpu',
        addon: 'tsbert-linux-x64-gnu',
        cudaDevices: 0,
        reason:
          'the CUDA build needs the NVIDIA driver (libcuda.so.1 is missing): install driver 580 or newer (CUDA 13)',
      });
    }

    // without the platform package (optional dependencies left out), the error names it
    const bare = join(work, 'bare');
    await exec('mkdir', ['-p', bare]);
    await writeFile(join(bare, 'package.json'), '{ "name": "bare", "private": true }\n');
    const bareInstall = await exec(
      'npm',
      ['install', '--no-audit', '--no-fund', '--foreground-scripts', join(work, 'tsbert-0.1.0.tgz')],
      { cwd: bare, env },
    );
    // the install step says so in one line, and leaves the error to the first use
    expect(bareInstall.stderr).toMatch(
      /^tsbert: the package tsbert-linux-x64-gnu \(its native addon\) is not installed/m,
    );
    await writeFile(join(bare, 'crane.mjs'), example("import { pretrain, encode } from 'tsbert';"));
    const failed = await exec(process.execPath, ['crane.mjs'], { cwd: bare, env }).catch((e) => e);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      /the native addon for linux-x64-gnu did not load: install the package tsbert-linux-x64-gnu/,
    );

    // with Rust on PATH, the install step builds the addon from the sources the package ships
    // (cargo reuses this checkout's compiled dependencies)
    const withRust = { ...process.env, CARGO_TARGET_DIR: join(root, 'target') };
    const rebuilt = await exec('npm', ['rebuild', '--foreground-scripts', 'tsbert'], { cwd: bare, env: withRust });
    expect(rebuilt.stdout).toMatch(/^tsbert: no prebuilt native addon for linux-x64-gnu is installed; building it/m);
    expect(await readdir(join(bare, 'node_modules/tsbert/binding'))).toContain('tsbert.linux-x64-gnu.node');
    const { stdout: fromSource } = await exec(process.execPath, ['crane.mjs'], { cwd: bare, env });
    expect(JSON.parse(fromSource)).toEqual(expected);
  }, 900_000);
});
