/**
 * The platform packages: one folder under `npm/` for each target of `package.json`'s
 * `napi.targets`, named as the loader asks for it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { platformName, platformOfTarget } from '../src/native.js';

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

  it('maps target triples to napi-rs platform names', () => {
    expect(platformOfTarget('aarch64-unknown-linux-musl')).toBe('linux-arm64-musl');
    expect(platformOfTarget('aarch64-apple-darwin')).toBe('darwin-arm64');
    expect(platformOfTarget('x86_64-pc-windows-msvc')).toBe('win32-x64-msvc');
  });

  it.runIf(process.platform === 'linux' && process.arch === 'x64')('names this machine linux-x64-gnu', () => {
    expect(platformName()).toBe('linux-x64-gnu');
  });
});
