/**
 * How much host memory tsbert lets a model and a pass over a batch take: sizes that would need
 * more are refused before anything is allocated, with the estimate in the message.
 *
 * @internal
 * @module
 */
import { totalmem } from 'node:os';

/**
 * The limit in bytes: `TSBERT_MEMORY_LIMIT` (a number of bytes) when set, else this machine's
 * memory. A `RangeError` when the variable is not a positive integer.
 */
export function memoryLimit(): number {
  const setting = process.env.TSBERT_MEMORY_LIMIT;
  if (setting === undefined || setting === '') return totalmem();
  const bytes = Number(setting);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new RangeError(`TSBERT_MEMORY_LIMIT: expected a number of bytes, got '${setting}'`);
  }
  return bytes;
}

/**
 * `bytes` in the largest decimal unit it reaches, with two decimals (`12.35 GB`, `3.20 MB`,
 * `812 bytes`), as the native core's messages give sizes.
 */
export function formatBytes(bytes: number): string {
  const unit = (
    [
      [1e9, 'GB'],
      [1e6, 'MB'],
      [1e3, 'kB'],
    ] as const
  ).find(([size]) => bytes >= size);
  return unit ? `${(bytes / unit[0]).toFixed(2)} ${unit[1]}` : `${bytes} bytes`;
}
