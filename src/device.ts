/**
 * Where a model runs, and what this machine offers.
 *
 * @module
 */
import { binding, nativeVariant } from './native.js';

/** `'auto'` (a GPU if there is one, else the CPU), `'cpu'`, or a CUDA GPU. */
export type Device = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

/** What {@link devices} reports. */
export interface DeviceReport {
  /** The addon build in use. */
  build: 'cuda' | 'cpu';
  /** CUDA GPUs usable now (0 in the CPU build or without a driver). */
  cudaDevices: number;
  /** Why no GPU is usable, when none is. */
  reason?: string;
}

/** The devices this process can train on. */
export function devices(): DeviceReport {
  if (nativeVariant.variant === 'cpu') {
    return { build: 'cpu', cudaDevices: 0, reason: nativeVariant.cudaUnavailable };
  }
  try {
    const cudaDevices = binding.cudaDeviceCount();
    return cudaDevices > 0 ? { build: 'cuda', cudaDevices } : { build: 'cuda', cudaDevices, reason: 'the driver reports no GPU' };
  } catch (error) {
    return { build: 'cuda', cudaDevices: 0, reason: (error as Error).message };
  }
}

const NAMES = /^(auto|cpu|cuda|cuda:\d+)$/;

/**
 * The concrete device for a requested one: `'auto'` is `'cuda'` when a GPU is usable, else
 * `'cpu'`. An unknown name is a `RangeError`; a CUDA name with no usable GPU is a
 * `RangeError` that says why.
 */
export function resolveDevice(device: Device | undefined): Exclude<Device, 'auto'> {
  const name = device ?? 'auto';
  if (typeof name !== 'string' || !NAMES.test(name)) {
    throw new RangeError(`device: unknown device '${String(name)}' (expected 'auto', 'cpu', 'cuda' or 'cuda:N')`);
  }
  if (name === 'cpu') return 'cpu';
  const report = devices();
  if (name === 'auto') return report.cudaDevices > 0 ? 'cuda' : 'cpu';
  const ordinal = name === 'cuda' ? 0 : Number(name.slice(5));
  if (ordinal >= report.cudaDevices) {
    throw new RangeError(`device: '${name}' is not available (${report.reason ?? `${report.cudaDevices} CUDA GPU(s)`})`);
  }
  return name as Exclude<Device, 'auto'>;
}
