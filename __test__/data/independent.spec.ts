/** The data pipeline stands alone: importing it loads no native code. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '../..');

/** Imports `module` in a fresh process and reports whether any `.node` file got loaded. */
async function loadsNative(module: string): Promise<boolean> {
  const script = `await import(${JSON.stringify(join(root, module))});
    const loaded = process.report.getReport().sharedObjects.some((f) => f.endsWith('.node'));
    console.log(JSON.stringify(loaded));`;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
  });
  return JSON.parse(stdout) as boolean;
}

describe('the data pipeline', () => {
  it('loads without the native addon; the model API loads it', async () => {
    expect(await loadsNative('src/data/index.ts')).toBe(false);
    expect(await loadsNative('src/index.ts')).toBe(true); // the check itself can fail
  });
});
