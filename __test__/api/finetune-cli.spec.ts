/**
 * `tsbert finetune`, `evaluate` on a task model, `classify`, `tag` (`ner`) and `rerank`, run
 * as processes from the sources as the other CLI tests run them: a tiny pretrained BERT (Hugging
 * Face's fixture) fine-tuned on small learnable data the test writes.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { rngFor, Stream } from '../../src/data/random.js';
import { BertModel } from '../../src/index.js';
import { spawnTsbert, tsbert } from './cli-process.js';

const FIXTURES = join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures');
const MODEL = join(FIXTURES, 'hf/model');
const CLI = join(import.meta.dirname, '../../src/cli.ts');

const FILLER = ['the', 'river', 'crane', 'house', 'big', 'old', 'question', 'early', 'japan', 'careful'];

/** `n` rows of filler words with "yes" (label pos) or "no" (label neg), alternately, as CSV. */
function yesNoCsv(n: number, seed: number): string {
  const rng = rngFor(seed, Stream.Synthetic);
  const rows = Array.from({ length: n }, (_, i) => {
    const words = Array.from({ length: 3 + rng.below(4) }, () => FILLER[rng.below(FILLER.length)]);
    words.splice(rng.below(words.length + 1), 0, i % 2 === 0 ? 'yes' : 'no');
    return `${words.join(' ')},${i % 2 === 0 ? 'pos' : 'neg'}`;
  });
  return `text,label\n${rows.join('\n')}\n`;
}

/** `n` sentences tagged B-ANI on cat and dog, O elsewhere. */
function animals(n: number, seed: number): { tokens: string[]; tags: string[] }[] {
  const rng = rngFor(seed, Stream.Synthetic);
  return Array.from({ length: n }, () => {
    const tokens = Array.from({ length: 4 + rng.below(4) }, () =>
      rng.next() < 0.3 ? ['cat', 'dog'][rng.below(2)] : FILLER[rng.below(FILLER.length)],
    );
    return { tokens, tags: tokens.map((w) => (w === 'cat' || w === 'dog' ? 'B-ANI' : 'O')) };
  });
}

/** Runs `tsbert ARGS` with `input` on standard input; resolves to { code, stdout, stderr }. */
function tsbertWithInput(
  input: string,
  ...args: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args]);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdin.end(input);
  return new Promise((done) => child.on('close', (code) => done({ code, stdout, stderr })));
}

/** The JSON values of output lines. */
const jsonLines = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as unknown);

let dir: string;
let train: string;
let valid: string;
let bad: string;
let tokenTrain: string;
let tokenValid: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbert-finetune-cli-'));
  train = join(dir, 'train.csv');
  valid = join(dir, 'valid.csv');
  bad = join(dir, 'bad.csv');
  tokenTrain = join(dir, 'train.conll');
  tokenValid = join(dir, 'valid.jsonl');
  await writeFile(train, yesNoCsv(160, 1));
  await writeFile(valid, yesNoCsv(40, 2));
  // line 4 has no label
  await writeFile(bad, yesNoCsv(40, 3).replace(/^((?:[^\n]*\n){3})([^\n,]*),\w+\n/, '$1$2,\n'));
  await writeFile(
    tokenTrain,
    `${animals(160, 4)
      .map((s) => s.tokens.map((w, i) => `${w}\t${s.tags[i]}`).join('\n'))
      .join('\n\n')}\n`,
  );
  await writeFile(
    tokenValid,
    `${animals(40, 5)
      .map((s) => JSON.stringify(s))
      .join('\n')}\n`,
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const RUN = ['--lr', '1e-3', '--batch-size', '16', '--max-len', '32', '--device', 'cpu'];

describe('tsbert finetune, evaluate and classify', () => {
  let finetuned: ReturnType<typeof tsbert> | undefined;
  const out = () => join(dir, 'classifier');
  /** The classifier, trained once for the tests that use it. */
  const classifier = () => {
    finetuned ??= tsbert(
      'finetune',
      '--model',
      MODEL,
      '--train',
      train,
      '--valid',
      valid,
      '--out',
      out(),
      ...RUN,
      '--epochs',
      '8',
    );
    return finetuned;
  };

  it('fine-tunes a classifier: labels, data, the best evaluation with its per-class table and confusion; the folder loads', async () => {
    const r = await classifier();
    expect(r.code, r.stderr).toBe(0);
    const o = out();
    expect(r.stdout).toMatch(/^labels \(single_label_classification\): neg, pos$/m);
    expect(r.stdout).toMatch(/^data: 160 training examples, 40 held out; 0 cut to --max-len; 0 bad rows skipped$/m);
    expect(r.stdout).toMatch(/^80 steps to step 80: mean loss \d\.\d{4}, \d+\.\d examples\/sec on cpu$/m);
    const step = Number(/^best by accuracy: step (\d+) \(epoch \d\.00\)$/m.exec(r.stdout)?.[1]);
    expect(step).toBeGreaterThan(0);
    expect(r.stdout).toMatch(
      /^40 examples: loss \d\.\d{4}, accuracy 1\.0000, macroF1 1\.0000, macroPrecision 1\.0000, macroRecall 1\.0000$/m,
    );
    expect(r.stdout).toContain(
      [
        '  label precision    recall        f1   support',
        '  neg     1.0000    1.0000    1.0000        20',
        '  pos     1.0000    1.0000    1.0000        20',
        '  confusion (rows: gold, columns: predicted)',
        '            neg    pos',
        '  neg        20      0',
        '  pos         0     20',
      ].join('\n'),
    );
    expect(r.stdout).toContain(
      `model (step ${step}) saved to ${o}; curves in ${join(o, 'loss.svg')}, history in ${join(o, 'history.jsonl')}\n`,
    );
    expect(r.stdout).toContain(
      `checkpoint: ${join(o, 'checkpoints', 'step-000080')} (tsbert finetune --resume ${o} --steps N goes on)\n`,
    );
    expect(r.stderr).toMatch(/^step 1\/80 \| loss \d\.\d{4} \| epoch 0\.10 \|/m);
    expect(r.stderr).toMatch(/^step 10 \| held out: loss \d\.\d{4}, accuracy /m);
    const model = await BertModel.load(o);
    expect(model.labels).toEqual(['neg', 'pos']);
    expect(model.config.task).toEqual({ kind: 'single_label_classification', numLabels: 2 });
    expect((await readdir(o)).sort()).toEqual(
      expect.arrayContaining(['checkpoints', 'config.json', 'history.jsonl', 'loss.svg']),
    );
    expect(await readdir(o)).not.toContain('best');
  });

  it('evaluates the folder on the held-out file: the metrics of the best line', async () => {
    const trained = await classifier();
    const r = await tsbert('evaluate', '--model', out(), '--data', valid);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.startsWith(`scored: ${valid} (single_label_classification, labels neg, pos)\n`)).toBe(true);
    const metricsLine = (text: string) => /^40 examples: .*$/m.exec(text)?.[0];
    expect(metricsLine(r.stdout)).toBeDefined();
    expect(metricsLine(r.stdout)).toBe(metricsLine(trained.stdout));
    expect(r.stdout).toContain('  confusion (rows: gold, columns: predicted)');
  });

  it('classifies texts given as arguments or JSON Lines, one JSON array a line; a bad line is one error naming it', async () => {
    await classifier();
    const r = await tsbert('classify', '--model', out(), 'yes the big river', 'the old house no', '--top-k', 'all');
    expect(r.code, r.stderr).toBe(0);
    const lines = jsonLines(r.stdout) as { label: string; score: number }[][];
    expect(lines).toHaveLength(2);
    for (const scores of lines) {
      expect(scores.map((s) => s.label).sort()).toEqual(['neg', 'pos']);
      expect(scores[0].score).toBeGreaterThanOrEqual(scores[1].score);
      expect(scores[0].score + scores[1].score).toBeCloseTo(1, 12);
    }
    expect(lines.map(([best]) => best.label)).toEqual(['pos', 'neg']);
    // a text's scores as the batch it is in pads it: the same up to float rounding
    const near = (got: unknown, want: { label: string; score: number }[][]) => {
      const scores = got as { label: string; score: number }[][];
      expect(scores.map((s) => s.map((x) => x.label))).toEqual(want.map((s) => s.map((x) => x.label)));
      for (const [i, s] of scores.entries()) {
        for (const [j, x] of s.entries()) expect(Math.abs(x.score - want[i][j].score)).toBeLessThan(1e-6);
      }
    };
    const top = await tsbert('classify', '--model', out(), 'yes the big river');
    near(jsonLines(top.stdout), [[lines[0][0]]]);
    const piped = await tsbertWithInput(
      '"yes the big river"\n\n{"text": "the old house no"}\n',
      'classify',
      '--model',
      out(),
      '--top-k',
      'all',
    );
    expect(piped.code, piped.stderr).toBe(0);
    near(jsonLines(piped.stdout), lines);
    const broken = await tsbertWithInput('"yes the big river"\nyes, no\n"no"\n', 'classify', '--model', out());
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(
      /^tsbert: standard input, line 2: not JSON \(a JSON string, or \{"text": …\}\) — yes, no\n$/,
    );
    // the lines before the bad one are answered
    near(jsonLines(broken.stdout), [[lines[0][0]]]);
    const noText = await tsbertWithInput('{"txt": "yes"}\n', 'classify', '--model', out());
    expect(noText.code).toBe(1);
    expect(noText.stderr).toBe('tsbert: standard input, line 1: no "text" string\n');
  });

  it('refuses to rerank with a two-label model, in one line', async () => {
    await classifier();
    const r = await tsbert('rerank', '--model', out(), '--query', 'a crane', 'the river');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'tsbert: model: rerank needs a cross-encoder (a sequence head of one label), and this model has a single_label_classification head of 2 labels\n',
    );
  });
});

describe('tsbert tag and rerank', () => {
  it('fine-tunes a token classifier on CoNLL, then tags entities (tag and its alias ner); a bad aggregation is one line', async () => {
    const out = join(dir, 'tagger');
    const trained = await tsbert(
      'finetune',
      '--model',
      MODEL,
      '--task',
      'token-classification',
      '--train',
      tokenTrain,
      '--valid',
      tokenValid,
      '--out',
      out,
      ...RUN,
      '--epochs',
      '4',
    );
    expect(trained.code, trained.stderr).toBe(0);
    expect(trained.stdout).toMatch(/^labels \(token_classification\): B-ANI, O$/m);
    expect(trained.stdout).toMatch(/^best by f1: step \d+ /m);
    expect(trained.stdout).toMatch(/^40 examples: loss \d\.\d{4}, f1 (1\.0000|0\.9\d{3}), /m);
    const texts = ['the big dog sat', 'the old house'];
    const tagged = await tsbert('tag', '--model', out, ...texts);
    expect(tagged.code, tagged.stderr).toBe(0);
    const lines = jsonLines(tagged.stdout) as { entity: string; word: string; start: number; end: number }[][];
    expect(lines).toHaveLength(2);
    expect(lines[0].map((e) => [e.entity, e.word, e.start, e.end])).toEqual([['ANI', 'dog', 8, 11]]);
    expect(lines[1]).toEqual([]);
    const ner = await tsbert('ner', '--model', out, ...texts);
    expect(ner.code, ner.stderr).toBe(0);
    expect(ner.stdout).toBe(tagged.stdout);
    const bogus = await tsbert('tag', '--model', out, '--aggregation', 'bogus', 'the dog');
    expect(bogus.code).not.toBe(0);
    expect(bogus.stderr).toMatch(/^tsbert: .*--aggregation must be one of none, simple, first, average, max\.\n$/);
  });

  it('reranks documents by a one-output model, best first, --top-k of them', async () => {
    const model = join(FIXTURES, 'hf-task/regression');
    const documents = ['a river', 'the crane is flying', 'old house', 'japan', 'the question'];
    const r = await tsbert('rerank', '--model', model, '--query', 'the crane', ...documents);
    expect(r.code, r.stderr).toBe(0);
    const ranked = jsonLines(r.stdout) as { index: number; document: string; score: number }[];
    expect(ranked.map((d) => d.index).sort()).toEqual([0, 1, 2, 3, 4]);
    for (const d of ranked) expect(d.document).toBe(documents[d.index]);
    for (let i = 1; i < ranked.length; i++) expect(ranked[i - 1].score).toBeGreaterThanOrEqual(ranked[i].score);
    expect(new Set(ranked.map((d) => d.score)).size).toBe(5); // distinct: the order says something
    const top = await tsbert('rerank', '--model', model, '--query', 'the crane', ...documents, '--top-k', '2');
    expect(jsonLines(top.stdout)).toEqual(ranked.slice(0, 2));
    const piped = await tsbertWithInput(
      `${documents.map((d) => JSON.stringify(d)).join('\n')}\n`,
      'rerank',
      '--model',
      model,
      '--query',
      'the crane',
    );
    expect(jsonLines(piped.stdout)).toEqual(ranked);
  });
});

describe('tsbert finetune: bad rows and signals', () => {
  it('stops at a bad row with one line naming file and line; --skip-bad-rows goes on and counts it', async () => {
    const args = ['finetune', '--model', MODEL, '--train', bad, ...RUN, '--steps', '2'];
    const out = join(dir, 'bad-rows');
    const stopped = await tsbert(...args, '--out', out);
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toBe(`tsbert: ${bad}:4 (column 'label'): no label ('label')\n`);
    expect(stopped.stdout).toBe('');
    const skipped = await tsbert(...args, '--out', out, '--skip-bad-rows');
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(skipped.stderr).toContain(`skipped: ${bad}:4 (column 'label'): no label ('label')\n`);
    expect(skipped.stdout).toMatch(/^data: 39 training examples, 0 held out; 0 cut to --max-len; 1 bad rows skipped$/m);
  });

  it('saves what was trained on SIGTERM, exits 143, and resumes from its checkpoint', async () => {
    const out = join(dir, 'signalled');
    const { child, stderr: read } = spawnTsbert(
      'finetune',
      '--model',
      MODEL,
      '--train',
      train,
      '--valid',
      valid,
      '--out',
      out,
      ...RUN,
      '--steps',
      '100000',
    );
    const signalled = new Promise<void>((sent) => {
      child.stderr.on('data', () => {
        if (!child.killed && /step \d+\/100000/.test(read())) {
          child.kill('SIGTERM'); // once: training has started
          sent();
        }
      });
    });
    const code = await new Promise<number | null>((done) => child.on('close', done));
    await signalled;
    const stderr = read();
    expect(code, stderr).toBe(143);
    const step = Number(/interrupted \(SIGTERM\) at step (\d+); saving what was trained/.exec(stderr)?.[1]);
    expect(step).toBeGreaterThan(0);
    expect(await readdir(join(out, 'checkpoints'))).toEqual([`step-${String(step).padStart(6, '0')}`]);
    expect((await BertModel.load(out)).labels).toEqual(['neg', 'pos']);
    expect(await readdir(out)).not.toContain('best');
    // the run's folder is where it resumes from (no --out needed), given as its checkpoint's folder too
    const last = join(out, 'checkpoints', (await readdir(join(out, 'checkpoints'))).at(-1) as string);
    const resumed = await tsbert('finetune', '--resume', last, '--steps', String(step + 2));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`2 steps to step ${step + 2}:`);
    const steps = (await readFile(join(out, 'history.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { kind: string; step: number })
      .filter((l) => l.kind === 'step')
      .map((l) => l.step);
    expect(steps).toEqual(Array.from({ length: step + 2 }, (_, i) => i + 1));
  });
});
