/**
 * The native addon, loaded on first use (importing the data pipeline or this module loads
 * nothing). On linux-x64-gnu a CUDA build is tried first: the one `npm run build:cuda` makes in
 * a clone (`binding/tsbert-cuda.linux-x64-gnu.node`), else the opt-in package
 * {@link CUDA_PACKAGE}. It links the NVIDIA driver and CUDA's libraries, so where they are
 * missing it does not load, and the CPU build (through the loader that `napi build` generates
 * in `binding/`, which finds the platform package) is used instead, with the reason kept for
 * `devices()`. Internal: the public API wraps it.
 *
 * @internal
 * @module
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

import type * as Binding from '../binding/index.cjs';
import { addonFile, FROM_SOURCE, platformName, prebuiltPlatforms } from './platform.js';

export type {
  AdamConfigJs,
  EvaluationJs,
  NativeBert,
  NativeTokenizer,
  StepLossesJs,
  TensorJs,
  TrainerOptionsJs,
} from '../binding/index.cjs';

const load = createRequire(import.meta.url);

/** The npm package a user adds for the CUDA addon (linux-x64-gnu only). */
export const CUDA_PACKAGE = 'tsbert-linux-x64-gnu-cuda';

/** Which addon build is in use, where it came from, and why the CUDA one is not in use. */
export interface NativeVariant {
  /** `'cuda'` when a CUDA build loaded, else `'cpu'`. */
  variant: 'cuda' | 'cpu';
  /** The addon in use: a package name, or a file of this clone. */
  addon: string;
  /** Why no CUDA build loaded (none installed, a missing library, `TSBERT_DEVICE=cpu`). */
  cudaUnavailable?: string;
}

let loaded: { binding: typeof Binding; variant: NativeVariant } | undefined;

/**
 * Why a CUDA addon did not load, from the loader's error: the missing library named, with
 * where to get it.
 */
export function cudaLoadFailure(message: string): string {
  const unbound = /undefined symbol: (cu\w+)/.exec(message)?.[1];
  if (unbound !== undefined) {
    return `the NVIDIA driver is too old for the CUDA build (it lacks ${unbound}): install driver 580 or newer (CUDA 13)`;
  }
  const missing = /(lib[\w.+-]+\.so(?:\.\d+)*): cannot open shared object file/.exec(message)?.[1];
  if (missing === undefined) return `the CUDA build did not load: ${message}`;
  if (missing.startsWith('libcuda.so')) {
    return `the CUDA build needs the NVIDIA driver (${missing} is missing): install driver 580 or newer (CUDA 13)`;
  }
  return (
    `the CUDA build needs ${missing}, which is not on the library path: install CUDA 13's libraries ` +
    '(pip install nvidia-cublas nvidia-curand, or the CUDA 13 toolkit) and add their lib folders to LD_LIBRARY_PATH'
  );
}

/** The CUDA addon from this clone's build or from {@link CUDA_PACKAGE}, or why neither loaded. */
function loadCuda(): { binding: typeof Binding; addon: string } | { reason: string } {
  const candidates: [addon: string, file: string][] = [
    ['binding/tsbert-cuda.linux-x64-gnu.node', '../binding/tsbert-cuda.linux-x64-gnu.node'],
    [CUDA_PACKAGE, CUDA_PACKAGE],
  ];
  for (const [addon, file] of candidates) {
    if (addon === CUDA_PACKAGE) {
      const mismatch = versionMismatch();
      if (mismatch) return { reason: mismatch };
    }
    try {
      return { binding: load(file) as typeof Binding, addon };
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      if (e.code !== 'MODULE_NOT_FOUND') return { reason: cudaLoadFailure(e.message) };
    }
  }
  return {
    reason: `no CUDA build is installed (npm install ${CUDA_PACKAGE} adds it; in a clone, npm run build:cuda)`,
  };
}

/** Why {@link CUDA_PACKAGE}, when installed, cannot be used with this tsbert's version. */
function versionMismatch(): string | undefined {
  let theirs: string;
  try {
    theirs = (load(`${CUDA_PACKAGE}/package.json`) as { version: string }).version;
  } catch {
    return undefined;
  }
  const ours = (load('../package.json') as { version: string }).version;
  return theirs === ours
    ? undefined
    : `${CUDA_PACKAGE} ${theirs} does not match tsbert ${ours}: npm install ${CUDA_PACKAGE}@${ours}`;
}

function loadBinding(): { binding: typeof Binding; variant: NativeVariant } {
  const here = platformName(); // once: it reads Node's diagnostic report
  let reason = `${here} has no CUDA build (linux-x64-gnu has)`;
  if (process.env.TSBERT_DEVICE === 'cpu') {
    reason = 'TSBERT_DEVICE=cpu';
  } else if (here === 'linux-x64-gnu') {
    const cuda = loadCuda();
    if ('binding' in cuda) return { binding: cuda.binding, variant: { variant: 'cuda', addon: cuda.addon } };
    reason = cuda.reason;
  }
  const local = `binding/${addonFile(here)}`;
  const cpu = (binding: typeof Binding, addon: string) => ({
    binding,
    variant: { variant: 'cpu' as const, addon, cudaUnavailable: reason },
  });
  try {
    const binding = load('../binding/index.cjs') as typeof Binding;
    return cpu(binding, existsSync(new URL(`../${local}`, import.meta.url)) ? local : `tsbert-${here}`);
  } catch (error) {
    // built from source for a platform the generated loader does not list
    try {
      return cpu(load(`../${local}`) as typeof Binding, local);
    } catch {
      throw new Error(missingAddon(here), { cause: error });
    }
  }
}

/** What to do when no addon loads on `here`: the package it needs, or that it has none. */
function missingAddon(here: string): string {
  const prebuilt = prebuiltPlatforms();
  return prebuilt.includes(here)
    ? `tsbert: the native addon for ${here} did not load: install the package tsbert-${here} (npm installs it with tsbert unless optional dependencies are left out: --omit=optional, --no-optional), ${FROM_SOURCE}`
    : `tsbert: no prebuilt native addon for ${here} (prebuilt: ${prebuilt.join(', ')}); ${FROM_SOURCE}`;
}

/** The addon: `NativeBert`, the tensor ops, the device queries and the core's defaults. */
export function native(): typeof Binding {
  loaded ??= loadBinding();
  return loaded.binding;
}

/**
 * A frozen record whose values come from the addon, read from it on first use (so that a
 * module exporting one can be imported without loading the addon): `make` runs once, when a
 * value, a key or the record's shape is first asked for.
 */
export function fromNative<T extends object>(make: () => T): Readonly<T> {
  let made: Readonly<T> | undefined;
  const record = () => {
    made ??= Object.freeze(make());
    return made;
  };
  return new Proxy({} as Readonly<T>, {
    get: (_, key) => Reflect.get(record(), key),
    has: (_, key) => Reflect.has(record(), key),
    ownKeys: () => Reflect.ownKeys(record()),
    getOwnPropertyDescriptor: (_, key) => {
      const found = Reflect.getOwnPropertyDescriptor(record(), key);
      return found && { ...found, configurable: true };
    },
    set: () => false,
    defineProperty: () => false,
    deleteProperty: () => false,
  });
}

/** Which addon build is in use (loads it if needed). */
export function nativeVariant(): Readonly<NativeVariant> {
  native();
  return (loaded as { variant: NativeVariant }).variant;
}
