/**
 * tsbert: BERT pretraining and contextual encoding for TypeScript, on a Rust (candle) core.
 *
 * ```ts
 * import { pretrain, encode } from 'tsbert';
 *
 * const { model, summary } = await pretrain({ data: '../shared/data/wikitext-2', steps: 50 });
 * const crane = await encode(model, ['a', 'crane', 'is', 'flying']);
 * crane.shape;            // [1, 6, 128]
 * crane.token(2).data;    // the vector of "crane" in this context
 * ```
 *
 * @packageDocumentation
 */

export type { BertConfig, ModelSizes } from './config.js';
export { TEXTBOOK_SIZES } from './config.js';
export * from './data/index.js';
export type { Device, DeviceName, DeviceReport, ResolvedDevice } from './device.js';
export { deviceLabel, devices, resolveDevice } from './device.js';
export type { Encoding, TokenVector } from './encode.js';
export { encode, encodeBatch } from './encode.js';
export { CheckpointError } from './errors.js';
export type { CreateModelOptions } from './model.js';
export { BertModel } from './model.js';
export type {
  BatchInput,
  BertConfigInput,
  BertConfigOutput,
  EvaluationOutput,
  NativeBert,
  NativeVariant,
  StepLossesOutput,
  TrainerOptionsInput,
} from './native.js';
export { nativeVariant } from './native.js';
export type { PretrainOptions, PretrainResult, PretrainSummary, StepRecord } from './pretrain.js';
export { pretrain } from './pretrain.js';
export type { NativeTensor } from './tensor.js';
export { Tensor } from './tensor.js';
