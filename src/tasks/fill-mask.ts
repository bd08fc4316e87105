/**
 * Mask filling: {@link fillMask}, the most probable tokens for every mask token of a text, by
 * the model's MLM head.
 *
 * @module
 */

import type { BertModel } from '../model.js';
import { checked, integerFrom } from '../training/options.js';
import { tokenizeFor } from './encode.js';

/** One candidate for a masked token. */
export interface MaskPrediction {
  /** The token. */
  token: string;
  /** Its id. */
  id: number;
  /** Its probability (softmax over the vocabulary). */
  probability: number;
}

/** The candidates of one mask token of the text, most probable first. */
export interface MaskFill {
  /** Where the mask is among the tokens (0 is `[CLS]`). */
  position: number;
  /** The `topK` most probable tokens. */
  predictions: MaskPrediction[];
}

/** How {@link fillMask} answers. */
export interface FillMaskOptions {
  /** Candidates a mask; default 5. */
  topK?: number;
}

/** The spellings of a mask token: BERT's and the textbook vocabulary's. */
const MASK_SPELLINGS = ['[MASK]', '<mask>'];

/**
 * The most probable tokens for every mask token of `text` (the model's own, `[MASK]` or
 * `<mask>`; the other spelling is taken for it), most probable first. A text without one, or a
 * model without an MLM head, is an error saying so.
 */
export async function fillMask(model: BertModel, text: string, options: FillMaskOptions = {}): Promise<MaskFill[]> {
  const { topK = 5 } = options;
  if (typeof text !== 'string') throw new TypeError(`text: expected a string, got ${String(text)}`);
  checked('topK', integerFrom(1), topK);
  const tokenizer = model.tokenizer;
  const mask = tokenizer.maskToken;
  if (mask === undefined) throw new RangeError('model: its tokenizer has no mask token');
  const other = MASK_SPELLINGS.filter((s) => s !== mask);
  const [t] = tokenizeFor(model, [[other.reduce((s, spelling) => s.replaceAll(spelling, mask), text)]]);
  const maskId = tokenizer.tokenToId(mask);
  const positions = Array.from(t.ids.keys()).filter((i) => t.ids[i] === maskId);
  if (positions.length === 0) throw new RangeError(`text: has no mask token (${mask}, this model's) to fill`);
  const pairs = Int32Array.from(positions.flatMap((p) => [0, p]));
  const logits = await model.mlmLogitsAt(tokenizer.pad([t]), pairs);
  const v = model.config.vocabSize;
  return positions.map((position, k) => {
    const row = logits.subarray(k * v, (k + 1) * v);
    const top = row.reduce((m, x) => Math.max(m, x), Number.NEGATIVE_INFINITY);
    const total = row.reduce((s, x) => s + Math.exp(x - top), 0);
    const best = Array.from(row.keys())
      .sort((x, y) => row[y] - row[x])
      .slice(0, topK);
    return {
      position,
      predictions: best.map((id) => ({
        token: tokenizer.idToToken(id) ?? `[${id}]`,
        id,
        probability: Math.exp(row[id] - top) / total,
      })),
    };
  });
}
