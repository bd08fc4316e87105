// npm's `install` step for tsbert (src/install.ts, built to dist/install.js): makes sure an
// addon is there for this platform, building it from source where no prebuilt one fits. In a
// clone of the repository it does nothing: `npm ci` runs `prepare`, which builds everything.
import { existsSync } from 'node:fs';

const root = new URL('..', import.meta.url);
if (!existsSync(new URL('src/index.ts', root))) {
  const { install } = await import(new URL('dist/install.js', root).href);
  process.exitCode = install();
}
