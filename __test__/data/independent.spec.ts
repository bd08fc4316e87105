/** The data pipeline stands alone: importing it loads no native code. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '../..');

/**
 * Imports `module` in a fresh process, runs `use` on it, and reports whether any `.node` file
 * got loaded.
 */
async function loadsNative(module: string, use = ''): Promise<boolean> {
  const script = `const m = await import(${JSON.stringify(join(root, module))});
    ${use}
    const loaded = process.report.getReport().sharedObjects.some((f) => f.endsWith('.node'));
    console.log(JSON.stringify(loaded));`;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
  });
  return JSON.parse(stdout) as boolean;
}

describe('the native addon', () => {
  it('is loaded by neither the data pipeline nor importing the package, only by a first native call', async () => {
    expect(await loadsNative('src/data/index.ts')).toBe(false);
    expect(await loadsNative('src/index.ts')).toBe(false);
    expect(await loadsNative('src/index.ts', 'm.PRETRAIN_DEFAULTS.batchSize;')).toBe(false);
    // the check itself can fail: a value from the addon loads it
    expect(await loadsNative('src/index.ts', 'm.TEXTBOOK_SIZES.hidden;')).toBe(true);
    expect(await loadsNative('src/index.ts', 'm.PRETRAIN_DEFAULTS.lr;')).toBe(true);
  });
});
