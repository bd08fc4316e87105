/**
 * Learning-rate schedules: a linear warmup, then a constant rate (the textbook's), or a
 * linear or cosine decay to zero at the last step (BERT's recipe is warmup then linear).
 *
 * @module
 */

/** What the rate does after the warmup. */
export type ScheduleKind = 'constant' | 'linear' | 'cosine';

/** The schedule of a run. */
export interface Schedule {
  /** The peak learning rate. */
  lr: number;
  /** Steps of linear warmup from `lr / warmupSteps` up to `lr`; 0 for none. */
  warmupSteps: number;
  /** After the warmup. */
  kind: ScheduleKind;
  /** The run's last step (where the decays reach 0). */
  steps: number;
}

/** The schedule kinds, for option checks. */
export const SCHEDULE_KINDS: readonly ScheduleKind[] = Object.freeze(['constant', 'linear', 'cosine']);

/** Checks a schedule's fields; a `RangeError` naming the bad one. */
export function checkSchedule(schedule: Schedule): Schedule {
  const { lr, warmupSteps, kind, steps } = schedule;
  if (!Number.isFinite(lr) || lr <= 0) throw new RangeError(`lr: expected a positive number, got ${String(lr)}`);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0)
    throw new RangeError(`warmupSteps: expected an integer ≥ 0, got ${String(warmupSteps)}`);
  if (!SCHEDULE_KINDS.includes(kind))
    throw new RangeError(`schedule: expected ${SCHEDULE_KINDS.map((k) => `'${k}'`).join(', ')}, got ${String(kind)}`);
  if (kind !== 'constant' && warmupSteps >= steps)
    throw new RangeError(`warmupSteps: ${warmupSteps} leaves no step of the ${kind} decay (steps = ${steps})`);
  return schedule;
}

/**
 * The learning rate of 1-based `step`: `lr · step / warmupSteps` during the warmup; then `lr`
 * (constant), or `lr` decayed linearly or along a half cosine over the steps left, the
 * first step after the warmup at `lr` and the last at `lr / (steps − warmupSteps)` (linear).
 */
export function learningRateAt(schedule: Schedule, step: number): number {
  const { lr, warmupSteps, kind, steps } = schedule;
  if (step <= warmupSteps) return (lr * step) / warmupSteps;
  if (kind === 'constant') return lr;
  const progress = Math.min(1, (step - warmupSteps - 1) / (steps - warmupSteps)); // 0 at the first decayed step
  return kind === 'linear' ? lr * (1 - progress) : lr * 0.5 * (1 + Math.cos(Math.PI * progress));
}
