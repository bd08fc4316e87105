/**
 * Platforms as napi-rs names them, and which of them have a prebuilt addon package. Shared by
 * the addon's loader and the install script. Internal.
 *
 * @internal
 * @module
 */
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

/** This machine as napi-rs names platforms (`linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`). */
export function platformName(): string {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
    return `linux-${arch}-${report?.header?.glibcVersionRuntime ? 'gnu' : 'musl'}`;
  }
  return platform === 'win32' ? `win32-${arch}-msvc` : `${platform}-${arch}`;
}

/** A Rust target triple of `package.json`'s `napi.targets` as napi-rs names its platform. */
export function platformOfTarget(triple: string): string {
  const [cpu, , os, abi] = triple.split('-');
  const arch = cpu === 'x86_64' ? 'x64' : cpu === 'aarch64' ? 'arm64' : cpu;
  if (os === 'linux') return `linux-${arch}-${abi}`;
  return os === 'darwin' ? `darwin-${arch}` : `win32-${arch}-${abi}`;
}

/** The platforms with a prebuilt addon package (`tsbert-<platform>`), from `napi.targets`. */
export function prebuiltPlatforms(): string[] {
  const { napi } = load('../package.json') as { napi: { targets: string[] } };
  return napi.targets.map(platformOfTarget);
}

/** The addon file `napi build` (or the install script) puts in `binding/` for `platform`. */
export function addonFile(platform: string): string {
  return `tsbert.${platform}.node`;
}

/** How to get an addon where no prebuilt one is installed: building it from source. */
export const FROM_SOURCE =
  'or build it from source: with a Rust toolchain (https://rustup.rs) on PATH, npm rebuild tsbert (in a clone of the repository: npm ci)';
