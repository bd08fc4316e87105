/**
 * Corpus formats: how lines of text become paragraphs of sentences of words. WikiText (the
 * textbook's: a paragraph a line, sentences split on `' . '`), the original BERT layout (a
 * sentence a line, a blank line between documents) and JSON Lines (a document a line, its text
 * in one field, split into sentences at line breaks and after `.`, `!` or `?`).
 *
 * @module
 */

/** How a corpus file is laid out; `'auto'` picks by extension (`.jsonl`/`.ndjson`: JSON Lines, else WikiText). */
export type CorpusFormat = 'wikitext' | 'lines' | 'jsonl';

/** Sentences of words. */
export type Paragraph = string[][];

/** How lines are read. */
export interface FormatOptions {
  /** Lowercase the text (the textbook vocabulary's reading; a tokenizer normalises text itself). */
  lowercase: boolean;
  /** JSON Lines: the field holding a document's text; default `'text'`. */
  textField?: string;
}

/**
 * Whitespace as Python's `str.split()` and `str.strip()` see it (the textbook splits words
 * with them): unlike JavaScript's `\s`, it includes U+001C–U+001F and U+0085 and excludes
 * U+FEFF, which WikiText-2 holds as a word.
 */
const WHITESPACE = '\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000';
const RUNS = new RegExp(`[${WHITESPACE}]+`);
const EDGES = new RegExp(`^[${WHITESPACE}]+|[${WHITESPACE}]+$`, 'g');
/** What separates WikiText sentences. */
const SENTENCE_BREAK = ' . ';
/** Where a JSON Lines text is split into sentences: line breaks, and spaces after `.`, `!` or `?`. */
const SENTENCE_END = /[\r\n]+|(?<=[.!?])[ \t]+/;

/**
 * The longest line read, in characters: 270 times WikiText-2's longest paragraph (3847). A
 * longer line is not a paragraph, sentence or document of any of the formats, and splitting it
 * into words would take about 100 times its size in memory. A BERT-layout document grows to
 * at most this many characters before it is cut into two paragraphs.
 */
export const MAX_PARAGRAPH_CHARS = 1 << 20;

/** The words of `sentence`, split on runs of (Python's) whitespace. */
function words(sentence: string): string[] {
  return sentence.split(RUNS).filter((w) => w !== '');
}

/** Turns lines into paragraphs, one line at a time. */
export interface ParagraphReader {
  /** The paragraph line `line` (numbered from 1) completes, if any. */
  line(text: string, line: number): Paragraph | undefined;
  /** The paragraph the last lines leave open, if any. */
  end(): Paragraph | undefined;
}

function tooLong(origin: string, line: number, length: number, what: string): RangeError {
  return new RangeError(
    `data: ${origin}: line ${line} is ${length} characters long, over the ${MAX_PARAGRAPH_CHARS} a line may have (${what})`,
  );
}

/**
 * WikiText, as the textbook's `_read_wiki` reads it: a line holding `' . '` is a paragraph,
 * trimmed, split into sentences on `' . '` (the last keeps its final `.` as a word) and into
 * words; other lines (headings, blank lines, one-sentence lines) are skipped.
 */
function wikiText(origin: string, { lowercase }: FormatOptions): ParagraphReader {
  return {
    line(text, line) {
      if (text.length > MAX_PARAGRAPH_CHARS)
        throw tooLong(origin, line, text.length, 'WikiText has a paragraph a line');
      if (!text.includes(SENTENCE_BREAK)) return undefined;
      const trimmed = text.replace(EDGES, '');
      return (lowercase ? trimmed.toLowerCase() : trimmed).split(SENTENCE_BREAK).map(words);
    },
    end: () => undefined,
  };
}

/**
 * The original BERT layout: a sentence a line, a blank line between documents; a document of
 * at least two sentences is a paragraph (one past {@link MAX_PARAGRAPH_CHARS} is cut in two).
 */
function sentenceLines(origin: string, { lowercase }: FormatOptions): ParagraphReader {
  let sentences: Paragraph = [];
  let chars = 0;
  const flush = () => {
    const done = sentences.length >= 2 ? sentences : undefined;
    sentences = [];
    chars = 0;
    return done;
  };
  return {
    line(text, line) {
      if (text.length > MAX_PARAGRAPH_CHARS)
        throw tooLong(origin, line, text.length, 'the layout has a sentence a line');
      const sentence = words(lowercase ? text.toLowerCase() : text);
      if (sentence.length === 0) return flush();
      const full = chars + text.length > MAX_PARAGRAPH_CHARS ? flush() : undefined;
      sentences.push(sentence);
      chars += text.length;
      return full;
    },
    end: flush,
  };
}

/** JSON Lines: each line an object whose `textField` is a document (a paragraph of its sentences). */
function jsonLines(origin: string, { lowercase, textField = 'text' }: FormatOptions): ParagraphReader {
  return {
    line(text, line) {
      if (text.length > MAX_PARAGRAPH_CHARS)
        throw tooLong(origin, line, text.length, 'JSON Lines has a document a line');
      if (text.trim() === '') return undefined;
      let record: unknown;
      try {
        record = JSON.parse(text);
      } catch (cause) {
        throw new SyntaxError(`data: ${origin}: line ${line} is not JSON (${(cause as Error).message})`, { cause });
      }
      const value = (record as Record<string, unknown> | null)?.[textField];
      if (typeof value !== 'string') {
        throw new TypeError(`data: ${origin}: line ${line} has no string field '${textField}' (--text-field)`);
      }
      const sentences = (lowercase ? value.toLowerCase() : value)
        .split(SENTENCE_END)
        .map(words)
        .filter((s) => s.length > 0);
      return sentences.length >= 2 ? sentences : undefined;
    },
    end: () => undefined,
  };
}

/** A reader of `format`; `origin` names the file in messages. */
export function paragraphReader(format: CorpusFormat, origin: string, options: FormatOptions): ParagraphReader {
  switch (format) {
    case 'wikitext':
      return wikiText(origin, options);
    case 'lines':
      return sentenceLines(origin, options);
    case 'jsonl':
      return jsonLines(origin, options);
    default:
      throw new RangeError(`format: expected 'wikitext', 'lines', 'jsonl' or 'auto', got ${String(format)}`);
  }
}

/** The format of `path` by its extension: JSON Lines for `.jsonl` and `.ndjson`, else WikiText. */
export function formatOf(path: string): CorpusFormat {
  return /\.(jsonl|ndjson)$/i.test(path) ? 'jsonl' : 'wikitext';
}
