/**
 * Error classes of the public API. Input problems are the built-in `RangeError` and
 * `TypeError`, with messages that name the field; problems with a saved model folder are a
 * {@link CheckpointError}; a model by Hub id that cannot be had is a {@link HubError}; a training run whose loss or gradients stopped being finite is a
 * {@link TrainingDivergedError}.
 *
 * @module
 */
import type { StepRecord } from './training/history.js';

/** A model folder that is missing, incomplete, inconsistent or corrupt. */
export class CheckpointError extends Error {
  /** Always `'CheckpointError'`. */
  override readonly name = 'CheckpointError';

  /** @param message what is wrong, naming the folder or file */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * A model named by Hugging Face Hub id that cannot be had: not on the Hub, gated or private
 * without a token (`status` 401/403), no network and no cached copy, offline mode without a
 * cached copy, or a download that does not match the Hub's hash.
 */
export class HubError extends Error {
  /** Always `'HubError'`. */
  override readonly name = 'HubError';
  /** The Hub's HTTP status, when it answered. */
  readonly status: number | undefined;

  /** @param message what failed, naming the model and what to do */
  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options);
    this.status = options?.status;
  }
}

/**
 * A row of a data file that cannot be used — a missing text or label, a label the model does
 * not know, tags that do not match the tokens, invalid UTF-8, a CSV field whose quote is never
 * closed — naming the file, the line and, where there is one, the column.
 */
export class DataError extends Error {
  /** Always `'DataError'`. */
  override readonly name = 'DataError';
  /** The file. */
  readonly file: string;
  /** The 1-based line the row starts on (or where the problem is). */
  readonly line: number;
  /** The column: a field's name, or a 1-based character position in the line. */
  readonly column: string | number | undefined;

  /** @param problem what is wrong with the row (the position is prefixed) */
  constructor(problem: string, file: string, line: number, column?: string | number) {
    const where = column === undefined ? '' : typeof column === 'number' ? `:${column}` : ` (column '${column}')`;
    super(`${file}:${line}${where}: ${problem}`);
    this.file = file;
    this.line = line;
    this.column = column;
  }
}

/**
 * A training step whose loss or gradients are not finite (NaN or infinite): the step is not
 * applied, so the model keeps the weights of the last good step, and nothing is saved. Usually
 * the learning rate is too high.
 */
export class TrainingDivergedError extends Error {
  /** Always `'TrainingDivergedError'`. */
  override readonly name = 'TrainingDivergedError';
  /** The 1-based step (of this model's training) that diverged. */
  readonly step: number;
  /** The steps of the run before it, as `pretrain` records them (empty from `BertModel.trainStep`). */
  readonly history: readonly StepRecord[];

  /** @param message what diverged, at which step, and what to try */
  constructor(message: string, step: number, history: readonly StepRecord[] = [], options?: { cause?: unknown }) {
    super(message, options);
    this.step = step;
    this.history = history;
  }
}

/**
 * The `code` the native addon gives an error of a kind the public API has a class for.
 *
 * @internal
 */
export function nativeErrorCode(error: unknown): 'TSBERT_CHECKPOINT' | 'TSBERT_DIVERGED' | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'TSBERT_CHECKPOINT' || code === 'TSBERT_DIVERGED' ? code : undefined;
}
