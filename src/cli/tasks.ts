/**
 * `tsbert classify`, `tsbert tag` and `tsbert rerank`: a task model's predictions for texts
 * given as arguments or as JSON Lines on standard input (a JSON string a line, or an object
 * with `text` — and `text_pair` for a pair), written as JSON Lines in the inputs' order.
 *
 * @internal
 * @module
 */
import { once } from 'node:events';

import { type Command, InvalidArgumentError } from 'commander';
import type { ModelDtype } from '../model.js';
import { type ClassifyInput, classify, rerank } from '../tasks/classify.js';
import { AGGREGATIONS, type Aggregation, tagTokens } from '../tasks/tag-tokens.js';
import { integerFrom } from '../training/options.js';
import { DTYPE_HELP, flagParser, modelToInfer, parseDtype } from './flags.js';
import { lineChunks } from './input.js';

/** Inputs read and answered at a time from standard input. */
const CHUNK = 256;

/** Writes `values` as JSON Lines, waiting when standard output is full. */
async function writeLines(values: readonly unknown[]): Promise<void> {
  if (values.length === 0) return;
  if (!process.stdout.write(`${values.map((v) => JSON.stringify(v)).join('\n')}\n`)) {
    await once(process.stdout, 'drain');
  }
}

/** One input line: a JSON string, or an object with `text` (and `text_pair`); an `Error` naming the line otherwise. */
function parseInput(line: string, number: number, pairs: boolean): ClassifyInput {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new Error(`standard input, line ${number}: not JSON (a JSON string, or {"text": …}) — ${line.slice(0, 60)}`);
  }
  if (typeof value === 'string') return value;
  const { text, text_pair: pair } = (value ?? {}) as { text?: unknown; text_pair?: unknown };
  if (typeof text !== 'string') throw new Error(`standard input, line ${number}: no "text" string`);
  if (pairs && pair !== undefined) {
    if (typeof pair !== 'string') throw new Error(`standard input, line ${number}: "text_pair" is not a string`);
    return [text, pair];
  }
  return text;
}

/** The inputs, `CHUNK` at a time: the arguments, or the JSON Lines of standard input when there are none (or `-`). */
async function* inputs(args: readonly string[], pairs: boolean): AsyncGenerator<ClassifyInput[]> {
  if (args.length > 0 && !(args.length === 1 && args[0] === '-')) {
    yield [...args];
    return;
  }
  let number = 0;
  for await (const lines of lineChunks('-', CHUNK)) {
    const chunk: ClassifyInput[] = [];
    for (const line of lines) {
      number++;
      if (line.trim() === '') continue;
      try {
        chunk.push(parseInput(line, number, pairs));
      } catch (error) {
        if (chunk.length > 0) yield chunk; // the lines before a bad one are answered first
        throw error;
      }
    }
    yield chunk;
  }
}

/** `--top-k`: a positive integer, or `all` (as `Infinity`: commander keeps no `null`). */
function parseTopK(text: string): number {
  if (text === 'all') return Number.POSITIVE_INFINITY;
  return flagParser('--top-k', integerFrom(1))(text);
}

/** `--aggregation`: one of the strategies. */
function parseAggregation(text: string): Aggregation {
  if (!AGGREGATIONS.includes(text as Aggregation)) {
    throw new InvalidArgumentError(`--aggregation must be one of ${AGGREGATIONS.join(', ')}.`);
  }
  return text as Aggregation;
}

const MODEL_HELP = "a model folder (tsbert's or Hugging Face's) or a Hub id (required)";

/** Adds `classify`, `tag` and `rerank` to `cli`. */
export function addTaskCommands(cli: Command): void {
  cli
    .command('classify')
    .description('the labels of texts (or pairs) by a sequence-classification model, a JSON array a line')
    .argument('[texts...]', 'the texts (none, or -: JSON Lines on standard input: "…" or {"text", "text_pair"})')
    .requiredOption('--model <dir|id>', MODEL_HELP)
    .option('--pair <text>', 'the second text of a pair, for each text given as an argument')
    .option('--top-k <n>', "labels an input, best first ('all' for every label)", parseTopK, 1)
    .option('--function <kind>', "'softmax', 'sigmoid' or 'none' (default: as transformers chooses for the head)")
    .option('--batch-size <n>', 'inputs a native pass', flagParser('--batch-size', integerFrom(1)), 32)
    .option('--dtype <dtype>', DTYPE_HELP, parseDtype, 'f32')
    .action(
      async (
        texts: string[],
        flags: { model: string; pair?: string; topK: number; function?: string; batchSize: number; dtype: ModelDtype },
      ) => {
        const model = await modelToInfer(flags.model, flags.dtype);
        for await (const chunk of inputs(texts, true)) {
          const withPairs =
            flags.pair === undefined ? chunk : chunk.map((t) => [t as string, flags.pair as string] as const);
          await writeLines(
            await classify(model, withPairs, {
              topK: Number.isFinite(flags.topK) ? flags.topK : null,
              functionToApply: flags.function as 'softmax' | undefined,
              batchSize: flags.batchSize,
            }),
          );
        }
      },
    );
  cli
    .command('tag')
    .alias('ner')
    .description(
      'the entities of texts by a token-classification model (NER), a JSON array a line: { entity, score, word, start, end }',
    )
    .argument('[texts...]', 'the texts (none, or -: JSON Lines on standard input)')
    .requiredOption('--model <dir|id>', MODEL_HELP)
    .option(
      '--aggregation <kind>',
      `how tokens group into entities: ${AGGREGATIONS.join(', ')}`,
      parseAggregation,
      'simple',
    )
    .option('--batch-size <n>', 'texts a native pass', flagParser('--batch-size', integerFrom(1)), 32)
    .option('--dtype <dtype>', DTYPE_HELP, parseDtype, 'f32')
    .action(
      async (
        texts: string[],
        flags: { model: string; aggregation: Aggregation; batchSize: number; dtype: ModelDtype },
      ) => {
        const model = await modelToInfer(flags.model, flags.dtype);
        for await (const chunk of inputs(texts, false)) {
          await writeLines(await tagTokens(model, chunk as string[], flags));
        }
      },
    );
  cli
    .command('rerank')
    .description(
      "documents ordered by a cross-encoder's relevance to a query: { index, score, document } a line, best first",
    )
    .argument('[documents...]', 'the documents (none, or -: JSON Lines on standard input)')
    .requiredOption('--model <dir|id>', MODEL_HELP)
    .requiredOption('--query <text>', 'the query (required)')
    .option('--top-k <n>', 'documents written (default: all)', flagParser('--top-k', integerFrom(1)))
    .option('--batch-size <n>', 'pairs a native pass', flagParser('--batch-size', integerFrom(1)), 32)
    .option('--dtype <dtype>', DTYPE_HELP, parseDtype, 'f32')
    .action(
      async (
        documents: string[],
        flags: { model: string; query: string; topK?: number; batchSize: number; dtype: ModelDtype },
      ) => {
        const model = await modelToInfer(flags.model, flags.dtype);
        const all: string[] = [];
        for await (const chunk of inputs(documents, false)) all.push(...(chunk as string[]));
        await writeLines(
          await rerank(model, flags.query, all, {
            topK: flags.topK ?? Math.max(1, all.length),
            batchSize: flags.batchSize,
          }),
        );
      },
    );
}
