import { describe, expect, it } from 'vitest';

import { checkSchedule, learningRateAt, type Schedule } from '../../src/training/schedule.js';

const at = (s: Schedule, steps: number[]) => steps.map((step) => learningRateAt(s, step));

describe('learning-rate schedules', () => {
  it('warm up linearly to the peak, then stay there (constant)', () => {
    const s = { lr: 1e-3, warmupSteps: 4, kind: 'constant' as const, steps: 10 };
    expect(at(s, [1, 2, 3, 4, 5, 10])).toEqual([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3]);
    expect(at({ ...s, warmupSteps: 0 }, [1, 7])).toEqual([1e-3, 1e-3]); // the textbook's
  });

  it('decay linearly from the peak over the steps after the warmup', () => {
    const s = { lr: 1, warmupSteps: 2, kind: 'linear' as const, steps: 6 };
    // warmup 0.5, 1; then 4 decayed steps at 1, 3/4, 1/2, 1/4
    expect(at(s, [1, 2, 3, 4, 5, 6])).toEqual([0.5, 1, 1, 0.75, 0.5, 0.25]);
  });

  it('decay along a half cosine', () => {
    const s = { lr: 2, warmupSteps: 0, kind: 'cosine' as const, steps: 4 };
    const expected = [0, 1, 2, 3].map((k) => 0.5 * 2 * (1 + Math.cos((Math.PI * k) / 4)));
    for (const [i, v] of at(s, [1, 2, 3, 4]).entries()) expect(v).toBeCloseTo(expected[i], 12);
    expect(learningRateAt(s, 3)).toBeCloseTo(1, 12); // halfway: half the peak
  });

  it('name a bad schedule', () => {
    const ok = { lr: 1, warmupSteps: 0, kind: 'linear' as const, steps: 5 };
    expect(() => checkSchedule({ ...ok, kind: 'step' as never })).toThrow(
      /^schedule: expected 'constant', 'linear', 'cosine'/,
    );
    expect(() => checkSchedule({ ...ok, warmupSteps: 5 })).toThrow(
      /^warmupSteps: 5 leaves no step of the linear decay/,
    );
    expect(() => checkSchedule({ ...ok, warmupSteps: -1 })).toThrow(/^warmupSteps:/);
    expect(() => checkSchedule({ ...ok, lr: 0 })).toThrow(/^lr:/);
    expect(checkSchedule({ ...ok, kind: 'constant', warmupSteps: 9 })).toBeTruthy(); // warmup past the end is fine when constant
  });
});
