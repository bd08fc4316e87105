/**
 * The native addon. The CUDA build (`binding/tsbert-cuda.<platform>.node`, made by
 * `npm run build:cuda`) is tried first; it links the NVIDIA driver, so on a machine without
 * one it does not load, and the CPU build (through the loader that `napi build` generates in
 * `binding/`) is used instead. {@link nativeVariant} says which one loaded and why.
 *
 * @module
 */
import { createRequire } from 'node:module';

import type * as Binding from '../binding/index.cjs';

const load = createRequire(import.meta.url);

/** Which addon build is in use, and why the CUDA one is not (if it is not). */
export interface NativeVariant {
  /** `'cuda'` when the CUDA build loaded, else `'cpu'`. */
  variant: 'cuda' | 'cpu';
  /** Why the CUDA build did not load (absent, no driver, `TSBERT_DEVICE=cpu`). */
  cudaUnavailable?: string;
}

function loadBinding(): { binding: typeof Binding; info: NativeVariant } {
  let reason = 'this platform has no CUDA build';
  if (process.env.TSBERT_DEVICE === 'cpu') {
    reason = 'TSBERT_DEVICE=cpu';
  } else if (process.platform === 'linux' && process.arch === 'x64') {
    try {
      const binding = load('../binding/tsbert-cuda.linux-x64-gnu.node') as typeof Binding;
      return { binding, info: { variant: 'cuda' } };
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      reason =
        e.code === 'MODULE_NOT_FOUND'
          ? 'the CUDA build is not installed (npm run build:cuda)'
          : `the CUDA build did not load: ${e.message}`;
    }
  }
  return { binding: load('../binding/index.cjs') as typeof Binding, info: { variant: 'cpu', cudaUnavailable: reason } };
}

const loaded = loadBinding();

/** The addon: the `NativeBert` and `Tensor` classes and the device queries. */
export const binding: typeof Binding = loaded.binding;

/** Which addon build is in use. */
export const nativeVariant: Readonly<NativeVariant> = Object.freeze(loaded.info);

export type {
  BatchInput,
  BertConfigInput,
  BertConfigOutput,
  EvaluationOutput,
  NativeBert,
  StepLossesOutput,
  TrainerOptionsInput,
} from '../binding/index.cjs';
