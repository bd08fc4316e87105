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
import { binding } from './native.js';

/** An immutable f32 CPU tensor; see the module documentation for its operations. */
export const Tensor = binding.Tensor;
/** An instance of {@link Tensor}. */
export type Tensor = InstanceType<typeof binding.Tensor>;
