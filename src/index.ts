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

export type { BertConfig, ModelSizes, TaskKind } from './config.js';
export { TEXTBOOK_SIZES } from './config.js';
export * from './data/index.js';
export type { Device, DeviceName, DeviceReport, ResolvedDevice } from './device.js';
export { deviceLabel, devices, resolveDevice } from './device.js';
export { CheckpointError, DataError, HubError, TrainingDivergedError } from './errors.js';
export type {
  FinetuneEvalRecord,
  FinetuneOptions,
  FinetuneResult,
  FinetuneStepRecord,
  FinetuneSummary,
} from './finetune.js';
export { finetune } from './finetune.js';
export type { HubOptions } from './hub.js';
export type {
  CreateModelOptions,
  ForwardOutputs,
  LoadOptions,
  ModelDtype,
  NewHead,
  SaveOptions,
  StepLosses,
} from './model.js';
export { BertModel, MODEL_DTYPES } from './model.js';
export type { PretrainDefaults, PretrainOptions, PretrainResult, PretrainSummary } from './pretrain.js';
export { PRETRAIN_DEFAULTS, pretrain } from './pretrain.js';
export type { PoolingMode, SentenceSettings } from './sentence-transformers.js';
export { POOLING_MODES } from './sentence-transformers.js';
export type { ClassifyInput, ClassifyOptions, LabelScore, RankedDocument } from './tasks/classify.js';
export { classify, rerank } from './tasks/classify.js';
export type { EmbedOptions } from './tasks/embed.js';
export { embed } from './tasks/embed.js';
export type { EncodeOptions, SentenceInput } from './tasks/encode.js';
export { Encoding, encode, encodeBatch } from './tasks/encode.js';
export type { FillMaskOptions, MaskFill, MaskPrediction } from './tasks/fill-mask.js';
export { fillMask } from './tasks/fill-mask.js';
export type { Aggregation, TaggedEntity, TagOptions } from './tasks/tag-tokens.js';
export { AGGREGATIONS, tagTokens } from './tasks/tag-tokens.js';
export { Tensor } from './tensor.js';
export type { TextInput, TokenizedText, TokenizeOptions } from './tokenizer.js';
export { Tokenizer } from './tokenizer.js';
export { CHECKPOINTS_DIR } from './training/checkpoints.js';
export type { EvaluateOptions } from './training/evaluation.js';
export { EVAL_DEFAULTS, evaluate } from './training/evaluation.js';
export type { FinetuneTask, ProblemType } from './training/finetune-options.js';
export type { EvalLine, EvalMetrics, EvalRecord, HistoryLine, StepLine, StepRecord } from './training/history.js';
export { HISTORY_FILE } from './training/history.js';
export type { Schedule, ScheduleKind } from './training/schedule.js';
export { learningRateAt } from './training/schedule.js';
export type { EvaluateTaskOptions, TaskEvaluation } from './training/task-evaluation.js';
export { evaluateTask, TASK_METRICS } from './training/task-evaluation.js';
export type {
  ClassificationMetrics,
  ClassScores,
  EntityMetrics,
  MultiLabelMetrics,
  RegressionMetrics,
} from './training/task-metrics.js';
