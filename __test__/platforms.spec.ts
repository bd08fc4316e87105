/**
 * The platform packages: one folder under `npm/` for each target of `package.json`'s
 * `napi.targets`, named as the loader asks for it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { installPlan } from '../src/install.js';
import { CUDA_PACKAGE, cudaLoadFailure } from '../src/native.js';
import { platformName, platformOfTarget } from '../src/platform.js';

const root = join(import.meta.dirname, '..');
const json = (path: string) => JSON.parse(readFileSync(join(root, path), 'utf8'));

describe('platform packages', () => {
  it('exist for every napi target, named and constrained as the loader expects', () => {
    const { napi, version } = json('package.json');
    expect(napi.targets).toHaveLength(7);
    for (const target of napi.targets as string[]) {
      const platform = platformOfTarget(target);
      const pkg = json(`npm/${platform}/package.json`);
      expect(pkg.name, target).toBe(`tsbert-${platform}`);
      expect(pkg.version, target).toBe(version);
      expect(pkg.main, target).toBe(`tsbert.${platform}.node`);
      expect(pkg.os, target).toEqual([platform.split('-')[0]]);
      expect(pkg.cpu, target).toEqual([platform.split('-')[1]]);
    }
  });

  it('include the opt-in CUDA package for linux-x64-gnu, as the loader asks for it', () => {
    const pkg = json('npm/linux-x64-gnu-cuda/package.json');
    expect(pkg.name).toBe(CUDA_PACKAGE);
    expect(pkg.version).toBe(json('package.json').version);
    expect(pkg.main).toBe('tsbert-cuda.linux-x64-gnu.node');
    expect([pkg.os, pkg.cpu, pkg.libc]).toEqual([['linux'], ['x64'], ['glibc']]);
    // opt-in: never installed with tsbert itself
    expect(JSON.stringify(json('package.json'))).not.toContain(CUDA_PACKAGE);
  });

  it("names the library a CUDA addon lacks, and where to get it, from the loader's error", () => {
    const lacks = (lib: string) => cudaLoadFailure(`${lib}: cannot open shared object file: No such file or directory`);
    expect(lacks('libcuda.so.1')).toMatch(/^the CUDA build needs the NVIDIA driver \(libcuda\.so\.1 is missing\)/);
    expect(lacks('libcublasLt.so.13')).toMatch(
      /^the CUDA build needs libcublasLt\.so\.13, which is not on the library path: .*pip install nvidia-cublas/,
    );
    expect(cudaLoadFailure('/x/tsbert-cuda.linux-x64-gnu.node: undefined symbol: cuMemAllocAsync')).toBe(
      'the NVIDIA driver is too old for the CUDA build (it lacks cuMemAllocAsync): install driver 580 or newer (CUDA 13)',
    );
    expect(cudaLoadFailure('/x/a.node: invalid ELF header')).toBe(
      'the CUDA build did not load: /x/a.node: invalid ELF header',
    );
  });

  it('installs: nothing over an addon, a build with cargo, else one line (failing where nothing is prebuilt)', () => {
    expect(installPlan('linux-x64-gnu', true, () => expect.unreachable('cargo asked for'))).toEqual({ action: 'none' });
    expect(installPlan('linux-riscv64-gnu', false, () => true)).toMatchObject({
      action: 'build',
      message: expect.stringMatching(/^tsbert: no prebuilt native addon for linux-riscv64-gnu is installed; building/),
    });
    const omitted = installPlan('darwin-arm64', false, () => false);
    expect(omitted.action).toBe('warn');
    expect('message' in omitted && omitted.message).toMatch(
      /^tsbert: the package tsbert-darwin-arm64 .* not installed/,
    );
    const unsupported = installPlan('freebsd-x64', false, () => false);
    expect(unsupported.action).toBe('fail');
    expect('message' in unsupported && unsupported.message).toBe(
      'tsbert: no prebuilt native addon for freebsd-x64 (prebuilt: linux-x64-gnu, linux-arm64-gnu, linux-x64-musl, linux-arm64-musl, darwin-x64, darwin-arm64, win32-x64-msvc) and no Rust toolchain (cargo) on PATH to build one: install Rust from https://rustup.rs, then npm rebuild tsbert',
    );
    expect(unsupported.action === 'fail' && unsupported.message.includes('\n')).toBe(false);
  });

  it('maps target triples to napi-rs platform names', () => {
    expect(platformOfTarget('aarch64-unknown-linux-musl')).toBe('linux-arm64-musl');
    expect(platformOfTarget('aarch64-apple-darwin')).toBe('darwin-arm64');
    expect(platformOfTarget('x86_64-pc-windows-msvc')).toBe('win32-x64-msvc');
  });

  it.runIf(process.platform === 'linux' && process.arch === 'x64')('names this machine linux-x64-gnu', () => {
    expect(platformName()).toBe('linux-x64-gnu');
  });
});
