/**
 * Labelled examples for fine-tuning: a text (and a pair) with a class, several classes or a
 * number, or words with a tag each; read from a file in two streamed passes — the labels first
 * (their kind and names, when the model does not give them), then the rows tokenized by the
 * model's tokenizer (only token ids are kept) — and served as padded batches, shuffled each
 * epoch by the run's seed.
 *
 * @module
 */
import type { TaskKind } from '../config.js';
import { DataError } from '../errors.js';
import type { Tokenizer } from '../tokenizer.js';
import type { Sequences } from './batch.js';
import { type LabelledFormat, labelledFormatOf, type RawRow, readRows } from './labelled-files.js';
import { rngFor, Stream, shuffle } from './random.js';

/** What a token-classification label of a sub-word that is not scored is (Hugging Face's `-100`). */
export const IGNORED_LABEL = -100;

/** The fields a row's parts are read from. */
export interface LabelledColumns {
  /** The text (sequence tasks: a string) or the words (token classification: a list of strings). */
  text: string;
  /** The second text of a pair, when the rows have it (optional unless named). */
  pair: string;
  /** The label: a class name or number, a list (or `separator`-joined classes) for multi-label, a number for regression, the tags for token classification. */
  label: string;
  /** Whether `pair` was named (then rows without it are bad). */
  pairRequired: boolean;
  /** Joins several classes in one CSV or TSV field (multi-label). */
  separator: string;
}

/**
 * The columns of a head's data: the fields given, else the defaults — `text` (`tokens` for token
 * classification), `text_pair` (used when a row has it; required when named), `label` (`tags`),
 * and `,` joining a multi-label row's labels.
 */
export function labelledColumns(
  token: boolean,
  given: { textColumn?: string; pairColumn?: string; labelColumn?: string; labelSeparator?: string },
): LabelledColumns {
  return {
    text: given.textColumn ?? (token ? 'tokens' : 'text'),
    pair: given.pairColumn ?? 'text_pair',
    pairRequired: given.pairColumn !== undefined,
    label: given.labelColumn ?? (token ? 'tags' : 'label'),
    separator: given.labelSeparator ?? ',',
  };
}

/** How a labelled file is read. */
export interface LabelledReadOptions {
  /** The file's layout; default from its extension (see `labelledFormatOf`). */
  format?: LabelledFormat;
  /** The fields. */
  columns: LabelledColumns;
  /** Called with each bad row, which is then skipped; absent: a bad row is thrown. */
  onBadRow?: (error: DataError) => void;
  /** Stops the reading. */
  signal?: AbortSignal;
}

/** The labels of a data file: what they are, and their names in id order (sorted, numbers by value). */
export interface LabelSet {
  /** The head they train. */
  kind: TaskKind;
  /** The class names in id order (one name for a regression's number). */
  names: string[];
}

/** A row's label value before it is mapped to ids. */
type LabelValue = string | string[] | number;

/** A row's label, or what is wrong with it. */
type Parsed = { value: LabelValue } | { problem: string };

/** Whether `s` reads as a number. */
const numeric = (s: string) => s.trim() !== '' && Number.isFinite(Number(s));

/** A JSON or CSV cell as a class name (integers and strings; anything else undefined). */
function className(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim() === '' ? undefined : value.trim();
  if (typeof value === 'number' && Number.isInteger(value)) return String(value);
  return undefined;
}

/** Names sorted as their ids go: by value when all are numbers, else by code unit. */
export function sortedNames(names: Iterable<string>): string[] {
  const all = [...new Set(names)];
  return all.every(numeric) ? all.sort((a, b) => Number(a) - Number(b)) : all.sort();
}

/**
 * The label of `row` for a head of `kind`, or the problem with it. Token classification: the
 * tags, checked against the words (a list of the same length).
 */
function labelOf(row: RawRow, kind: TaskKind, columns: LabelledColumns): Parsed {
  const value = row.fields[columns.label];
  if (value === undefined || value === null || value === '') return { problem: `no label ('${columns.label}')` };
  const named = (v: LabelValue | undefined, problem: string): Parsed => (v === undefined ? { problem } : { value: v });
  switch (kind) {
    case 'single_label_classification': {
      return named(className(value), `the label ${JSON.stringify(value)} is no class name or integer`);
    }
    case 'multi_label_classification': {
      const list = Array.isArray(value)
        ? value
        : typeof value === 'string'
          ? value.split(columns.separator).filter((s) => s.trim() !== '')
          : [value];
      const names = list.map(className);
      return named(
        names.every((n) => n !== undefined) ? (names as string[]) : undefined,
        `the labels ${JSON.stringify(value)} are not class names or integers`,
      );
    }
    case 'regression': {
      const n = typeof value === 'number' ? value : typeof value === 'string' && numeric(value) ? Number(value) : NaN;
      return named(Number.isFinite(n) ? n : undefined, `the label ${JSON.stringify(value)} is not a finite number`);
    }
    case 'token_classification': {
      const words = row.fields[columns.text];
      if (!Array.isArray(value)) return { problem: `the tags ('${columns.label}') are not a list` };
      const tags = value.map(className);
      if (!tags.every((t) => t !== undefined))
        return { problem: `the tags ${JSON.stringify(value)} are not tag names` };
      if (Array.isArray(words) && words.length !== tags.length) {
        return { problem: `${tags.length} tags for ${words.length} words` };
      }
      return { value: tags as string[] };
    }
  }
}

/** The names `value` uses. */
const namesIn = (value: LabelValue): string[] =>
  typeof value === 'number' ? [] : typeof value === 'string' ? [value] : value;

/**
 * The kind and names of the labels of `path` (the first pass; rows that cannot be read are
 * left for the second to report). `kind` given: its labels' names; not given: a list label
 * makes it multi-label, numbers with fractions a regression, anything else single-label (a
 * token task's kind is `token_classification`).
 */
export async function scanLabels(
  path: string,
  token: boolean,
  kind: TaskKind | undefined,
  options: LabelledReadOptions,
): Promise<LabelSet> {
  const { columns, signal } = options;
  const format = options.format ?? labelledFormatOf(path);
  const cells: unknown[] = [];
  const seen = new Set<string>();
  let fractions = false;
  let lists = false;
  for await (const row of readRows(path, format, { onBadRow: () => {}, signal })) {
    const value = row.fields[columns.label];
    if (value === undefined || value === null || value === '') continue;
    if (Array.isArray(value)) lists = true;
    if (typeof value === 'number' ? !Number.isInteger(value) : typeof value === 'string' && numeric(value)) {
      fractions ||= !Number.isInteger(Number(value));
    }
    const key = JSON.stringify(value);
    const regression = kind === undefined ? fractions : kind === 'regression'; // no names to keep
    if (!regression && !seen.has(key)) {
      seen.add(key);
      cells.push(value);
    }
  }
  const resolved: TaskKind = token
    ? 'token_classification'
    : (kind ?? (lists ? 'multi_label_classification' : fractions ? 'regression' : 'single_label_classification'));
  if (resolved === 'regression') return { kind: resolved, names: [columns.label] };
  const names = new Set<string>();
  for (const cell of cells) {
    const parsed = labelOf({ line: 0, fields: { [columns.label]: cell } }, resolved, columns);
    if ('value' in parsed) for (const name of namesIn(parsed.value)) names.add(name);
  }
  if (names.size === 0) throw new Error(`data: '${path}' has no usable label in the column '${columns.label}'`);
  return { kind: resolved, names: sortedNames(names) };
}

/** One tokenized example. */
interface Example {
  /** Token ids, special tokens included. */
  ids: Int32Array;
  /** Segment ids (absent: all 0). */
  typeIds?: Int32Array;
  /** A class id or a number (sequence), the class ids of a multi-label row, or a label a token (-100: not scored). */
  target: number | Int32Array;
}

/** One batch: padded sequences, their labels as the head's step takes them, and which examples they are. */
export interface LabelledBatch {
  /** The padded sequences. */
  sequences: Sequences;
  /** Labels: `Int32Array` of a class a row or a class a token; `Float32Array` of 0/1 a label or of numbers. */
  labels: Int32Array | Float32Array;
  /** The examples' indices in the set. */
  rows: number[];
}

/** What reading a file gave. */
export interface LabelledCounts {
  /** Examples kept. */
  examples: number;
  /** Examples cut to the maximum length. */
  truncated: number;
  /** Bad rows skipped. */
  skipped: number;
}

/** How the rows become examples. */
export interface ExampleOptions extends LabelledReadOptions {
  /** The tokenizer of the model. */
  tokenizer: Tokenizer;
  /** The labels (their names give the ids; a name not among them is a bad row). */
  labels: LabelSet;
  /** Tokens an example may have, special tokens included (longer ones are cut: the longer text of a pair first). */
  maxLen: number;
}

/** Rows tokenized at a time. */
const CHUNK_ROWS = 256;

/** Labelled examples, tokenized, with their labels as ids (see the module's doc). */
export class LabelledSet {
  /** The labels' kind and names. */
  readonly labels: LabelSet;
  /** What reading gave. */
  readonly counts: LabelledCounts;
  readonly #examples: Example[];
  readonly #padId: number;

  private constructor(labels: LabelSet, examples: Example[], counts: LabelledCounts, padId: number) {
    this.labels = labels;
    this.#examples = examples;
    this.counts = counts;
    this.#padId = padId;
  }

  /** Examples in the set. */
  get size(): number {
    return this.#examples.length;
  }

  /** The target of example `i`: a class id or number, the classes of a multi-label row, or a label a token. */
  target(i: number): number | Int32Array {
    return this.#examples[i].target;
  }

  /** The token ids of example `i`. */
  ids(i: number): Int32Array {
    return this.#examples[i].ids;
  }

  /**
   * The examples of `path` (the second pass). Bad rows — no text, no label, a label not among
   * `labels.names`, tags that do not fit the words — are a {@link DataError} or, with
   * `onBadRow`, skipped and counted.
   */
  static async read(path: string, token: boolean, options: ExampleOptions): Promise<LabelledSet> {
    const { columns, labels, tokenizer, maxLen, signal } = options;
    const format = options.format ?? labelledFormatOf(path);
    if (token && (format === 'csv' || format === 'tsv')) {
      throw new RangeError(
        `format: token classification reads JSON Lines ({"tokens": [...], "tags": [...]}) or CoNLL columns, not ${format.toUpperCase()}`,
      );
    }
    const ids = new Map(labels.names.map((name, i) => [name, i]));
    const examples: Example[] = [];
    const counts = { examples: 0, truncated: 0, skipped: 0 };
    const onBadRow =
      options.onBadRow &&
      ((error: DataError) => {
        counts.skipped++;
        options.onBadRow?.(error);
      });
    const reject = (row: RawRow, problem: string, column?: string) => {
      const error = new DataError(problem, path, row.line, column);
      if (!onBadRow) throw error;
      onBadRow(error);
    };
    const special = tokenizer.nativeTokenizer().specialIds();
    let pending: { row: RawRow; text: string; pair?: string; target: number | Int32Array }[] = [];
    const flush = () => {
      const encoded = tokenizer.encodeBatch(
        pending.map((p) => (p.pair === undefined ? [p.text] : [p.text, p.pair])),
        { maxLength: maxLen },
      );
      for (const [k, e] of encoded.entries()) {
        if (e.overflow > 0) counts.truncated++;
        const pair = pending[k].pair !== undefined;
        examples.push({ ids: e.ids, typeIds: pair ? e.typeIds : undefined, target: pending[k].target });
      }
      pending = [];
    };
    for await (const row of readRows(path, format, { onBadRow, signal })) {
      const parsed = labelOf(row, labels.kind, columns);
      if ('problem' in parsed) {
        reject(row, parsed.problem, columns.label);
        continue;
      }
      const label = parsed.value;
      const unknown = namesIn(label).find((name) => !ids.has(name));
      if (labels.kind !== 'regression' && unknown !== undefined) {
        const shown = labels.names.slice(0, 20).join(', ') + (labels.names.length > 20 ? ', …' : '');
        reject(row, `the label '${unknown}' is not one of the model's (${shown})`, columns.label);
        continue;
      }
      const text = row.fields[columns.text];
      if (token) {
        if (!Array.isArray(text) || text.length === 0 || !text.every((w) => typeof w === 'string')) {
          reject(row, `no words ('${columns.text}' must be a non-empty list of strings)`, columns.text);
          continue;
        }
        const { example, cut } = tokenExample(tokenizer, special, text as string[], label as string[], ids, maxLen);
        if (cut) counts.truncated++;
        examples.push(example);
        continue;
      }
      if (typeof text !== 'string' || text.trim() === '') {
        reject(row, `no text ('${columns.text}')`, columns.text);
        continue;
      }
      const pairValue = row.fields[columns.pair];
      if (columns.pairRequired && (typeof pairValue !== 'string' || pairValue.trim() === '')) {
        reject(row, `no second text ('${columns.pair}')`, columns.pair);
        continue;
      }
      const pair = typeof pairValue === 'string' && pairValue !== '' ? pairValue : undefined;
      const target =
        labels.kind === 'regression'
          ? (label as number)
          : labels.kind === 'multi_label_classification'
            ? Int32Array.from(new Set((label as string[]).map((n) => ids.get(n) as number)))
            : (ids.get(label as string) as number);
      pending.push({ row, text, pair, target });
      if (pending.length >= CHUNK_ROWS) flush();
    }
    if (pending.length > 0) flush();
    counts.examples = examples.length;
    return new LabelledSet(labels, examples, counts, tokenizer.padId);
  }

  /**
   * The set split in two by a seeded draw: `[rest, held]` with `round(fraction × size)`
   * examples held out (at least one, and at least one left).
   */
  split(fraction: number, seed: number): [LabelledSet, LabelledSet] {
    const n = this.#examples.length;
    const held = Math.min(n - 1, Math.max(1, Math.round(fraction * n)));
    if (n < 2) throw new RangeError(`validSplit: ${n} example cannot be split`);
    const order = shuffle(
      Array.from({ length: n }, (_, i) => i),
      rngFor(seed, Stream.ValidSplit),
    );
    const part = (indices: number[]) => {
      const kept = indices.sort((a, b) => a - b).map((i) => this.#examples[i]);
      return new LabelledSet(this.labels, kept, { ...this.counts, examples: kept.length }, this.#padId);
    };
    return [part(order.slice(held)), part(order.slice(0, held))];
  }

  /** Batches an epoch of `batchSize` (the last may be shorter). */
  numBatches(batchSize: number): number {
    return Math.ceil(this.#examples.length / batchSize);
  }

  /**
   * The batches of epoch `epoch`: the examples in an order drawn from `seed` and the epoch (in
   * the file's order with `shuffle: false`); with `groupByLength`, each run of 50 batches
   * sorted by length, longest first, so that a batch pads little (as Hugging Face's
   * `group_by_length`).
   */
  *batches(
    batchSize: number,
    options: { epoch: number; seed: number; shuffle: boolean; groupByLength?: boolean },
  ): Generator<LabelledBatch> {
    const n = this.#examples.length;
    const order = Array.from({ length: n }, (_, i) => i);
    if (options.shuffle) shuffle(order, rngFor(options.seed, Stream.BatchOrder, options.epoch));
    if (options.groupByLength) {
      const mega = 50 * batchSize;
      for (let start = 0; start < n; start += mega) {
        const part = order.slice(start, start + mega);
        part.sort((a, b) => this.#examples[b].ids.length - this.#examples[a].ids.length);
        order.splice(start, part.length, ...part);
      }
    }
    for (let start = 0; start < n; start += batchSize) yield this.batch(order.slice(start, start + batchSize));
  }

  /** The examples `rows` as one batch, padded to the longest. */
  batch(rows: number[]): LabelledBatch {
    const b = rows.length;
    const examples = rows.map((i) => this.#examples[i]);
    const l = Math.max(1, ...examples.map((e) => e.ids.length));
    const sequences: Sequences = {
      batchSize: b,
      seqLen: l,
      tokens: new Int32Array(b * l).fill(this.#padId),
      segments: new Int32Array(b * l),
      validLens: new Int32Array(b),
    };
    for (const [r, e] of examples.entries()) {
      sequences.tokens.set(e.ids, r * l);
      if (e.typeIds) sequences.segments.set(e.typeIds, r * l);
      sequences.validLens[r] = e.ids.length;
    }
    return { sequences, labels: this.#labels(examples, l), rows };
  }

  /** The labels of `examples` as the head's step takes them, for sequences of `l` tokens. */
  #labels(examples: Example[], l: number): Int32Array | Float32Array {
    const { kind, names } = this.labels;
    const b = examples.length;
    if (kind === 'regression') return Float32Array.from(examples, (e) => e.target as number);
    if (kind === 'single_label_classification') return Int32Array.from(examples, (e) => e.target as number);
    if (kind === 'multi_label_classification') {
      const out = new Float32Array(b * names.length);
      for (const [r, e] of examples.entries()) for (const c of e.target as Int32Array) out[r * names.length + c] = 1;
      return out;
    }
    const out = new Int32Array(b * l).fill(IGNORED_LABEL);
    for (const [r, e] of examples.entries()) out.set(e.target as Int32Array, r * l);
    return out;
  }
}

/**
 * Words with their tags as one example: `[CLS]`, each word's sub-words, `[SEP]`, cut to
 * `maxLen`; a word's tag on its first sub-word, -100 on the others and on the special tokens
 * (a word the tokenizer makes nothing of loses its tag, as in Hugging Face's examples).
 */
function tokenExample(
  tokenizer: Tokenizer,
  special: { cls?: number; sep?: number },
  words: string[],
  tags: string[],
  ids: Map<string, number>,
  maxLen: number,
): { example: Example; cut: boolean } {
  const split = tokenizer.nativeTokenizer().splitWords(words);
  const room = maxLen - 2;
  const kept = Math.min(split.ids.length, room);
  const tokens = new Int32Array(kept + 2);
  const target = new Int32Array(kept + 2).fill(IGNORED_LABEL);
  tokens[0] = special.cls ?? 0;
  tokens.set(split.ids.subarray(0, kept), 1);
  tokens[kept + 1] = special.sep ?? 0;
  for (let w = 0; w < words.length; w++) {
    const first = split.starts[w];
    if (first < kept && split.starts[w + 1] > first) target[first + 1] = ids.get(tags[w]) as number;
  }
  return { example: { ids: tokens, target }, cut: split.ids.length > room };
}
