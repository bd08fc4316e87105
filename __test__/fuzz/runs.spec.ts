/**
 * Property-based tests (fast-check) of what issue 22 found: random sets of calls made at once
 * on one model (switching it to q8 among them) give the results of the same calls one after
 * another; a checkpoint with any file damaged is refused with a `CheckpointError` when a run
 * resumes from it; a long text is tokenized a piece at a time exactly as its words are
 * tokenized whole.
 *
 * A quick run by default; `npm run fuzz` sets TSBERT_FUZZ_RUNS (cases a property).
 */
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  BertModel,
  CheckpointError,
  embed,
  encode,
  pretrain,
  RESERVED_TOKENS,
  syntheticBatch,
  Tokenizer,
  Vocab,
} from '../../src/index.js';
import { paragraphs, TINY } from '../api/corpus.js';

const RUNS = Number(process.env.TSBERT_FUZZ_RUNS ?? 25);
const vocab = Vocab.fromJSON({ tokens: [...RESERVED_TOKENS, ...Array.from({ length: 30 }, (_, i) => `w${i}`)] });
const config = { hidden: 16, ffnHidden: 32, heads: 2, layers: 1, maxPositions: 48 };

/** A call on a model: a training step, a forward pass, an encode, an embed or a switch to q8. */
type Call =
  | { kind: 'quantize' }
  | { kind: 'train'; seed: number }
  | { kind: 'forward'; seed: number }
  | { kind: 'encode'; words: number }
  | { kind: 'embed'; texts: number };

describe('fuzz: calls at once on one model', () => {
  const call = fc.oneof(
    fc.record({ kind: fc.constant('train' as const), seed: fc.nat(1000) }),
    fc.record({ kind: fc.constant('encode' as const), words: fc.nat(40) }),
    fc.record({ kind: fc.constant('embed' as const), texts: fc.integer({ min: 1, max: 40 }) }),
    fc.record({ kind: fc.constant('forward' as const), seed: fc.nat(1000) }),
    fc.record({ kind: fc.constant('quantize' as const) }),
  );

  /**
   * The results of `calls` on a fresh model (seed `seed`), made at once or one after another;
   * a call that throws (a training step once the model is quantised) gives its error's message.
   */
  async function results(calls: readonly Call[], seed: number, together: boolean): Promise<string> {
    const model = BertModel.create(vocab, { config, seed, lr: 1e-3 });
    const batch = (s: number) => syntheticBatch(vocab.size, { batchSize: 4, seqLen: 12, numPreds: 2, seed: s });
    const text = (n: number) => Array.from({ length: n }, (_, i) => `w${(i * 7) % 30}`).join(' ');
    const call = async (c: Call): Promise<unknown> => {
      if (c.kind === 'quantize') return model.quantize();
      if (c.kind === 'train') return model.trainStep(batch(c.seed));
      if (c.kind === 'forward') return (await model.forward(batch(c.seed))).mlmLoss;
      if (c.kind === 'encode') return Array.from((await encode(model, text(c.words))).data);
      return Array.from(
        (
          await embed(
            model,
            Array.from({ length: c.texts }, (_, i) => text(i)),
          )
        ).data,
      );
    };
    const run = (c: Call) => call(c).catch((error: Error) => `${error.name}: ${error.message}`);
    const out = together
      ? await Promise.all(calls.map(run))
      : await calls.reduce<Promise<unknown[]>>(async (done, c) => [...(await done), await run(c)], Promise.resolve([]));
    model.dispose();
    return JSON.stringify(out);
  }

  it('give the results of the same calls one after another', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(call, { minLength: 2, maxLength: 12 }), fc.nat(100), async (calls, seed) => {
        expect(await results(calls, seed, true)).toBe(await results(calls, seed, false));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: damaged checkpoints', () => {
  it('are refused with a CheckpointError naming the checkpoint, whatever file is damaged', async () => {
    const data = paragraphs(120);
    const origin = join(await mkdtemp(join(tmpdir(), 'tsbert-fuzz-run-')), 'run');
    const { checkpoint } = await pretrain({ data, steps: 1, ...TINY, out: origin });
    const files = (await readdir(checkpoint as string)).sort();
    const damage = fc.record({
      file: fc.constantFrom(...files),
      kind: fc.constantFrom('flip', 'truncate', 'delete'),
      at: fc.nat(),
      bit: fc.nat(7),
    });
    await fc.assert(
      fc.asyncProperty(damage, async ({ file, kind, at, bit }) => {
        const out = join(await mkdtemp(join(tmpdir(), 'tsbert-fuzz-copy-')), 'run');
        await cp(origin, out, { recursive: true });
        const dir = join(out, 'checkpoints', 'step-000001');
        const path = join(dir, file);
        const bytes = await readFile(path);
        if (kind === 'delete') await rm(path);
        else if (kind === 'truncate') await writeFile(path, bytes.subarray(0, at % bytes.length));
        else {
          const flipped = Buffer.from(bytes);
          flipped[at % bytes.length] ^= 1 << bit;
          await writeFile(path, flipped);
        }
        const changed = kind === 'delete' || !(await readFile(path)).equals(bytes);
        const error = await pretrain({ data, steps: 2, ...TINY, out, resume: out }).then(
          () => undefined,
          (e: unknown) => e,
        );
        await rm(out, { recursive: true, force: true });
        if (!changed) return;
        expect(error, `${kind} ${file}`).toBeInstanceOf(CheckpointError);
        expect((error as Error).message).toContain(dir);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: long texts', () => {
  const tokenizer = Tokenizer.fromVocab(
    Vocab.fromJSON({ tokens: [...RESERVED_TOKENS, 'crane', 'river', 'a', 'the', 'é', 'naïve'] }),
  );
  const word = fc.oneof(
    fc.constantFrom('crane', 'river', 'a', 'the', 'naïve', 'Crane', 'zebra', 'é'),
    fc.string({ minLength: 1, maxLength: 12 }).map((s) => s.replace(/\s/g, 'x')),
  );
  const space = fc.constantFrom(' ', '  ', '\t', '\n', ' \u3000 ');

  it('cut and counted a piece at a time, give the tokens and count of their words tokenized whole', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(word, space), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 1, max: 400 }),
        fc.integer({ min: 4, max: 600 }),
        (pairs, times, maxLength) => {
          const words = Array.from({ length: times }, () => pairs.map(([w]) => w)).flat();
          const text = Array.from({ length: times }, () => pairs.map(([w, s]) => `${w}${s}`).join('')).join('');
          const [raw, split] = [text, words].map((input) => tokenizer.encode(input, undefined, { maxLength }));
          expect(raw.ids).toEqual(split.ids);
          expect(raw.overflow).toBe(split.overflow);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
