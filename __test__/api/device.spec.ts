import { describe, expect, it } from 'vitest';

import { devices, resolveDevice } from '../../src/index.js';
import { nativeVariant } from '../../src/native.js';

describe('devices', () => {
  const report = devices();

  it('reports the addon in use and, without a usable GPU, why', () => {
    expect(['cpu', 'cuda']).toContain(report.build);
    expect(report.build).toBe(nativeVariant().variant);
    if (report.cudaDevices === 0) expect(report.reason).toMatch(/\S/);
  });

  it("resolves 'auto' to a GPU only when one is usable, and names unknown or unavailable devices", () => {
    expect(resolveDevice('auto')).toBe(report.cudaDevices > 0 ? 'cuda' : 'cpu');
    expect(resolveDevice('cpu')).toBe('cpu');
    expect(() => resolveDevice('tpu' as never)).toThrow(/^device: unknown device 'tpu'/);
    expect(() => resolveDevice(`cuda:${report.cudaDevices}`)).toThrow(
      new RegExp(`^device: 'cuda:${report.cudaDevices}' is not available`),
    );
  });
});
