import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['__test__/**/*.spec.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // the default report, then the suites a run skipped, by name (their names say what they need)
    reporters: ['default', './__test__/skipped-reporter.ts'],
  },
});
