/**
 * The README's marked code blocks run, at small sizes, and print lines of the form the README
 * shows (scripts/readme.ts; the README's outputs are written by its `--write` from real runs).
 * Runs the built command (`dist/`, as `npm ci` builds it).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { runReadme } from '../scripts/readme.js';

describe('the README', () => {
  it('runs its marked blocks, and they print what it shows (numbers aside)', () => {
    expect(existsSync(join(import.meta.dirname, '../dist/cli.js')), 'dist/cli.js: run `npm run build`').toBe(true);
    const { ran, skipped } = runReadme('check');
    expect(ran).toBeGreaterThanOrEqual(2);
    for (const s of skipped) expect(s).toMatch(/all-MiniLM-L6-v2 is absent/); // the one block that needs a model not in the repository
  }, 300_000);
});
