/**
 * Error classes of the public API. Input problems are the built-in `RangeError` and
 * `TypeError`, with messages that name the field; problems with a saved model folder are a
 * {@link CheckpointError}.
 *
 * @module
 */

/** A model folder that is missing, incomplete, inconsistent or corrupt. */
export class CheckpointError extends Error {
  /** Always `'CheckpointError'`. */
  override readonly name = 'CheckpointError';

  /** @param message what is wrong, naming the folder or file */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
