/**
 * Where a model runs, and what this machine offers.
 *
 * @module
 */
import { binding, nativeVariant } from './native.js';

/** One device: the CPU or a CUDA GPU. */
export type DeviceName = 'cpu' | 'cuda' | `cuda:${number}`;

/**
 * Where to train: `'auto'` (every usable GPU, else the CPU), one device, or a list of
 * devices to train on data-parallel (one replica each).
 */
export type Device = 'auto' | DeviceName | readonly DeviceName[];

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
    return cudaDevices > 0
      ? { build: 'cuda', cudaDevices }
      : { build: 'cuda', cudaDevices, reason: 'the driver reports no GPU' };
  } catch (error) {
    return { build: 'cuda', cudaDevices: 0, reason: (error as Error).message };
  }
}

const NAMES = /^(cpu|cuda|cuda:\d+)$/;

/** A device actually used: one, or several trained data-parallel. */
export type ResolvedDevice = DeviceName | DeviceName[];

function checkName(name: unknown, report: () => DeviceReport): DeviceName {
  if (typeof name !== 'string' || !NAMES.test(name)) {
    throw new RangeError(
      `device: unknown device '${String(name)}' (expected 'auto', 'cpu', 'cuda', 'cuda:N' or a list)`,
    );
  }
  if (name !== 'cpu') {
    const ordinal = name === 'cuda' ? 0 : Number(name.slice(5));
    const { cudaDevices, reason } = report();
    if (ordinal >= cudaDevices)
      throw new RangeError(`device: '${name}' is not available (${reason ?? `${cudaDevices} CUDA GPU(s)`})`);
  }
  return name as DeviceName;
}

/**
 * The devices to use for a requested one: `'auto'` is every usable GPU (`'cuda'` for one,
 * `['cuda:0', 'cuda:1', …]` for several), else `'cpu'`. An unknown name or an empty list is
 * a `RangeError`; a CUDA name with no usable GPU is a `RangeError` that says why.
 */
export function resolveDevice(device: Device | undefined): ResolvedDevice {
  const name = device ?? 'auto';
  if (name === 'auto') {
    const n = devices().cudaDevices;
    return n > 1 ? Array.from({ length: n }, (_, i) => `cuda:${i}` as DeviceName) : n === 1 ? 'cuda' : 'cpu';
  }
  if (Array.isArray(name)) {
    if (name.length === 0) throw new RangeError('device: the list of devices is empty');
    return name.map((n) => checkName(n, devices));
  }
  return checkName(name, devices);
}

/** A resolved device as one line of text (`'cpu'`, `'cuda:0,cuda:1'`). */
export function deviceLabel(device: ResolvedDevice): string {
  return Array.isArray(device) ? device.join(',') : device;
}
