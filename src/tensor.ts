/**
 * {@link Tensor}: the one tensor type of the public API (encodings, evaluation outputs), with
 * a small set of operations for post-processing embeddings, computed by the native core.
 *
 * @example
 * ```ts
 * const a = (await model.encode(['a', 'crane', 'is', 'flying'])).token(2); // [1, hidden]
 * const b = (await model.encode(['a', 'crane', 'driver', 'came'])).token(2);
 * a.cosineSimilarity(b).data[0];                                          // how alike
 * ```
 * @module
 */
import { native } from './native.js';

/** The largest dimension a tensor may have. */
const MAX_DIM = 0xffffffff;

/** `[2, 3]` as the messages write a shape. */
const show = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/**
 * An immutable f32 tensor on the CPU: row-major `data` and its `shape`. The data lives in an
 * ordinary `Float32Array` (memory the JavaScript garbage collector sees and frees); every
 * operation returns a new tensor. Shape problems throw a `RangeError` naming the operation
 * and the shapes.
 */
export class Tensor {
  /** The values, row-major (do not modify: tensors are immutable). */
  readonly data: Float32Array;
  /** The dimensions. */
  readonly shape: readonly number[];

  /** Wraps values already known to fit `shape`; {@link Tensor.fromArray} checks them. */
  protected constructor(data: Float32Array, shape: readonly number[]) {
    this.data = data;
    this.shape = Object.freeze([...shape]);
  }

  /**
   * A tensor of `shape` holding `data` (row-major, copied): as many values as the shape
   * holds, every one finite. A `RangeError` names the problem.
   */
  static fromArray(data: ArrayLike<number>, shape: readonly number[]): Tensor {
    if (
      !Array.isArray(shape) ||
      shape.length === 0 ||
      !shape.every((d) => Number.isInteger(d) && d >= 0 && d <= MAX_DIM)
    ) {
      throw new RangeError(`shape: expected a non-empty list of integers in [0, 2^32), got ${String(shape)}`);
    }
    const count = shape.reduce((a, b) => a * b, 1);
    if (data.length !== count) {
      throw new RangeError(`shape: ${show(shape)} holds ${count} values, but ${data.length} were given`);
    }
    const values = Float32Array.from(data);
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new RangeError(`data[${bad}]: ${values[bad]} is not finite`);
    return new Tensor(values, shape);
  }

  /**
   * A tensor over values the native core produced for `shape`.
   *
   * @internal
   */
  static fromNative(result: { data: Float32Array; shape: readonly number[] }): Tensor {
    return new Tensor(result.data, result.shape);
  }

  /** A copy of the values, row-major. */
  toArray(): Float32Array {
    return this.data.slice();
  }

  /** The addon's form of this tensor. */
  private get js() {
    return { data: this.data, shape: [...this.shape] };
  }

  /** Matrix product over the last two dimensions (`[..., n, k] × [..., k, m]`). */
  matmul(other: Tensor): Tensor {
    return Tensor.fromNative(native().tensorMatmul(this.js, other.js));
  }

  /** Element-wise sum, with broadcasting. */
  add(other: Tensor): Tensor {
    return Tensor.fromNative(native().tensorAdd(this.js, other.js));
  }

  /** Element-wise product, with broadcasting. */
  mul(other: Tensor): Tensor {
    return Tensor.fromNative(native().tensorMul(this.js, other.js));
  }

  /** Softmax over the last dimension. */
  softmax(): Tensor {
    return Tensor.fromNative(native().tensorSoftmax(this.js));
  }

  /**
   * Cosine similarity of every row of this tensor (`[n, d]` or `[d]`) with every row of
   * `other` (`[m, d]` or `[d]`): a `[n, m]` tensor. A zero row has similarity 0 with everything.
   */
  cosineSimilarity(other: Tensor): Tensor {
    return Tensor.fromNative(native().tensorCosineSimilarity(this.js, other.js));
  }
}
