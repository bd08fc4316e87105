/**
 * Where a model runs, and what this machine offers.
 *
 * @module
 */
import { native, nativeVariant } from './native.js';

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
  /**
   * Where that addon came from: a package (`tsbert-linux-x64-gnu-cuda`, `tsbert-darwin-arm64`,
   * ...) or a file built in a clone (`binding/...`).
   */
  addon: string;
  /** CUDA GPUs usable now (0 in the CPU build or without a driver). */
  cudaDevices: number;
  /** Why no GPU is usable, when none is. */
  reason?: string;
}

/** The devices this process can train on. */
export function devices(): DeviceReport {
  const { variant, addon, cudaUnavailable } = nativeVariant();
  if (variant === 'cpu') return { build: 'cpu', addon, cudaDevices: 0, reason: cudaUnavailable };
  try {
    const cudaDevices = native().cudaDeviceCount();
    return cudaDevices > 0
      ? { build: 'cuda', addon, cudaDevices }
      : { build: 'cuda', addon, cudaDevices, reason: 'the driver reports no GPU' };
  } catch (error) {
    return { build: 'cuda', addon, cudaDevices: 0, reason: (error as Error).message };
  }
}

/** A device actually used: one, or several trained data-parallel. */
export type ResolvedDevice = DeviceName | DeviceName[];

/** The GPU ordinal of a CUDA name (`'cuda'` is GPU 0); `undefined` for `'cpu'` or a bad name. */
function cudaOrdinal(name: string): number | undefined {
  const m = /^cuda(?::(\d+))?$/.exec(name);
  return m ? Number(m[1] ?? 0) : undefined;
}

function checkName(name: unknown): DeviceName {
  const ordinal = typeof name === 'string' ? cudaOrdinal(name) : undefined;
  if (name !== 'cpu' && ordinal === undefined) {
    throw new RangeError(
      `device: unknown device '${String(name)}' (expected 'auto', 'cpu', 'cuda', 'cuda:N' or a list)`,
    );
  }
  if (ordinal !== undefined) {
    const { cudaDevices, reason } = devices();
    if (ordinal >= cudaDevices) {
      throw new RangeError(`device: '${String(name)}' is not available (${reason ?? `${cudaDevices} CUDA GPU(s)`})`);
    }
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
    return name.map(checkName);
  }
  return checkName(name);
}

/** A resolved device as one line of text (`'cpu'`, `'cuda:0,cuda:1'`). */
export function deviceLabel(device: ResolvedDevice): string {
  return Array.isArray(device) ? device.join(',') : device;
}

/**
 * The addon's form of a resolved device: one entry a replica, `{}` for the CPU and
 * `{ cuda: ordinal }` for a GPU.
 *
 * @internal
 */
export function nativeDevices(device: ResolvedDevice): { cuda?: number }[] {
  return (Array.isArray(device) ? device : [device]).map((name) => {
    const cuda = cudaOrdinal(name);
    return cuda === undefined ? {} : { cuda };
  });
}
