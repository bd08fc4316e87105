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
  const binding = load('../binding/index.cjs') as typeof Binding;
  return { binding, variant: { variant: 'cpu', cudaUnavailable: reason } };
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
