/**
 * What `npm install tsbert` does after unpacking (run by `scripts/install.mjs`): nothing when
 * this platform's addon package is installed; else, with a Rust toolchain on PATH, builds the
 * addon from the Rust sources the package ships into `binding/`; else one line saying what is
 * missing (an error, failing the install, when the platform has no prebuilt addon at all).
 *
 * @internal
 * @module
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { addonFile, FROM_SOURCE, platformName, prebuiltPlatforms } from './platform.js';

/** What the install does on this machine. */
export type InstallPlan =
  | { action: 'none' }
  | { action: 'build'; message: string }
  | { action: 'warn' | 'fail'; message: string };

/**
 * The plan for `platform`: whether its addon (`tsbert-<platform>` or a file in `binding/`) is
 * there, whether cargo is (asked only when the addon is not), and whether the platform has a
 * prebuilt package.
 */
export function installPlan(platform: string, addonPresent: boolean, hasCargo: () => boolean): InstallPlan {
  if (addonPresent) return { action: 'none' };
  const prebuilt = prebuiltPlatforms();
  if (hasCargo()) {
    return {
      action: 'build',
      message: `tsbert: no prebuilt native addon for ${platform} is installed; building it from source with cargo (several minutes)`,
    };
  }
  return prebuilt.includes(platform)
    ? {
        action: 'warn',
        message: `tsbert: the package tsbert-${platform} (its native addon) is not installed (optional dependencies left out?): reinstall without --omit=optional, ${FROM_SOURCE}`,
      }
    : {
        action: 'fail',
        message: `tsbert: no prebuilt native addon for ${platform} (prebuilt: ${prebuilt.join(', ')}) and no Rust toolchain (cargo) on PATH to build one: install Rust from https://rustup.rs, then npm rebuild tsbert`,
      };
}

/** The file cargo makes for the addon crate on this OS. */
function cargoOutput(): string {
  if (process.platform === 'win32') return 'tsbert_node.dll';
  return process.platform === 'darwin' ? 'libtsbert_node.dylib' : 'libtsbert_node.so';
}

/** Builds the addon with cargo into `binding/`; the build folder is removed afterwards. */
function buildFromSource(root: string, platform: string): boolean {
  const ownTarget = process.env.CARGO_TARGET_DIR === undefined;
  const target = process.env.CARGO_TARGET_DIR ?? join(root, 'target');
  const args = ['build', '--release', '--locked', '-p', 'tsbert-node', '--manifest-path', join(root, 'Cargo.toml')];
  const built = spawnSync('cargo', [...args, '--target-dir', target], { stdio: 'inherit' });
  if (built.status !== 0) return false;
  copyFileSync(join(target, 'release', cargoOutput()), join(root, 'binding', addonFile(platform)));
  if (ownTarget) rmSync(target, { recursive: true, force: true });
  return true;
}

/** Runs the install step for the package at `root`; returns the process exit code. */
export function install(root = fileURLToPath(new URL('..', import.meta.url))): number {
  const platform = platformName();
  const load = createRequire(join(root, 'package.json'));
  const installed = (name: string) => {
    try {
      return load.resolve(name) !== '';
    } catch {
      return false;
    }
  };
  const present = existsSync(join(root, 'binding', addonFile(platform))) || installed(`tsbert-${platform}`);
  const hasCargo = () => spawnSync('cargo', ['--version'], { stdio: 'ignore' }).status === 0;
  const plan = installPlan(platform, present, hasCargo);
  if (plan.action === 'none') return 0;
  if (plan.action === 'build') {
    console.log(plan.message);
    if (buildFromSource(root, platform)) return 0;
    console.error(`tsbert: building the native addon for ${platform} from source failed (cargo's output above)`);
    return 1;
  }
  console.error(plan.message);
  return plan.action === 'fail' ? 1 : 0;
}
