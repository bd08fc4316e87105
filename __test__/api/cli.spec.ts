import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { SMALL, spawnTsbert, tsbert, tsbertWith } from './cli-process.js';
import { corpusFolder, paragraphs } from './corpus.js';

describe('the tsbert command', () => {
  it('pretrains, saves the model and its loss plot, then encodes with it', async () => {
    const data = await corpusFolder(200);
    const out = join(await mkdtemp(join(tmpdir(), 'tsbert-cli-')), 'model');
    const trained = await tsbert('pretrain', '--data', data, '--steps', '3', ...SMALL, '--out', out);
    expect(trained.code, trained.stderr).toBe(0);
    expect(trained.stdout).toMatch(/^MLM loss \d+\.\d{3}, NSP loss \d+\.\d{3}\n\d+\.\d sentence pairs\/sec on cpu\n/);
    // the progress line of a step shows that step's losses under its own number (never "step 0")
    expect(trained.stderr).toMatch(/^step 1\/\d+ \|/m);
    expect(trained.stderr).not.toMatch(/^step 0\//m);
    // outside a terminal: the last step's line once (no held-out file here: see progress.spec.ts)
    expect(trained.stderr.match(/^step 3\/3 \|/gm)).toHaveLength(1);
    const files = await readdir(out);
    expect(files).toContain('config.json');
    expect(files).toContain('loss.svg');
    const svg = await readFile(join(out, 'loss.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('MLM');
    expect(svg).toContain('NSP');

    const trainFile = join(data, 'wiki.train.tokens');
    const evaluated = await tsbert(
      'evaluate',
      '--model',
      out,
      '--data',
      trainFile,
      '--max-len',
      '24',
      '--examples',
      '100',
    );
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect(evaluated.stdout.startsWith(`scored: ${trainFile}\n`)).toBe(true);
    expect(evaluated.stdout).toMatch(
      /\nexamples: 100\nMLM loss \d+\.\d{4}, accuracy \d+\.\d{2}%\nNSP loss \d+\.\d{4}, accuracy \d+\.\d{2}%\n$/,
    );
    const encoded = await tsbert('encode', '--model', out, 'a crane is flying', '--pair', 'he just left');
    expect(encoded.code, encoded.stderr).toBe(0);
    expect(encoded.stdout).toContain('tokens: <cls> a crane is flying <sep> he just left <sep>');
    expect(encoded.stdout).toContain('shape: [1, 10, 16]');
    expect(encoded.stdout.split('\n').filter((l) => /^\s+\d+ \S+\s+\[/.test(l))).toHaveLength(10);
  });

  it('exits non-zero with one line on stderr for bad options, a missing data path or model', async () => {
    const cases = [
      [
        ['pretrain', '--data', '/no/such/data', '--steps', '1'],
        /^tsbert: data: '\/no\/such\/data': no such file or folder\n$/,
      ],
      [['pretrain', '--data', '.', '--steps', 'many'], /^tsbert: option '--steps <n>' argument 'many' is invalid/],
      [['pretrain', '--data', '.', '--dropout', '1.5'], /--dropout must be a number in \[0, 1\)/],
      [['encode', '--model', '/no/such/model', 'a crane'], /^tsbert: no model in '\/no\/such\/model'/],
      [['fly'], /^tsbert: unknown command 'fly'/],
    ] as const;
    for (const [args, message] of cases) {
      const r = await tsbert(...args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
  });

  it('without --data, takes WikiText-2 from the cache, or says where to put it when it cannot download', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'tsbert-cli-cache-'));
    const offline = { TSBERT_CACHE: cache, TSBERT_WIKITEXT_URL: 'http://127.0.0.1:9/wikitext-2-v1.zip' };
    const oneStep = ['--steps', '1', ...SMALL];
    const out = join(cache, 'run');
    const failed = await tsbertWith(offline, 'pretrain', ...oneStep, '--out', out);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      new RegExp(
        `^tsbert: WikiText-2: could not download .*; on an offline machine put wiki.train.tokens and wiki.valid.tokens in '${join(cache, 'wikitext-2')}'`,
      ),
    );
    const folder = join(cache, 'wikitext-2');
    await mkdir(folder);
    await writeFile(join(folder, 'wiki.train.tokens'), paragraphs(200).join('\n'));
    await writeFile(join(folder, 'wiki.valid.tokens'), paragraphs(40, 2).join('\n'));
    const trained = await tsbertWith(offline, 'pretrain', ...oneStep, '--out', out);
    expect(trained.code, trained.stderr).toBe(0);
    expect(trained.stdout).toMatch(/^held out \(\d+ pairs\): MLM loss \d+\.\d{3}, accuracy \d+\.\d%; NSP loss/m);
  });
});

describe('the tsbert command, first things a newcomer types', () => {
  it('prints its version, and marks the required options in the help', async () => {
    const { version } = JSON.parse(await readFile(join(import.meta.dirname, '../../package.json'), 'utf8'));
    expect((await tsbert('--version')).stdout).toBe(`${version}\n`);
    const help = await tsbert('embed', '--help');
    expect(help.stdout).toMatch(/--model <dir\|id> +a model folder[\s\S]*\(required\)/);
    expect(help.stdout).toMatch(/--input <file> +the texts[\s\S]*\(required\)/);
  });
});

describe('the tsbert command never loses work', () => {
  it('refuses a bad --out and an impossible size before reading any data', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsbert-cli-out-'));
    const file = join(dir, 'a-file');
    await writeFile(file, 'not a folder');
    for (const [args, message] of [
      [['--out', file], /^tsbert: --out: '.*a-file' is a file, not a folder\n$/],
      [['--out', join(file, 'model')], /^tsbert: --out: '.*model' lies under the file '.*a-file'\n$/],
      [
        ['--out', join(dir, 'm'), '--max-len', '100000'],
        /^tsbert: batchSize, maxLen: a training pass over 512 × 100000 tokens needs about [\d.]+ GB, more than the [\d.]+ GB allowed/,
      ],
    ] as const) {
      const r = await tsbert('pretrain', '--data', '/no/such/corpus', ...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(message);
    }
  });

  it('leaves --out as it was when training diverges, and exits non-zero', async () => {
    const data = await corpusFolder(200);
    const out = join(await mkdtemp(join(tmpdir(), 'tsbert-cli-diverge-')), 'model');
    expect((await tsbert('pretrain', '--data', data, '--steps', '2', ...SMALL, '--out', out)).code).toBe(0);
    const snapshot = async () => {
      const names = (await readdir(out)).filter((n) => n !== 'checkpoints').sort();
      return Promise.all(names.map(async (n) => [n, (await readFile(join(out, n))).toString('base64')]));
    };
    const before = await snapshot();
    const r = await tsbert(
      'pretrain',
      '--data',
      data,
      '--steps',
      '30',
      ...SMALL,
      '--lr',
      '1e30',
      '--out',
      out,
      '--overwrite',
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^tsbert: training diverged at step \d+: .*lower the learning rate \(it is 1e\+30\); the model in '.*model' was not overwritten\n$/m,
    );
    expect(r.stdout).not.toMatch(/saved/);
    const model = (files: string[][]) => files.filter(([name]) => name !== 'history.jsonl' && name !== 'loss.svg');
    expect(model(await snapshot())).toEqual(model(before));
    const history = (await readFile(join(out, 'history.jsonl'), 'utf8')).trim().split('\n');
    expect(history.length).toBeGreaterThan(0); // the diverged run's steps, for a look at what went wrong
  });

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)(
    'saves what was trained on %s, exits %i, resumes from its checkpoint; unknown words are <unk>',
    async (signal, status) => {
      const data = await corpusFolder(200);
      const out = join(await mkdtemp(join(tmpdir(), 'tsbert-cli-signal-')), 'model');
      const { child, stderr: read } = spawnTsbert(
        'pretrain',
        '--data',
        data,
        '--steps',
        '100000',
        ...SMALL,
        '--out',
        out,
      );
      const signalled = new Promise<void>((sent) => {
        child.stderr.on('data', () => {
          if (!child.killed && /step \d+\/100000/.test(read())) {
            child.kill(signal); // once: training has started
            sent();
          }
        });
      });
      const code = await new Promise<number | null>((done) => child.on('close', done));
      await signalled;
      const stderr = read();
      expect(code, stderr).toBe(status);
      const step = Number(
        new RegExp(`interrupted \\(${signal}\\) at step (\\d+); saving what was trained`).exec(stderr)?.[1],
      );
      expect(step).toBeGreaterThan(0);
      expect(await readdir(out)).toContain('config.json');
      expect(await readdir(join(out, 'checkpoints'))).toEqual([`step-${String(step).padStart(6, '0')}`]);
      const resumed = await tsbert('pretrain', '--resume', out, '--steps', String(step + 2), '--out', out);
      expect(resumed.code, resumed.stderr).toBe(0);
      const steps = (await readFile(join(out, 'history.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).step);
      expect(steps).toEqual(Array.from({ length: step + 2 }, (_, i) => i + 1));
      const encoded = await tsbert('encode', '--model', out, 'a zebra crane');
      expect(encoded.stdout).toContain('tokens: <cls> a <unk> crane <sep>');
    },
  );
});

describe('the tsbert command with Hugging Face models', () => {
  const FIXTURES = join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures/hf');

  it('encodes raw text, embeds a file a line at a time, and fills masks', async () => {
    const encoded = await tsbert('encode', '--model', join(FIXTURES, 'model'), 'The crane is flying.');
    expect(encoded.code, encoded.stderr).toBe(0);
    expect(encoded.stdout).toMatch(/^tokens: \[CLS\] the crane is \S.* \. \[SEP\]$/m);
    const input = join(await mkdtemp(join(tmpdir(), 'tsbert-cli-embed-')), 'texts.txt');
    await writeFile(input, 'the crane is flying\n\na dog sat on the mat\n');
    const embedded = await tsbert('embed', '--model', join(FIXTURES, 'bare'), '--input', input, '--normalize');
    expect(embedded.code, embedded.stderr).toBe(0);
    const lines = embedded.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as number[]);
    expect(lines).toHaveLength(3);
    for (const v of lines) {
      expect(v).toHaveLength(32);
      expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    }
    const filled = await tsbert(
      'fill-mask',
      '--model',
      join(FIXTURES, 'model'),
      'the crane is [MASK] over the river',
      '--top-k',
      '2',
    );
    expect(filled.code, filled.stderr).toBe(0);
    expect(filled.stdout).toMatch(/^mask at token 4:\n {2}\S+ +0\.\d{4}\n {2}\S+ +0\.\d{4}\n$/);
    const missing = await tsbert('embed', '--model', join(FIXTURES, 'bare'), '--input', '/no/such/texts');
    expect(missing.stderr).toMatch(/^tsbert: --input: '\/no\/such\/texts': no such file\n$/);
  });
});
