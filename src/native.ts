/**
 * The native addon, loaded on first use (importing the data pipeline or this module loads
 * nothing). The CUDA build (`binding/tsbert-cuda.<platform>.node`, made by
 * `npm run build:cuda`) is tried first; it links the NVIDIA driver, so on a machine without
 * one it does not load, and the CPU build (through the loader that `napi build` generates in
 * `binding/`) is used instead. Internal: the public API wraps it.
 *
 * @internal
 * @module
 */
import { createRequire } from 'node:module';

import type * as Binding from '../binding/index.cjs';

export type {
  AdamConfigJs,
  BertConfigJs,
  EvaluationJs,
  NativeBert,
  NativeTokenizer,
  StepLossesJs,
  TensorJs,
} from '../binding/index.cjs';

const load = createRequire(import.meta.url);

/** Which addon build is in use, and why the CUDA one is not (if it is not). */
export interface NativeVariant {
  /** `'cuda'` when the CUDA build loaded, else `'cpu'`. */
  variant: 'cuda' | 'cpu';
  /** Why the CUDA build did not load (absent, no driver, `TSBERT_DEVICE=cpu`). */
  cudaUnavailable?: string;
}

let loaded: { binding: typeof Binding; variant: NativeVariant } | undefined;

function loadBinding(): { binding: typeof Binding; variant: NativeVariant } {
  let reason = 'this platform has no CUDA build';
  if (process.env.TSBERT_DEVICE === 'cpu') {
    reason = 'TSBERT_DEVICE=cpu';
  } else if (process.platform === 'linux' && process.arch === 'x64') {
    try {
      const binding = load('../binding/tsbert-cuda.linux-x64-gnu.node') as typeof Binding;
      return { binding, variant: { variant: 'cuda' } };
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      reason =
        e.code === 'MODULE_NOT_FOUND'
          ? 'the CUDA build is not installed (npm run build:cuda)'
          : `the CUDA build did not load: ${e.message}`;
    }
  }
  try {
    const binding = load('../binding/index.cjs') as typeof Binding;
    return { binding, variant: { variant: 'cpu', cudaUnavailable: reason } };
  } catch (error) {
    throw new Error(missingAddon(), { cause: error });
  }
}

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

/** What to do when no addon loads: the package this platform needs, or that it has none. */
function missingAddon(): string {
  const { napi } = load('../package.json') as { napi: { targets: string[] } };
  const prebuilt = napi.targets.map(platformOfTarget);
  const here = platformName();
  const fromSource =
    'or build it from source with a Rust toolchain (in a clone of the repository: npm ci, which runs npm run build)';
  return prebuilt.includes(here)
    ? `tsbert: the native addon for ${here} did not load: install the package tsbert-${here} (npm installs it with tsbert unless optional dependencies are left out: --omit=optional, --no-optional), ${fromSource}`
    : `tsbert: no prebuilt native addon for ${here} (prebuilt: ${prebuilt.join(', ')}); ${fromSource}`;
}

/** The addon: `NativeBert`, the tensor ops, the device queries and the core's defaults. */
export function native(): typeof Binding {
  loaded ??= loadBinding();
  return loaded.binding;
}

/** Which addon build is in use (loads it if needed). */
export function nativeVariant(): Readonly<NativeVariant> {
  native();
  return (loaded as { variant: NativeVariant }).variant;
}
