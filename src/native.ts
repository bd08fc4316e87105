/**
 * The native addon, loaded through the loader that `napi build` generates in `binding/`
 * (it picks the `.node` file of this platform, or the per-platform npm package).
 *
 * @module
 */
import { createRequire } from 'node:module';

import type * as Binding from '../binding/index.cjs';

const load = createRequire(import.meta.url);

/** The generated binding: the `NativeBert` class and the addon's functions. */
export const binding: typeof Binding = load('../binding/index.cjs');

export type {
  BatchInput,
  BertConfigInput,
  BertConfigOutput,
  EvaluationOutput,
  StepLossesOutput,
  TrainerOptionsInput,
} from '../binding/index.cjs';
