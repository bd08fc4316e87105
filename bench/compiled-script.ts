/**
 * Bench scripts compiled to plain JavaScript for the jobs that run under plain `node` (apart
 * from bench/support.ts, so that a bundle of the benches' helpers, as the GPU check's, does not
 * carry esbuild).
 */
import { basename, join } from 'node:path';

import { build } from 'esbuild';

/**
 * `script` (a bench TypeScript file) bundled with the sources it imports into plain JavaScript
 * beside it (`bench/<name>.compiled.mjs`, git-ignored; packages stay imports), for the jobs
 * whose peak RSS is reported: run by plain `node`, a job carries no TypeScript loader (tsx's
 * loader thread alone holds ~64 MiB), as an application running the built package does not.
 * Returns the file to run.
 */
export async function compiledScript(script: string): Promise<string> {
  const outfile = join(import.meta.dirname, `${basename(script, '.ts')}.compiled.mjs`);
  await build({
    entryPoints: [script],
    outfile,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
  });
  return outfile;
}
