/**
 * The labelled tasks of `npm run bench:finetune` (bench/finetune.ts), built from WikiText-2 by
 * fixed rules — the training split's articles for training, the validation split's (other
 * articles) for held-out data — and written as files `finetune()` reads:
 *
 * - `groups` (CSV: `text,label`): which of five kinds of article a sentence comes from. An
 *   article's kind is read off its section headings (the first rule that matches: a "Track
 *   listing"-like heading is `music`, "Route description" `road`, "Taxonomy" `species`, "Plot"
 *   or "Gameplay" `fiction`, "Early life" `person`); the headings are never part of the text.
 * - `order` (JSON Lines: `text`, `text_pair`, `label`): a sentence pair, label 1 when the two are
 *   consecutive sentences of a paragraph in their order, 0 when they are swapped (half of the
 *   0s) or the second comes from another article (the other half).
 * - `tags` (JSON Lines: `tokens`, `tags`): a sentence's words tagged by rule — `B-NUM`/`I-NUM`
 *   over a number (WikiText's `1 @,@ 000` and `3 @.@ 5` are one), `B-CAP`/`I-CAP` over a run of
 *   capitalised words other than the sentence's first word (the first with a letter or digit),
 *   `O` elsewhere.
 *
 * Sentences are WikiText's, split after ` . `, of 8 to 50 words. Every draw is seeded.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

import { type Rng, shuffle } from '../src/data/random.js';

/** Headings that make an article one kind, tried in this order (the first kind that has one wins). */
const GROUP_RULES: readonly (readonly [string, readonly string[]])[] = [
  ['music', ['Track listing', 'Charts', 'Music video', 'Chart performance', 'Credits and personnel', 'Personnel']],
  ['road', ['Route description', 'Major intersections', 'Exit list']],
  ['species', ['Taxonomy', 'Distribution and habitat', 'Ecology', 'Habitat', 'Behaviour', 'Diet']],
  ['fiction', ['Plot', 'Synopsis', 'Plot summary', 'Gameplay', 'Cast']],
  ['person', ['Early life', 'Personal life', 'Biography', 'Later life', 'Early years']],
];

/** Words a sentence of a task has at least and at most. */
const WORDS = [8, 50] as const;

/** How many rows each task gets. */
export interface TaskSizes {
  /** Training sentences of each `groups` class. */
  groupsPerClass: number;
  /** Held-out sentences of each `groups` class, at most. */
  groupsHeldPerClass: number;
  /** Training rows of `order` and `tags`. */
  rows: number;
  /** Held-out rows of `order` and `tags`. */
  heldRows: number;
}

/** One task's files and what they hold. */
export interface TaskFiles {
  /** The training file. */
  train: string;
  /** The held-out file. */
  valid: string;
  /** Rows of each file. */
  rows: { train: number; valid: number };
  /** Rows of each label (sequence tasks) or tags of each name (token task), in each file. */
  labels: { train: Record<string, number>; valid: Record<string, number> };
}

/** The three tasks. */
export interface Tasks {
  groups: TaskFiles;
  order: TaskFiles;
  tags: TaskFiles;
}

/** An article of WikiText: its title, its level-2 headings and its paragraphs' sentences. */
interface Article {
  title: string;
  headings: Set<string>;
  paragraphs: string[][];
}

/** A seeded {@link Rng} (xoroshiro128+, as the library's streams). */
function seeded(seed: number): Rng {
  const of = (g: ReturnType<typeof xoroshiro128plus>): Rng => ({
    next: () => uniformFloat64(g),
    below: (n) => uniformInt(g, 0, n - 1),
    clone: () => of(g.clone()),
  });
  return of(xoroshiro128plus(seed));
}

/** The sentences of a WikiText paragraph line: split after each ` . `, kept when of 8–50 words. */
function sentencesOf(line: string): string[] {
  return line
    .trim()
    .split(/(?<= \.) /)
    .map((s) => s.trim())
    .filter((s) => {
      const n = s.split(' ').length;
      return n >= WORDS[0] && n <= WORDS[1];
    });
}

/** The articles of a WikiText file (` = Title = ` starts one, ` = = Heading = = ` a section). */
function readArticles(path: string): Article[] {
  const articles: Article[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const title = /^ = ([^=].*) = $/.exec(line);
    const heading = /^ = = ([^=].*) = = $/.exec(line);
    if (title) articles.push({ title: title[1], headings: new Set(), paragraphs: [] });
    else if (heading) articles.at(-1)?.headings.add(heading[1]);
    else if (line.trim() !== '' && !line.startsWith(' = ')) {
      const sentences = sentencesOf(line);
      if (sentences.length > 0) articles.at(-1)?.paragraphs.push(sentences);
    }
  }
  return articles;
}

/** The kind of `article` by {@link GROUP_RULES}, or undefined. */
const groupOf = (article: Article) =>
  GROUP_RULES.find(([, headings]) => headings.some((h) => article.headings.has(h)))?.[0];

/** `n` of `items` drawn without replacement (all of them when there are fewer). */
const draw = <T>(items: T[], n: number, rng: Rng): T[] => shuffle([...items], rng).slice(0, n);

/** How often each value of `values` occurs, by value. */
function tally(values: Iterable<string>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** A CSV field, quoted (RFC 4180). */
const csvField = (s: string) => `"${s.replaceAll('"', '""')}"`;

/** `groups` rows of `articles`: up to `perClass` sentences of each kind, shuffled. */
function groupRows(articles: Article[], perClass: number, rng: Rng): { text: string; label: string }[] {
  const rows = GROUP_RULES.flatMap(([group]) => {
    const sentences = articles.filter((a) => groupOf(a) === group).flatMap((a) => a.paragraphs.flat());
    return draw(sentences, perClass, rng).map((text) => ({ text, label: group }));
  });
  return shuffle(rows, rng);
}

/** `order` rows of `articles`: `n` pairs, half in order (1), a quarter swapped and a quarter with a stranger second (0). */
function orderRows(articles: Article[], n: number, rng: Rng): { text: string; text_pair: string; label: number }[] {
  const pairs = articles.flatMap((a, article) =>
    a.paragraphs.flatMap((p) => p.slice(1).map((second, i) => ({ first: p[i], second, article }))),
  );
  const sentences = articles.flatMap((a, article) => a.paragraphs.flat().map((text) => ({ text, article })));
  const rows = draw(pairs, n, rng).map(({ first, second, article }, i) => {
    if (i % 4 < 2) return { text: first, text_pair: second, label: 1 };
    if (i % 4 === 2) return { text: second, text_pair: first, label: 0 };
    let other = sentences[rng.below(sentences.length)];
    while (other.article === article) other = sentences[rng.below(sentences.length)];
    return { text: first, text_pair: other.text, label: 0 };
  });
  return shuffle(rows, rng);
}

/** The tags of a sentence's words by the `tags` rule (see the module's doc). */
export function tagWords(words: readonly string[]): string[] {
  const tags = words.map(() => 'O');
  const number = (w: string) => /^\d[\d,.]*$/.test(w);
  const capital = (w: string) => /^[A-Z]/.test(w);
  const first = words.findIndex((w) => /[A-Za-z0-9]/.test(w));
  for (let i = 0; i < words.length; i++) {
    if (number(words[i])) {
      tags[i] = 'B-NUM';
      while (i + 2 < words.length && /^@[.,]@$/.test(words[i + 1]) && number(words[i + 2])) {
        tags[i + 1] = tags[i + 2] = 'I-NUM';
        i += 2;
      }
    } else if (i > first && capital(words[i])) {
      tags[i] = tags[i - 1].endsWith('CAP') ? 'I-CAP' : 'B-CAP';
    }
  }
  return tags;
}

/** `tags` rows of `articles`: `n` sentences with their words' tags. */
function tagRows(articles: Article[], n: number, rng: Rng): { tokens: string[]; tags: string[] }[] {
  const sentences = articles.flatMap((a) => a.paragraphs.flat());
  return draw(sentences, n, rng).map((s) => {
    const tokens = s.split(' ');
    return { tokens, tags: tagWords(tokens) };
  });
}

/**
 * Writes the three tasks under `dir` from WikiText-2's `train` and `valid` files (sizes from
 * `sizes`, draws from `seed`) and says what each holds.
 */
export function writeTasks(
  dir: string,
  files: { train: string; valid: string },
  sizes: TaskSizes,
  seed: number,
): Tasks {
  const splits = { train: readArticles(files.train), valid: readArticles(files.valid) };
  const rng = seeded(seed);
  const path = (name: string) => join(dir, name);
  const groups = {
    train: groupRows(splits.train, sizes.groupsPerClass, rng),
    valid: groupRows(splits.valid, sizes.groupsHeldPerClass, rng),
  };
  const order = {
    train: orderRows(splits.train, sizes.rows, rng),
    valid: orderRows(splits.valid, sizes.heldRows, rng),
  };
  const tags = { train: tagRows(splits.train, sizes.rows, rng), valid: tagRows(splits.valid, sizes.heldRows, rng) };
  const jsonl = (rows: unknown[]) => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;
  for (const split of ['train', 'valid'] as const) {
    const csv = groups[split].map((r) => `${csvField(r.text)},${r.label}`);
    writeFileSync(path(`groups-${split}.csv`), `text,label\n${csv.join('\n')}\n`);
    writeFileSync(path(`order-${split}.jsonl`), jsonl(order[split]));
    writeFileSync(path(`tags-${split}.jsonl`), jsonl(tags[split]));
  }
  const described = (
    name: string,
    ext: string,
    labels: (split: 'train' | 'valid') => string[],
    rows: { train: unknown[]; valid: unknown[] },
  ): TaskFiles => ({
    train: path(`${name}-train.${ext}`),
    valid: path(`${name}-valid.${ext}`),
    rows: { train: rows.train.length, valid: rows.valid.length },
    labels: { train: tally(labels('train')), valid: tally(labels('valid')) },
  });
  return {
    groups: described('groups', 'csv', (s) => groups[s].map((r) => r.label), groups),
    order: described('order', 'jsonl', (s) => order[s].map((r) => String(r.label)), order),
    tags: described('tags', 'jsonl', (s) => tags[s].flatMap((r) => r.tags), tags),
  };
}
