/**
 * cli-progress's `SingleBar`, loaded at the first bar rather than by every process that
 * imports tsbert (about 5 MiB of a serving process's memory otherwise).
 *
 * @internal
 * @module
 */
import { createRequire } from 'node:module';

import type { Options, SingleBar } from 'cli-progress';

const load = createRequire(import.meta.url);

/** A new `SingleBar` with `options` (cli-progress loaded now if it was not). */
export function singleBar(options: Options): SingleBar {
  const { SingleBar: Bar } = load('cli-progress') as typeof import('cli-progress');
  return new Bar(options);
}
