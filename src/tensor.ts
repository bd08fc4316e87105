/**
 * A small tensor surface from the native addon, for post-processing embeddings without
 * leaving native code: {@link Tensor.fromArray}, `toArray`, `shape`, `matmul`, `add`, `mul`,
 * `softmax`, `cosineSimilarity`. Shape problems throw a `RangeError` naming the operation.
 *
 * @example
 * ```ts
 * const a = Tensor.fromArray(encoding.data, encoding.shape.slice(1)); // [n, hidden]
 * const sims = a.cosineSimilarity(a).toArray();                     // [n, n]
 * ```
 * @module
 */
import type { Tensor as NativeTensor } from '../binding/index.cjs';
import { binding } from './native.js';

export type { NativeTensor };

/** The native tensor class (of the addon build in use); see {@link NativeTensor} for its methods. */
export const Tensor: typeof NativeTensor = binding.Tensor;
/** An instance of {@link Tensor}. */
export type Tensor = NativeTensor;
