/**
 * Held-out evaluation: MLM loss and accuracy, NSP loss and accuracy of a model, dropout off,
 * on a fixed set of masked examples (the same seed, the same examples and masks).
 *
 * @module
 */
import type { Batch } from '../data/batch.js';
import { type DatasetOptions, PretrainingDataset } from '../data/dataset.js';
import { DATA_DEFAULTS } from '../data/defaults.js';
import type { CorpusSource } from '../data/sources.js';
import type { BertModel } from '../model.js';
import type { EvalMetrics } from './history.js';

/** How a held-out set is made. */
export interface EvaluateOptions
  extends Pick<DatasetOptions, 'maxLen' | 'seed' | 'format' | 'textField' | 'memory' | 'signal'> {
  /** At most this many sentence pairs (a seeded sample of the corpus's); default 2048. */
  examples?: number;
  /** Pairs a native call; default 128. */
  batchSize?: number;
}

/** Defaults of held-out evaluation. */
export const EVAL_DEFAULTS = Object.freeze({
  /** Sentence pairs evaluated. */
  examples: 2048,
  /** Pairs a native call. */
  batchSize: 128,
});

/** Where a model's pretraining data gets its ids: its textbook vocabulary, or its tokenizer's sub-words. */
export function modelWords(model: BertModel): Pick<DatasetOptions, 'vocab' | 'subwords'> {
  return model.vocab ? { vocab: model.vocab } : { subwords: model.tokenizer.subwords() };
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`${name}: expected a positive integer, got ${String(value)}`);
  return value;
}

/**
 * The pretraining head `model` lacks (`'MLM'` first), if any: what evaluation and continued
 * pretraining need both of.
 */
export function missingHead(model: BertModel): 'MLM' | 'NSP' | undefined {
  const { mlmHead = true, nspHead = true } = model.config;
  if (!mlmHead) return 'MLM';
  return nspHead ? undefined : 'NSP';
}

/** A fixed set of masked, padded examples of a held-out corpus. */
export class HeldOutSet {
  /** The examples, a native call's worth at a time. */
  readonly batches: readonly Batch[];
  /** Sentence pairs. */
  readonly examples: number;

  private constructor(batches: Batch[]) {
    this.batches = batches;
    this.examples = batches.reduce((n, b) => n + b.batchSize, 0);
  }

  /**
   * The first `examples` pairs of `source` in its seeded order (epoch 0), ids from `words`
   * (the model's). Errors as `PretrainingDataset.fromSource` gives them.
   */
  static async fromSource(
    source: CorpusSource,
    words: Pick<DatasetOptions, 'vocab' | 'subwords'>,
    options: EvaluateOptions = {},
  ): Promise<HeldOutSet> {
    const examples = positive('examples', options.examples ?? EVAL_DEFAULTS.examples);
    const batchSize = positive('batchSize', options.batchSize ?? EVAL_DEFAULTS.batchSize);
    const dataset = await PretrainingDataset.fromSource(source, {
      ...words,
      maxLen: options.maxLen ?? DATA_DEFAULTS.maxLen,
      seed: options.seed ?? DATA_DEFAULTS.seed,
      format: options.format,
      textField: options.textField,
      memory: options.memory,
      signal: options.signal,
      heldOut: true,
      minFreq: 1,
    });
    const batches: Batch[] = [];
    let taken = 0;
    try {
      for (const batch of dataset.batches({ batchSize })) {
        if (taken >= examples) break;
        batches.push(batch.batchSize > examples - taken ? firstRows(batch, examples - taken) : batch);
        taken += batches[batches.length - 1].batchSize;
      }
    } finally {
      dataset.close();
    }
    return new HeldOutSet(batches);
  }

  /** The model's metrics on these examples, dropout off (one native call). */
  async metrics(model: BertModel): Promise<EvalMetrics> {
    return model.heldOutMetrics(this.batches);
  }
}

/** The first `n` rows of `batch`. */
function firstRows(batch: Batch, n: number): Batch {
  const { seqLen: l, numPreds: p } = batch;
  return {
    batchSize: n,
    seqLen: l,
    numPreds: p,
    tokens: batch.tokens.slice(0, n * l),
    segments: batch.segments.slice(0, n * l),
    validLens: batch.validLens.slice(0, n),
    predPositions: batch.predPositions.slice(0, n * p),
    mlmWeights: batch.mlmWeights.slice(0, n * p),
    mlmLabels: batch.mlmLabels.slice(0, n * p),
    nspLabels: batch.nspLabels.slice(0, n),
  };
}

/**
 * Evaluates a model on a held-out corpus (a file, a folder — its `wiki.valid.tokens` — or a
 * pattern): MLM and NSP loss and accuracy, dropout off, on up to `examples` seeded masked pairs
 * whose ids come from the model's vocabulary or tokenizer. A model without both heads is a
 * `RangeError` saying which it lacks.
 *
 * @example
 * ```ts
 * const model = await BertModel.load('tsbert-model');
 * const m = await evaluate(model, '../shared/data/wikitext-2/wiki.valid.tokens');
 * console.log(`MLM ${m.mlmLoss.toFixed(3)} (${(100 * m.mlmAccuracy).toFixed(1)}%)`);
 * ```
 */
export async function evaluate(
  model: BertModel,
  data: CorpusSource,
  options: EvaluateOptions = {},
): Promise<EvalMetrics> {
  const missing = missingHead(model);
  if (missing) {
    throw new RangeError(`model: has no ${missing} head; evaluation scores both (a BertForPreTraining has them)`);
  }
  const maxLen = options.maxLen ?? Math.min(DATA_DEFAULTS.maxLen, model.config.maxPositions);
  const set = await HeldOutSet.fromSource(data, modelWords(model), { ...options, maxLen });
  return set.metrics(model);
}
