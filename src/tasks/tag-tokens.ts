/**
 * Named entities (or any tags) of texts with a token-classification head: {@link tagTokens},
 * as the token-classification pipeline of transformers finds them for each of its
 * aggregation strategies — each token's label (`'none'`), runs of tokens of one type
 * (`'simple'`), or words first, each labelled by its first sub-word's, its sub-words' mean or
 * its most confident sub-word's scores (`'first'`, `'average'`, `'max'`), then grouped —
 * with character offsets into the text.
 *
 * @module
 */
import type { BertModel } from '../model.js';
import type { TokenizedText } from '../tokenizer.js';
import { checked, integerFrom, oneOf } from '../training/options.js';

/** How {@link tagTokens} groups tokens into entities (transformers' `aggregation_strategy`). */
export type Aggregation = 'none' | 'simple' | 'first' | 'average' | 'max';

/** The aggregation strategies. */
export const AGGREGATIONS: readonly Aggregation[] = ['none', 'simple', 'first', 'average', 'max'];

/** An entity (or, with `'none'`, a token) and where it is in the text. */
export interface TaggedEntity {
  /** Its label (`'B-PER'` a token with `'none'`), or its type (`'PER'`) once grouped (transformers' `entity_group`). */
  entity: string;
  /** The softmax probability of the label (a group's: the mean over its tokens or words). */
  score: number;
  /**
   * The text of its tokens as the tokenizer's WordPiece decoder joins them: sub-words glued
   * (`'hugging'` from `hu ##gging`), `. , ? !` glued to what comes before (`'tokyo,'`), a token
   * the vocabulary lacks as its text (not `[UNK]`); with `'none'`, the token (`'##gging'`).
   */
  word: string;
  /** Its first character in the text (UTF-16 code units, as JavaScript indexes strings). */
  start: number;
  /** One past its last character. */
  end: number;
  /** The token's position in the tokenized text (`'none'` only). */
  index?: number;
}

/** How {@link tagTokens} tags. */
export interface TagOptions {
  /** How tokens are grouped; default `'simple'`. */
  aggregation?: Aggregation;
  /** Labels left out of the result; default `['O']`. */
  ignoreLabels?: readonly string[];
  /** Texts a native pass; default 32. */
  batchSize?: number;
}

/** A token of the text with its label scores. */
interface Scored {
  /** Its label (the most probable). */
  entity: string;
  /** That label's probability. */
  score: number;
  /** Every label's probability. */
  scores: number[];
  word: string;
  start: number;
  end: number;
  index: number;
  /** A word's later sub-word: a token of another length than its text (`##…`; transformers' test). */
  subword: boolean;
}

/** `B`/`I` and the type of a label (transformers' `get_tag`: a label without a prefix is an `I` of its own type). */
function tagOf(label: string): [string, string] {
  if (label.startsWith('B-')) return ['B', label.slice(2)];
  if (label.startsWith('I-')) return ['I', label.slice(2)];
  return ['I', label];
}

/**
 * A group's type: the label after its first `-` (transformers' `group_sub_entities`, which
 * names groups so, while `get_tag` only strips `B-`/`I-`: `S-PER` is `PER`, `O` is `O`).
 */
const typeOf = (label: string) => label.slice(label.indexOf('-') + 1);

/** The `cleanup` of the tokenizers library's WordPiece decoder: spaces before punctuation and contractions dropped. */
const cleanup = (token: string) =>
  token
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(' do not', " don't")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");

/**
 * Tokens joined as the WordPiece decoder of BERT's tokenizer joins them (transformers'
 * `convert_tokens_to_string`): each token after the first loses its `##` or gains a space
 * before it, then each is cleaned up alone (`'tokyo ,'` is `'tokyo,'`, `'? !'` is `'?!'`).
 */
const joined = (tokens: readonly string[]) =>
  tokens.map((token, i) => cleanup(i === 0 ? token : token.startsWith('##') ? token.slice(2) : ` ${token}`)).join('');

/** Unicode code points in `text` (Python's `len`). */
function codePoints(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff || i === 0 || text.charCodeAt(i - 1) < 0xd800 || text.charCodeAt(i - 1) > 0xdbff) {
      n++;
    }
  }
  return n;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The softmax of `x`. */
function softmax(x: ArrayLike<number>): number[] {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]);
  const e = Array.from(x, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** The index of the largest of `x`. */
const argmax = (x: readonly number[]) => x.reduce((best, v, i) => (v > x[best] ? i : best), 0);

/** A group of tokens (or words) as one entity: the type of the first, the mean score (transformers' `group_sub_entities`). */
function group(items: readonly Scored[]): TaggedEntity {
  return {
    entity: typeOf(items[0].entity),
    score: mean(items.map((i) => i.score)),
    word: joined(items.map((i) => i.word)),
    start: items[0].start,
    end: items[items.length - 1].end,
  };
}

/** Runs of one type, a `B-` starting a new one (transformers' `group_entities`). */
function groupEntities(items: readonly Scored[]): TaggedEntity[] {
  const groups: TaggedEntity[] = [];
  let run: Scored[] = [];
  for (const item of items) {
    const [bi, type] = tagOf(item.entity);
    if (run.length > 0 && !(type === tagOf(run[run.length - 1].entity)[1] && bi !== 'B')) {
      groups.push(group(run));
      run = [];
    }
    run.push(item);
  }
  if (run.length > 0) groups.push(group(run));
  return groups;
}

/** Words from tokens (a word: a token and the sub-words after it), each labelled by `how` (transformers' `aggregate_words`). */
function aggregateWords(
  tokens: readonly Scored[],
  how: 'first' | 'average' | 'max',
  labels: readonly string[],
): Scored[] {
  const words: Scored[] = [];
  let word: Scored[] = [];
  const flush = () => {
    if (word.length === 0) return;
    let scores: number[];
    if (how === 'first') scores = word[0].scores;
    else if (how === 'max') scores = word.reduce((best, t) => (t.score > best.score ? t : best)).scores;
    else scores = word[0].scores.map((_, k) => mean(word.map((t) => t.scores[k])));
    const k = argmax(scores);
    words.push({
      entity: labels[k],
      score: scores[k],
      scores,
      word: joined(word.map((t) => t.word)),
      start: word[0].start,
      end: word[word.length - 1].end,
      index: word[0].index,
      subword: false,
    });
    word = [];
  };
  for (const token of tokens) {
    if (!token.subword) flush();
    word.push(token);
  }
  flush();
  return words;
}

/**
 * The scored tokens of one text (the `[CLS]` and `[SEP]` around it left out), as transformers'
 * `gather_pre_entities` makes them: a token is a later sub-word of a word when it has another
 * length than its text (in code points, as Python counts: `##ing` is longer than `ing`), and
 * a token the vocabulary lacks is its text, never a sub-word.
 */
function scoredTokens(
  input: string,
  text: TokenizedText,
  logits: Float32Array,
  labels: readonly string[],
  unk: number | undefined,
): Scored[] {
  const c = labels.length;
  const out: Scored[] = [];
  const last = text.ids.length - 1;
  for (let t = 1; t < last; t++) {
    const [start, end] = text.offsets[t];
    const scores = softmax(logits.subarray(t * c, (t + 1) * c));
    const k = argmax(scores);
    const own = input.slice(start, end);
    const unknown = text.ids[t] === unk;
    const word = unknown ? own : text.tokens[t];
    out.push({
      entity: labels[k],
      score: scores[k],
      scores,
      word,
      start,
      end,
      index: t,
      subword: !unknown && codePoints(word) !== codePoints(own),
    });
  }
  return out;
}

/**
 * The entities of `text` (or of each of `texts`) by the model's token-classification head,
 * grouped by `aggregation` as transformers' token-classification pipeline groups them, with
 * the labels of `ignoreLabels` (`O`) left out. Texts longer than the model's positions are cut.
 *
 * @example
 * ```ts
 * const ner = await BertModel.load('dslim/bert-base-NER', { inferenceOnly: true });
 * await tagTokens(ner, 'My name is Wolfgang and I live in Berlin');
 * // [{ entity: 'PER', score: 0.99, word: 'Wolfgang', start: 11, end: 19 }, { entity: 'LOC', … }]
 * ```
 */
export async function tagTokens(model: BertModel, text: string, options?: TagOptions): Promise<TaggedEntity[]>;
export async function tagTokens(
  model: BertModel,
  texts: readonly string[],
  options?: TagOptions,
): Promise<TaggedEntity[][]>;
export async function tagTokens(
  model: BertModel,
  input: string | readonly string[],
  options: TagOptions = {},
): Promise<TaggedEntity[] | TaggedEntity[][]> {
  const task = model.config.task;
  if (task?.kind !== 'token_classification') {
    const has = task ? `a ${task.kind} head` : 'no task head';
    throw new RangeError(`model: tagTokens needs a token-classification head, and this model has ${has}`);
  }
  const texts = typeof input === 'string' ? [input] : input;
  if (!Array.isArray(texts)) throw new TypeError('texts: expected a string or an array of strings');
  const bad = texts.findIndex((t) => typeof t !== 'string');
  if (bad >= 0) throw new TypeError(`texts[${bad}]: expected a string`);
  const aggregation = checked('aggregation', oneOf(AGGREGATIONS), options.aggregation ?? 'simple');
  const batchSize = checked('batchSize', integerFrom(1), options.batchSize ?? 32);
  const ignore = new Set(options.ignoreLabels ?? ['O']);
  const labels = model.labels as readonly string[];
  const c = labels.length;
  const unk = model.tokenizer.nativeTokenizer().specialIds().unk ?? undefined;
  const chunks: { texts: readonly string[]; encoded: TokenizedText[] }[] = [];
  for (let first = 0; first < texts.length; first += batchSize) {
    const chunk = texts.slice(first, first + batchSize);
    const encoded = model.tokenizer.encodeBatch(
      chunk.map((t) => [t] as const),
      { maxLength: model.config.maxPositions },
    );
    chunks.push({ texts: chunk, encoded });
  }
  const passes = chunks.map(({ encoded }) => model.tokenizer.pad(encoded));
  const outputs = await model.taskLogitsOfPasses(passes); // in one turn: no other call between the passes
  const results: TaggedEntity[][] = [];
  for (const [p, { texts: chunk, encoded }] of chunks.entries()) {
    const sequences = passes[p];
    const logits = outputs[p].data;
    for (const [row, text] of encoded.entries()) {
      const rowLogits = logits.subarray(row * sequences.seqLen * c, (row + 1) * sequences.seqLen * c);
      const tokens = scoredTokens(chunk[row], text, rowLogits, labels, unk);
      let entities: TaggedEntity[];
      if (aggregation === 'none') {
        entities = tokens.map(({ entity, score, word, start, end, index }) => ({
          entity,
          score,
          index,
          word,
          start,
          end,
        }));
      } else {
        entities = groupEntities(aggregation === 'simple' ? tokens : aggregateWords(tokens, aggregation, labels));
      }
      results.push(entities.filter((e) => !ignore.has(e.entity)));
    }
  }
  return typeof input === 'string' ? results[0] : results;
}
