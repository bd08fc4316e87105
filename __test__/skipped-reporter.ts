/**
 * A vitest reporter that names, after the summary, every skipped suite or test with the
 * reason in its name (e.g. "needs ../shared/data/wikitext-2"), so that a run that skipped
 * checks says which: vitest's own summary only counts them.
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class SkippedReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const skipped = new Map<string, number>();
    for (const module of modules) {
      for (const test of module.children.allTests()) {
        if (test.result().state !== 'skipped') continue;
        const where = `${module.moduleId.replace(`${process.cwd()}/`, '')} > ${test.fullName.split(' > ').slice(0, -1).join(' > ') || test.name}`;
        skipped.set(where, (skipped.get(where) ?? 0) + 1);
      }
    }
    if (skipped.size === 0) return;
    process.stdout.write(`\nskipped (${[...skipped.values()].reduce((a, b) => a + b, 0)} tests):\n`);
    for (const [where, n] of skipped) process.stdout.write(`  ${where}: ${n} test(s)\n`);
  }
}
