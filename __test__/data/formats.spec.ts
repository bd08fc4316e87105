import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { type Corpus, corpusFiles, MAX_PARAGRAPH_CHARS, readCorpus } from '../../src/data/index.js';

/** Every paragraph of `corpus`, in its (shuffled) order. */
const paragraphs = (corpus: Corpus) => Array.from({ length: corpus.numParagraphs }, (_, p) => corpus.paragraph(p));
/** The same, sorted, to compare regardless of the shuffle. */
const sorted = (ps: string[][][]) => ps.map((p) => JSON.stringify(p)).sort();
/** The sorted paragraphs of `source` read with `options`. */
const read = async (source: string, options: Parameters<typeof readCorpus>[1] = {}) =>
  sorted(paragraphs(await readCorpus(source, options)));

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbert-formats-'));
  dirs.push(dir);
  return dir;
}
/** Writes `text` to `name` in a new temporary folder; its path. */
async function tempFile(name: string, text: string): Promise<string> {
  const path = join(await tempDir(), name);
  await writeFile(path, text);
  return path;
}

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe("the 'lines' format (a sentence a line, a blank line between documents)", () => {
  const text = [
    'The Cat sat.',
    'It purred LOUDLY.',
    '',
    '',
    '',
    'Lonely Sentence here.',
    '',
    'First of three.',
    '  Second   one ',
    'Third.\t',
    '',
    ' \t ',
    'ÉCOLE Four a.',
    'Doc four B.', // no final newline
  ].join('\n');

  it('makes a paragraph of each document of two or more sentences, lowercased by default', async () => {
    const path = await tempFile('corpus.txt', text);
    const corpus = await readCorpus(path, { format: 'lines' });
    expect(sorted(paragraphs(corpus))).toEqual(
      sorted([
        [
          ['the', 'cat', 'sat.'],
          ['it', 'purred', 'loudly.'],
        ],
        [['first', 'of', 'three.'], ['second', 'one'], ['third.']],
        [
          ['école', 'four', 'a.'],
          ['doc', 'four', 'b.'],
        ],
      ]),
    );
    expect([corpus.numParagraphs, corpus.numSentences, corpus.tokens.length]).toEqual([3, 7, 18]);
    expect(corpus.wordCounts().get('four')).toBe(2);
    expect(corpus.wordCounts().has('lonely')).toBe(false);
  });

  it('keeps the case with lowercase: false', async () => {
    const path = await tempFile('corpus.txt', text);
    expect(await read(path, { format: 'lines', lowercase: false })).toEqual(
      sorted([
        [
          ['The', 'Cat', 'sat.'],
          ['It', 'purred', 'LOUDLY.'],
        ],
        [['First', 'of', 'three.'], ['Second', 'one'], ['Third.']],
        [
          ['ÉCOLE', 'Four', 'a.'],
          ['Doc', 'four', 'B.'],
        ],
      ]),
    );
  });

  it('skips a last document of one sentence, and a file read as WikiText has none of these paragraphs', async () => {
    const path = await tempFile('corpus.txt', 'a b\nc d\n\n\ne f');
    expect(await read(path, { format: 'lines' })).toEqual(
      sorted([
        [
          ['a', 'b'],
          ['c', 'd'],
        ],
      ]),
    );
    // auto: a .txt file is WikiText, where no line holds ' . '
    await expect(readCorpus(path)).rejects.toThrow(/no paragraph of at least two sentences/);
  });

  it('cuts a document longer than MAX_PARAGRAPH_CHARS into two paragraphs', async () => {
    const sentence = (w: string) => Array(200_000).fill(w).join(' '); // 399 999 characters
    const path = await tempFile('long.txt', ['a', 'b', 'c', 'd'].map(sentence).join('\n'));
    const corpus = await readCorpus(path, { format: 'lines' });
    // a + b = 800 000 characters; + c would pass 2^20: a new paragraph starts at c
    expect(
      paragraphs(corpus)
        .map((p) => p.map((s) => `${s[0]}×${s.length}`).join(' '))
        .sort(),
    ).toEqual(['a×200000 b×200000', 'c×200000 d×200000']);
  });
});

describe("the 'jsonl' format (a document a line)", () => {
  it('reads a file that starts with a UTF-8 byte-order mark as the same file without it', async () => {
    const records = [JSON.stringify({ text: 'A crane flew. It landed.' }), JSON.stringify({ text: 'Two. Three.' })];
    const plain = await tempFile('plain.jsonl', `${records.join('\n')}\n`);
    const marked = await tempFile('marked.jsonl', `\uFEFF${records.join('\n')}\n`);
    expect(await read(marked)).toEqual(await read(plain));
  });

  it('splits the text field into sentences at line breaks and after . ! ?; skips blank lines and one-sentence records', async () => {
    const records = [
      JSON.stringify({ id: 1, text: 'Hello World. It is sunny!  Really?\tyes\nNew line here' }),
      JSON.stringify({ text: 'Only one sentence.' }),
      '',
      '   ',
      JSON.stringify({ text: 'A.B. c.D e. F' }),
      JSON.stringify({ text: 'Line one\r\n\r\nline two', other: 'Ignored. Field.' }),
    ];
    const path = await tempFile('docs.jsonl', `${records.join('\n')}\n`);
    expect(await read(path)).toEqual(
      sorted([
        [['hello', 'world.'], ['it', 'is', 'sunny!'], ['really?'], ['yes'], ['new', 'line', 'here']],
        [['a.b.'], ['c.d', 'e.'], ['f']],
        [
          ['line', 'one'],
          ['line', 'two'],
        ],
      ]),
    );
    expect(await read(path, { lowercase: false })).toContain(JSON.stringify([['A.B.'], ['c.D', 'e.'], ['F']]));
  });

  it('reads another field with textField', async () => {
    const path = await tempFile(
      'docs.ndjson',
      [JSON.stringify({ body: 'x y. z w.', text: 'Not this. Nor this.' }), JSON.stringify({ body: 'p! q' })].join('\n'),
    );
    expect(await read(path, { textField: 'body' })).toEqual(
      sorted([
        [
          ['x', 'y.'],
          ['z', 'w.'],
        ],
        [['p!'], ['q']],
      ]),
    );
    // the default field: the first record's 'text', and no 'text' in the second
    await expect(readCorpus(path)).rejects.toThrow(`data: '${path}': line 2 has no string field 'text'`);
  });

  it('names the line that is not JSON, and the line and field when the field is missing or not a string', async () => {
    const good = JSON.stringify({ text: 'a. b.' });
    const bad = await tempFile('bad.jsonl', [good, '', '{"text": "a. b."', good].join('\n'));
    await expect(readCorpus(bad)).rejects.toThrow(SyntaxError);
    await expect(readCorpus(bad)).rejects.toThrow(`data: '${bad}': line 3 is not JSON`);

    const missing = await tempFile('missing.jsonl', [good, JSON.stringify({ txt: 'a. b.' })].join('\n'));
    await expect(readCorpus(missing)).rejects.toThrow(TypeError);
    await expect(readCorpus(missing)).rejects.toThrow(`data: '${missing}': line 2 has no string field 'text'`);
    await expect(readCorpus(missing, { textField: 'txt' })).rejects.toThrow(
      `data: '${missing}': line 1 has no string field 'txt'`,
    );

    for (const [k, record] of ['{"text": 5}', 'null', '["a. b."]', '"a. b."'].entries()) {
      const path = await tempFile(`odd${k}.jsonl`, `${good}\n${record}\n`);
      await expect(readCorpus(path)).rejects.toThrow(`data: '${path}': line 2 has no string field 'text'`);
    }
  });
});

describe("'auto' format: folders and glob patterns", () => {
  async function folder(): Promise<string> {
    const dir = await tempDir();
    await mkdir(join(dir, 'sub'));
    await mkdir(join(dir, '.git'));
    await writeFile(join(dir, 'a.jsonl'), `${JSON.stringify({ text: 'From A. Json one.' })}\n`);
    await writeFile(join(dir, 'b.txt'), ' = Heading = \nWiki B . Text two .\n');
    await writeFile(join(dir, 'sub', 'c.ndjson'), JSON.stringify({ text: 'Nested C! Deeper.' }));
    await writeFile(join(dir, '.hidden.jsonl'), JSON.stringify({ text: 'Hidden. File.' }));
    await writeFile(join(dir, '.git', 'd.txt'), 'Hidden . Folder .\n');
    return dir;
  }
  const a = [
    ['from', 'a.'],
    ['json', 'one.'],
  ];
  const b = [
    ['wiki', 'b'],
    ['text', 'two', '.'],
  ];
  const c = [['nested', 'c!'], ['deeper.']];

  it('reads every non-hidden file of a folder, sorted, each in the format of its extension', async () => {
    const dir = await folder();
    expect((await corpusFiles(dir)).map((f) => [f.path.slice(dir.length + 1), f.format])).toEqual([
      ['a.jsonl', 'jsonl'],
      ['b.txt', 'wikitext'],
      ['sub/c.ndjson', 'jsonl'],
    ]);
    expect((await corpusFiles(dir, 'lines')).map((f) => f.format)).toEqual(['lines', 'lines', 'lines']);
    const progress: [number, number][] = [];
    const corpus = await readCorpus(dir, { onProgress: (done, total) => progress.push([done, total]) });
    expect(sorted(paragraphs(corpus))).toEqual(sorted([a, b, c]));
    const sizes = await Promise.all(
      ['a.jsonl', 'b.txt', 'sub/c.ndjson'].map(async (f) => (await stat(join(dir, f))).size),
    );
    const total = sizes.reduce((x, y) => x + y);
    expect(progress).toEqual([
      [sizes[0], total],
      [sizes[0] + sizes[1], total],
      [total, total],
    ]);
  });

  it("reads only a folder's wiki.train.tokens when it holds one", async () => {
    const dir = await folder();
    await writeFile(join(dir, 'wiki.train.tokens'), 'Train A . Train B .\n');
    expect(await read(dir)).toEqual(
      sorted([
        [
          ['train', 'a'],
          ['train', 'b', '.'],
        ],
      ]),
    );
  });

  it('reads the files a glob pattern matches, not hidden ones', async () => {
    const dir = await folder();
    expect(await read(join(dir, '*.jsonl'))).toEqual(sorted([a]));
    expect(await read(join(dir, '**/*.{jsonl,ndjson}'))).toEqual(sorted([a, c]));
    expect(await read(join(dir, '**/*.txt'))).toEqual(sorted([b]));
  });
});

describe('ends of line', () => {
  it('reads \\n, \\r\\n and \\r alike, in every format', async () => {
    const lines = ['a b', 'c d', 'e f', '', 'g h', 'i j', '', '', 'k l', 'm n'];
    const unix = await read(await tempFile('u.txt', lines.join('\n')), { format: 'lines' });
    expect(unix).toEqual(
      sorted([
        [
          ['a', 'b'],
          ['c', 'd'],
          ['e', 'f'],
        ],
        [
          ['g', 'h'],
          ['i', 'j'],
        ],
        [
          ['k', 'l'],
          ['m', 'n'],
        ],
      ]),
    );
    const mixed = 'a b\r\nc d\re f\n\r\ng h\ri j\r\r\nk l\r\nm n\r';
    expect(await read(await tempFile('m.txt', mixed), { format: 'lines' })).toEqual(unix);
    const windows = `${lines.join('\r\n')}\r\n`;
    expect(await read(await tempFile('w.txt', windows), { format: 'lines' })).toEqual(unix);
    const mac = `${lines.join('\r')}\r`;
    expect(await read(await tempFile('r.txt', mac), { format: 'lines' })).toEqual(unix);

    const wiki = await read(await tempFile('w.tokens', 'a . b\nc . d\r\ne . f\rg . h\r'));
    expect(wiki).toEqual(
      sorted([
        [['a'], ['b']],
        [['c'], ['d']],
        [['e'], ['f']],
        [['g'], ['h']],
      ]),
    );
    const records = ['{"text":"a. b"}', '{"text":"c. d"}', '{"text":"e. f"}'];
    const json = await read(await tempFile('j.jsonl', `${records[0]}\r\n${records[1]}\r${records[2]}`));
    expect(json).toEqual(
      sorted([
        [['a.'], ['b']],
        [['c.'], ['d']],
        [['e.'], ['f']],
      ]),
    );
  });

  /** A BERT-layout file whose bytes 2^20 − 1 and 2^20 (the edge of the first chunk read) are `edge`. */
  function straddling(edge: string): string {
    const head = `${'z'.repeat(1_000_000)}\n\nhead one\nhead two\n\n`;
    const left = `left ${'x'.repeat((1 << 20) - 1 - head.length - 5)}`;
    const text = `${head}${left}${edge}right side\n\nend one\nend two\n`;
    expect(text.indexOf(edge)).toBe((1 << 20) - 1);
    expect(Buffer.byteLength(text)).toBe(text.length);
    return text;
  }
  const ends = [
    [
      ['head', 'one'],
      ['head', 'two'],
    ],
    [
      ['end', 'one'],
      ['end', 'two'],
    ],
  ];

  it('reads a \\r\\n split across two chunks as one end of line', async () => {
    const corpus = await readCorpus(await tempFile('edge.txt', straddling('\r\n')), { format: 'lines' });
    const ps = paragraphs(corpus);
    expect(ps.map((p) => p.map((s) => s[0]).join(' ')).sort()).toEqual(['end end', 'head head', 'left right']);
    const left = ps.find((p) => p[0][0] === 'left') as string[][];
    expect(left[1]).toEqual(['right', 'side']);
    expect(left[0][1]).toMatch(/^x+$/);
  });

  it('reads a \\r\\r split across two chunks as two ends of line (a blank line between documents)', async () => {
    // 'left …' and 'right side' are then documents of one sentence each: skipped
    expect(await read(await tempFile('edge.txt', straddling('\r\r')), { format: 'lines' })).toEqual(sorted(ends));
  });
});

describe('lines longer than MAX_PARAGRAPH_CHARS', () => {
  it('reads a line of exactly MAX_PARAGRAPH_CHARS characters', async () => {
    const line = `a . ${'b'.repeat(MAX_PARAGRAPH_CHARS - 4)}`;
    const corpus = await readCorpus(await tempFile('max.tokens', `x . y\n${line}\n`));
    expect(corpus.numParagraphs).toBe(2);
    expect(corpus.wordCounts().get('b'.repeat(MAX_PARAGRAPH_CHARS - 4))).toBe(1);
  });

  it('refuses a longer line with a RangeError naming the file and the line, in every format', async () => {
    const wiki = await tempFile('long.tokens', `a . b\n${'y'.repeat(MAX_PARAGRAPH_CHARS + 1)}\nc . d\n`);
    await expect(readCorpus(wiki)).rejects.toThrow(RangeError);
    await expect(readCorpus(wiki)).rejects.toThrow(`data: '${wiki}': line 2 is ${MAX_PARAGRAPH_CHARS + 1} characters`);

    const lines = await tempFile('long.txt', `a b\nc d\n\n${'y '.repeat(MAX_PARAGRAPH_CHARS)}\n`);
    await expect(readCorpus(lines, { format: 'lines' })).rejects.toThrow(RangeError);
    await expect(readCorpus(lines, { format: 'lines' })).rejects.toThrow(`data: '${lines}': line 4 is`);

    // far longer than a chunk: refused while it is read, before the line ends
    const json = await tempFile('long.jsonl', `{"text":"a. b"}\r\n{"text":"${'y'.repeat(3 << 20)}"}\n`);
    await expect(readCorpus(json)).rejects.toThrow(RangeError);
    await expect(readCorpus(json)).rejects.toThrow(`data: '${json}': line 2 is over ${MAX_PARAGRAPH_CHARS} characters`);
  });
});
