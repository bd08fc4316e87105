/**
 * `finetune`: a tiny pretrained BERT (Hugging Face's fixture: hidden 32, 2 layers, 32
 * positions, dropout 0) fine-tuned on small learnable data written by the test — a classifier
 * of texts that says whether they hold "yes" or "no", a tagger of the words cat and dog, a
 * regression and a multi-label head — with held-out metrics, the best model kept, the run's
 * folder (history, plot, checkpoints) and resumption bit for bit, early stopping, a stop that
 * saves, and the errors of bad options, bad rows and a diverged run.
 */
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { rngFor, Stream } from '../../src/data/random.js';
import {
  BertModel,
  classify,
  DataError,
  evaluateTask,
  type FinetuneOptions,
  type FinetuneResult,
  finetune,
  TrainingDivergedError,
  tagTokens,
} from '../../src/index.js';

const FIXTURES = join(import.meta.dirname, '../../crates/tsbert-core/tests/fixtures');
const MODEL = join(FIXTURES, 'hf/model');
const TASKS = join(FIXTURES, 'hf-task');

/** Words that say nothing of the label (all in the fixture's vocabulary). */
const FILLER = ['the', 'river', 'crane', 'house', 'big', 'old', 'question', 'early', 'japan', 'careful'];

/** A seeded source of picks. */
function picker(seed: number) {
  const rng = rngFor(seed, Stream.Synthetic);
  return {
    below: (n: number) => rng.below(n),
    pick: <T>(xs: readonly T[]): T => xs[rng.below(xs.length)],
    chance: (p: number) => rng.next() < p,
  };
}

/** `n` rows: a few filler words and "yes" (label pos) or "no" (label neg), alternately. */
function yesNoRows(n: number, seed: number): { text: string; label: string }[] {
  const r = picker(seed);
  return Array.from({ length: n }, (_, i) => {
    const words = Array.from({ length: 3 + r.below(4) }, () => r.pick(FILLER));
    words.splice(r.below(words.length + 1), 0, i % 2 === 0 ? 'yes' : 'no');
    return { text: words.join(' '), label: i % 2 === 0 ? 'pos' : 'neg' };
  });
}

/** `n` sentences with their tags: B-ANI on cat and dog, O on the other words. */
function animalRows(n: number, seed: number): { tokens: string[]; tags: string[] }[] {
  const r = picker(seed);
  return Array.from({ length: n }, () => {
    const tokens = Array.from({ length: 4 + r.below(4) }, () =>
      r.chance(0.3) ? r.pick(['cat', 'dog']) : r.pick(FILLER),
    );
    return { tokens, tags: tokens.map((w) => (w === 'cat' || w === 'dog' ? 'B-ANI' : 'O')) };
  });
}

const csv = (rows: readonly { text: string; label: string }[]) =>
  `text,label\n${rows.map((r) => `${r.text},${r.label}`).join('\n')}\n`;
const jsonl = (rows: readonly unknown[]) => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;
const conll = (rows: readonly { tokens: string[]; tags: string[] }[]) =>
  `${rows.map((r) => r.tokens.map((w, i) => `${w} ${r.tags[i]}`).join('\n')).join('\n\n')}\n`;

let dir: string;
/** The data files, by name. */
const files = {
  train: '',
  valid: '',
  tokenTrain: '',
  tokenValid: '',
  regression: '',
  multi: '',
  bad: '',
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbert-finetune-'));
  const write = async (name: string, text: string) => {
    await writeFile(join(dir, name), text);
    return join(dir, name);
  };
  files.train = await write('train.csv', csv(yesNoRows(160, 1)));
  files.valid = await write('valid.csv', csv(yesNoRows(40, 2)));
  files.tokenTrain = await write('train.conll', conll(animalRows(160, 3)));
  files.tokenValid = await write('valid.jsonl', jsonl(animalRows(40, 4)));
  // a regression: the count of "yes" among filler words, over 3
  const r = picker(5);
  const counted = Array.from({ length: 160 }, () => {
    const yes = r.below(4);
    const words = Array.from({ length: 3 }, () => r.pick(FILLER));
    for (let k = 0; k < yes; k++) words.splice(r.below(words.length + 1), 0, 'yes');
    return { text: words.join(' '), label: (yes / 3).toFixed(4) };
  });
  files.regression = await write('regression.csv', csv(counted));
  // multi-label: "y" when the text has yes, "d" when it has dog (lists in JSON)
  const m = picker(6);
  const multi = Array.from({ length: 120 }, () => {
    const words = Array.from({ length: 3 }, () => m.pick(FILLER));
    const label: string[] = [];
    if (m.chance(0.5)) {
      words.splice(m.below(words.length + 1), 0, 'yes');
      label.push('y');
    }
    if (m.chance(0.5)) {
      words.splice(m.below(words.length + 1), 0, 'dog');
      label.push('d');
    }
    return { text: words.join(' '), label };
  });
  files.multi = await write('multi.jsonl', jsonl(multi));
  // line 5 (the header is line 1) has no label
  const rows = yesNoRows(40, 7);
  files.bad = await write('bad.csv', csv(rows).replace(`\n${rows[3].text},${rows[3].label}\n`, `\n${rows[3].text},\n`));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A folder for a run's output, inside the test's folder (not made). */
let outs = 0;
const outDir = (name: string) => join(dir, `${name}-${++outs}`);

/** The classifier's run: lr 1e-3, 8 epochs of 10 batches of 16 (accuracy 1 on held-out data by epoch 4). */
const CLASSIFIER = {
  model: MODEL,
  lr: 1e-3,
  epochs: 8,
  batchSize: 16,
  maxLen: 32,
  device: 'cpu',
} as const satisfies FinetuneOptions;

const texts = ['yes the big river', 'the old house no', 'no', 'careful yes japan'];

/** Each line of a run's history.jsonl. */
const historyOf = async (out: string) =>
  (await readFile(join(out, 'history.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown> & { kind: string; step: number });
/** A line without its timing, which differs between runs. */
const untimed = (l: Record<string, unknown>) => ({ ...l, examplesPerSec: undefined });
/** The SHA-256 of a model folder's weights, as its manifest records it. */
const weightsOf = async (modelDir: string) =>
  JSON.parse(await readFile(join(modelDir, 'config.json'), 'utf8')).weights.sha256 as string;
const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

describe('finetune: a classifier', () => {
  let run: Promise<FinetuneResult & { out: string; evals: number[] }> | undefined;
  /** One run with a folder, shared by the tests that look at it. */
  const learned = () => {
    run ??= (async () => {
      const out = outDir('classifier');
      const evals: number[] = [];
      const result = await finetune({
        ...CLASSIFIER,
        train: files.train,
        valid: files.valid,
        out,
        saveEvery: 20,
        onEval: (r) => evals.push(r.step),
      });
      return { ...result, out, evals };
    })();
    return run;
  };

  it('learns: held-out accuracy 1, the best evaluation in the summary, sorted labels, a head and no pretraining heads', async () => {
    const { model, labels, summary, evaluations, history, evals } = await learned();
    expect(history.map((r) => r.step)).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
    // an evaluation at the end of each epoch (10 steps), each reported
    expect(evaluations.map((e) => e.step)).toEqual([10, 20, 30, 40, 50, 60, 70, 80]);
    expect(evals).toEqual([10, 20, 30, 40, 50, 60, 70, 80]);
    expect(evaluations.map((e) => e.epoch)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(summary.metric).toBe('accuracy');
    expect(summary.best?.metrics.accuracy).toBe(1);
    // the best is the first evaluation of the highest accuracy (a tie does not replace it)
    const top = Math.max(...evaluations.map((e) => e.metrics.accuracy));
    expect(summary.best?.step).toBe(evaluations.find((e) => e.metrics.accuracy === top)?.step);
    expect(summary.best).toEqual(evaluations.find((e) => e.step === summary.best?.step));
    expect(summary).toMatchObject({
      steps: 80,
      lastStep: 80,
      aborted: false,
      earlyStopped: false,
      device: 'cpu',
      data: { train: 160, valid: 40, truncated: 0, skipped: 0 },
    });
    expect(summary.loss).toBeCloseTo(history.reduce((s, r) => s + r.loss, 0) / 80, 12);
    expect(history.at(-1)?.loss).toBeLessThan(0.5 * history[0].loss);
    expect((await evaluateTask(model, files.valid)).metrics.accuracy).toBe(1);
    expect(labels).toEqual({ kind: 'single_label_classification', names: ['neg', 'pos'] });
    expect(model.labels).toEqual(['neg', 'pos']);
    expect(model.config.task).toEqual({ kind: 'single_label_classification', numLabels: 2 });
    expect(model.config.mlmHead).toBe(false);
    expect(model.config.nspHead).toBe(false);
    const predicted = (await classify(model, ['yes the big river', 'the old house no'])).map(([b]) => b.label);
    expect(predicted).toEqual(['pos', 'neg']);
  });

  it('leaves in out the best model, history.jsonl, loss.svg and its last checkpoints; out/best is gone', async () => {
    const { model, out, summary, checkpoint } = await learned();
    const loaded = await BertModel.load(out);
    expect(loaded.labels).toEqual(['neg', 'pos']);
    expect(loaded.config.task).toEqual({ kind: 'single_label_classification', numLabels: 2 });
    expect(await classify(loaded, texts, { topK: null })).toEqual(await classify(model, texts, { topK: null }));
    // the folder's model is the best evaluation's, not the last step's
    expect((await evaluateTask(loaded, files.valid)).metrics).toEqual(summary.best?.metrics);
    const lines = await historyOf(out);
    expect(lines.filter((l) => l.kind === 'step').map((l) => l.step)).toEqual(
      Array.from({ length: 80 }, (_, i) => i + 1),
    );
    const evals = lines.filter((l) => l.kind === 'eval');
    expect(evals.map((l) => l.step)).toEqual([10, 20, 30, 40, 50, 60, 70, 80]);
    for (const e of evals) {
      expect(e).toMatchObject({ examples: 40, metrics: { accuracy: expect.any(Number), loss: expect.any(Number) } });
    }
    expect(lines.find((l) => l.kind === 'eval' && l.step === summary.best?.step)).toMatchObject({
      metrics: summary.best?.metrics,
    });
    const svg = await readFile(join(out, 'loss.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(await exists(join(out, 'best'))).toBe(false);
    // a checkpoint every 20 steps, the last 3 kept
    expect(await readdir(join(out, 'checkpoints'))).toEqual(['step-000040', 'step-000060', 'step-000080']);
    expect(checkpoint).toBe(join(out, 'checkpoints', 'step-000080'));
  });

  it('returns the best model, not the last: its held-out metrics are the best evaluation’s', async () => {
    // by accuracy: the first evaluation at 1 is the best, later ones (lower loss) are ties
    const { model, summary, evaluations } = await learned();
    expect(summary.best?.step).toBeLessThan(80);
    const last = evaluations.at(-1);
    expect(Math.abs((last?.loss ?? 0) - (summary.best?.loss ?? 0))).toBeGreaterThan(1e-3);
    const scored = await evaluateTask(model, files.valid);
    for (const [name, value] of Object.entries(summary.best?.metrics ?? {})) {
      expect(Math.abs(scored.metrics[name] - value), name).toBeLessThan(1e-6);
    }
    // by loss, with a learning rate that makes the held-out loss go up after a few steps
    const high = await finetune({
      ...CLASSIFIER,
      train: files.train,
      valid: files.valid,
      lr: 3e-2,
      schedule: 'constant',
      warmupSteps: 0,
      steps: 40,
      evalEvery: 5,
      metric: 'loss',
    });
    const losses = high.evaluations.map((e) => e.loss);
    expect(high.summary.metric).toBe('loss');
    expect(high.summary.best?.loss).toBe(Math.min(...losses));
    expect(high.summary.best?.step).toBeLessThan(40);
    expect(high.evaluations.at(-1)?.loss).toBeGreaterThan((high.summary.best?.loss ?? 0) + 1e-3);
    const rescored = await evaluateTask(high.model, files.valid);
    expect(Math.abs(rescored.loss - (high.summary.best?.loss ?? 0))).toBeLessThan(1e-6);
  });
});

describe('finetune: a resumed run', () => {
  it('stopped at N/2 and resumed gives the N steps of one go bit for bit, the best model kept across the stop', async () => {
    const options = { ...CLASSIFIER, train: files.train, valid: files.valid, saveEvery: 20 };
    const [whole, split] = [outDir('whole'), outDir('split')];
    const one = await finetune({ ...options, out: whole });
    // the first half stops as a preempted run does (its schedule planned for all 80 steps)
    const stop = new AbortController();
    const first = await finetune({
      ...options,
      out: split,
      signal: stop.signal,
      onStep: (r) => r.step === 45 && stop.abort(),
    });
    expect(first.summary).toMatchObject({ aborted: true, lastStep: 45 });
    expect(first.checkpoint).toBe(join(split, 'checkpoints', 'step-000045'));
    // its best evaluation (step 40) comes before the stop and is not beaten after it
    expect(one.summary.best?.step).toBe(40);
    const second = await finetune({ resume: split, out: split });
    expect(second.history.map((r) => r.step)).toEqual(Array.from({ length: 35 }, (_, i) => i + 46));
    expect(second.history.map((r) => r.loss)).toEqual(one.history.slice(45).map((r) => r.loss));
    expect(second.history.map((r) => r.lr)).toEqual(one.history.slice(45).map((r) => r.lr));
    expect((await historyOf(split)).map(untimed)).toEqual((await historyOf(whole)).map(untimed));
    expect(await weightsOf(join(split, 'checkpoints', 'step-000080'))).toBe(
      await weightsOf(join(whole, 'checkpoints', 'step-000080')),
    );
    expect(second.summary.best).toEqual(one.summary.best);
    expect(await weightsOf(split)).toBe(await weightsOf(whole));
    const batch = second.model.tokenizer.pad(second.model.tokenizer.encodeBatch(texts.map((t) => [t] as const)));
    expect((await second.model.taskLogits(batch)).data).toEqual((await one.model.taskLogits(batch)).data);
    expect(await exists(join(split, 'best'))).toBe(false);
    // from the checkpoint into another folder (no history there): the best model is found in the run's folder
    const elsewhere = await finetune({ resume: join(split, 'checkpoints', 'step-000045'), out: outDir('elsewhere') });
    expect(elsewhere.history.map((r) => r.loss)).toEqual(one.history.slice(45).map((r) => r.loss));
    expect(elsewhere.summary.best?.step).toBe(40);
    expect(elsewhere.summary.best?.metrics).toEqual(one.summary.best?.metrics);
    expect((await elsewhere.model.taskLogits(batch)).data).toEqual((await one.model.taskLogits(batch)).data);
    // a checkpoint whose run's best model is lost: the best of the resumed call's own evaluations
    const lost = outDir('lost');
    await cp(join(split, 'checkpoints', 'step-000045'), join(lost, 'checkpoints', 'step-000045'), { recursive: true });
    const orphan = await finetune({ resume: join(lost, 'checkpoints', 'step-000045'), out: outDir('orphan') });
    expect(orphan.history.map((r) => r.loss)).toEqual(one.history.slice(45).map((r) => r.loss));
    expect(orphan.evaluations.map((e) => e.step)).toEqual([50, 60, 70, 80]);
    expect(orphan.summary.best).toEqual(orphan.evaluations.find((e) => e.step === orphan.summary.best?.step));
  });

  it('run to steps N/2 then resumed to N (a constant rate) gives the same weights and history as N steps', async () => {
    const options = {
      ...CLASSIFIER,
      train: files.train,
      valid: files.valid,
      schedule: 'constant',
      warmupSteps: 5,
      saveEvery: 20,
      steps: 80,
    } as const;
    const [whole, split] = [outDir('whole-constant'), outDir('split-constant')];
    const one = await finetune({ ...options, out: whole });
    const first = await finetune({ ...options, steps: 40, out: split });
    expect(first.summary).toMatchObject({ aborted: false, lastStep: 40 });
    const second = await finetune({ resume: split, out: split, steps: 80 });
    expect(second.summary.lastStep).toBe(80);
    expect([...first.history, ...second.history].map((r) => r.loss)).toEqual(one.history.map((r) => r.loss));
    expect((await historyOf(split)).map(untimed)).toEqual((await historyOf(whole)).map(untimed));
    expect(await weightsOf(join(split, 'checkpoints', 'step-000080'))).toBe(
      await weightsOf(join(whole, 'checkpoints', 'step-000080')),
    );
    expect(await weightsOf(split)).toBe(await weightsOf(whole));
  });
});

describe('finetune: stopping', () => {
  it('stops early after evaluations without improvement', async () => {
    const { summary, evaluations, history } = await finetune({
      ...CLASSIFIER,
      train: files.train,
      valid: files.valid,
      lr: 1e-9, // nothing changes: the accuracy stays where it starts
      evalEvery: 1,
      earlyStopping: 2,
      steps: 20,
    });
    expect(summary.earlyStopped).toBe(true);
    expect(summary.aborted).toBe(false);
    // the first evaluation is the best; two more without improvement stop the run
    expect(summary.lastStep).toBe(3);
    expect(history).toHaveLength(3);
    expect(evaluations.map((e) => e.step)).toEqual([1, 2, 3]);
    expect(summary.best?.step).toBe(1);
  });

  it('stops after the step in flight when aborted: a checkpoint, and a model in out that loads', async () => {
    const out = outDir('aborted');
    const controller = new AbortController();
    const { summary, history, checkpoint, evaluations } = await finetune({
      ...CLASSIFIER,
      train: files.train,
      valid: files.valid,
      out,
      signal: controller.signal,
      onStep: () => controller.abort(),
    });
    expect(summary).toMatchObject({ aborted: true, lastStep: 1, steps: 1, earlyStopped: false });
    expect(history).toHaveLength(1);
    expect(evaluations).toEqual([]);
    expect(checkpoint).toBe(join(out, 'checkpoints', 'step-000001'));
    expect(await readdir(join(out, 'checkpoints'))).toEqual(['step-000001']);
    const loaded = await BertModel.load(out);
    expect(loaded.labels).toEqual(['neg', 'pos']);
    expect(await exists(join(out, 'best'))).toBe(false);
    // and it goes on from there
    const resumed = await finetune({ resume: out, out, steps: 3 });
    expect(resumed.history.map((r) => r.step)).toEqual([2, 3]);
  });
});

describe('finetune: other heads', () => {
  it('tags tokens: learns the entities, labels sorted, CoNLL and JSON Lines read', async () => {
    const { model, labels, summary } = await finetune({
      ...CLASSIFIER,
      task: 'token-classification',
      train: files.tokenTrain, // CoNLL
      valid: files.tokenValid, // JSON Lines
      epochs: 4,
    });
    expect(labels).toEqual({ kind: 'token_classification', names: ['B-ANI', 'O'] });
    expect(model.labels).toEqual(['B-ANI', 'O']);
    expect(model.config.task).toEqual({ kind: 'token_classification', numLabels: 2 });
    expect(summary.metric).toBe('f1');
    expect(summary.best?.metrics.f1).toBeGreaterThan(0.9);
    expect(summary.data).toMatchObject({ train: 160, valid: 40 });
    const scored = await evaluateTask(model, files.tokenValid);
    expect(Math.abs(scored.metrics.f1 - (summary.best?.metrics.f1 ?? 0))).toBeLessThan(1e-6);
    const entities = await tagTokens(model, 'the big dog and the old house', { aggregation: 'first' });
    expect(entities.map((e) => [e.entity, e.word])).toEqual([['ANI', 'dog']]);
  });

  it('fits a regression (fractions make one) and reports pearson, spearman and mse', async () => {
    const { model, labels, summary } = await finetune({
      ...CLASSIFIER,
      train: files.regression,
      validSplit: 0.25,
      epochs: 4,
    });
    expect(labels).toEqual({ kind: 'regression', names: ['label'] });
    expect(model.config.task).toEqual({ kind: 'regression', numLabels: 1 });
    expect(summary.metric).toBe('pearson');
    const metrics = summary.best?.metrics ?? {};
    expect(Object.keys(metrics).sort()).toEqual(['loss', 'mse', 'pearson', 'spearman']);
    expect(metrics.mse).toBeCloseTo(metrics.loss, 12);
    expect(metrics.pearson).toBeGreaterThan(0.3);
    expect(metrics.spearman).toBeGreaterThan(0);
    expect(summary.data).toMatchObject({ train: 120, valid: 40 });
  });

  it('trains a multi-label head from JSON lists and reports microF1', async () => {
    const { model, labels, summary, evaluations } = await finetune({
      ...CLASSIFIER,
      train: files.multi,
      validSplit: 0.25,
      lr: 1e-2,
      epochs: 6,
    });
    expect(labels).toEqual({ kind: 'multi_label_classification', names: ['d', 'y'] });
    expect(model.config.task).toEqual({ kind: 'multi_label_classification', numLabels: 2 });
    expect(summary.metric).toBe('microF1');
    const metrics = summary.best?.metrics ?? {};
    expect(Object.keys(metrics).sort()).toEqual(['exactMatch', 'loss', 'macroF1', 'microF1']);
    expect(metrics.microF1).toBe(Math.max(...evaluations.map((e) => e.metrics.microF1)));
    expect(metrics.microF1).toBeGreaterThan(0.5);
    expect(metrics.microF1).toBeLessThanOrEqual(1);
    expect(summary.data).toMatchObject({ train: 90, valid: 30 });
  });
});

describe('finetune: data and batches', () => {
  it('holds out round(fraction × n) examples, the same ones under the same seed', async () => {
    const split = (validSplit: number) =>
      finetune({ model: MODEL, train: files.train, validSplit, steps: 1, batchSize: 16, device: 'cpu' });
    const a = await split(0.3);
    expect(a.summary.data).toMatchObject({ train: 112, valid: 48 });
    expect(a.evaluations[0].examples).toBe(48);
    expect((await split(0.33)).summary.data).toMatchObject({ train: 107, valid: 53 }); // round(52.8)
    const b = await split(0.3);
    expect(b.evaluations[0].metrics).toEqual(a.evaluations[0].metrics);
    // without maxLen, the model's 32 positions (fewer than BERT's 128)
    expect(a.summary.data.truncated).toBe(0);
  });

  it('accumulates 2 batches of 8 into the step of one batch of 16 (the same rows, dropout 0)', async () => {
    const one = await finetune({ ...CLASSIFIER, train: files.train, batchSize: 16, steps: 2 });
    const two = await finetune({ ...CLASSIFIER, train: files.train, batchSize: 8, accumulate: 2, steps: 2 });
    expect(two.summary.steps).toBe(2);
    for (const [i, r] of one.history.entries()) {
      expect(Math.abs(two.history[i].loss - r.loss), `step ${i + 1}`).toBeLessThan(1e-6);
      expect(two.history[i].epoch).toBe(r.epoch);
    }
    const batch = one.model.tokenizer.pad(one.model.tokenizer.encodeBatch(texts.map((t) => [t] as const)));
    const [x, y] = [(await one.model.taskLogits(batch)).data, (await two.model.taskLogits(batch)).data];
    expect(Math.max(...Array.from(x, (v, i) => Math.abs(v - y[i])))).toBeLessThan(1e-6);
    // another batch size draws other batches: the weights move elsewhere
    const other = await finetune({ ...CLASSIFIER, train: files.train, batchSize: 8, steps: 2 });
    const z = (await other.model.taskLogits(batch)).data;
    expect(Math.max(...Array.from(x, (v, i) => Math.abs(v - z[i])))).toBeGreaterThan(1e-6);
  });

  it('names a bad row by file and line, or skips and counts it with skipBadRows', async () => {
    const error = await finetune({ ...CLASSIFIER, train: files.bad, steps: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataError);
    expect((error as Error).message).toBe(`${files.bad}:5 (column 'label'): no label ('label')`);
    expect((error as DataError).line).toBe(5);
    const seen: DataError[] = [];
    const { summary } = await finetune({
      ...CLASSIFIER,
      train: files.bad,
      steps: 1,
      skipBadRows: true,
      onBadRow: (e) => seen.push(e),
    });
    expect(summary.data).toMatchObject({ train: 39, skipped: 1 });
    expect(seen.map((e) => [e.file, e.line])).toEqual([[files.bad, 5]]);
  });
});

describe('finetune: a model with a task head', () => {
  it('takes names for its LABEL_i labels, and refuses data with another number of labels', async () => {
    const model = join(dir, 'unnamed');
    await cp(join(TASKS, 'single'), model, { recursive: true });
    const config = JSON.parse(await readFile(join(model, 'config.json'), 'utf8'));
    config.id2label = { 0: 'LABEL_0', 1: 'LABEL_1', 2: 'LABEL_2' };
    config.label2id = null;
    await writeFile(join(model, 'config.json'), JSON.stringify(config));
    const r = picker(8);
    const rows = (names: string[]) =>
      Array.from({ length: 24 }, (_, i) => ({
        text: `${r.pick(FILLER)} ${r.pick(FILLER)}`,
        label: names[i % names.length],
      }));
    const three = join(dir, 'three.csv');
    await writeFile(three, csv(rows(['c', 'a', 'b'])));
    const named = await finetune({ ...CLASSIFIER, model, train: three, steps: 2 });
    expect(named.labels).toEqual({ kind: 'single_label_classification', names: ['a', 'b', 'c'] });
    expect(named.model.labels).toEqual(['a', 'b', 'c']);
    const two = join(dir, 'two.csv');
    await writeFile(two, csv(rows(['a', 'b'])));
    const error = await finetune({ ...CLASSIFIER, model, train: two, steps: 2 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toMatch(/^train: the data has 2 labels \(a, b\), the model's head 3$/);
  });

  it('keeps a head’s named labels: a row with another label is a bad row', async () => {
    const model = join(TASKS, 'single'); // negative, neutral, positive
    const known = join(dir, 'known.jsonl');
    await writeFile(
      known,
      jsonl([
        { text: 'the river', label: 'positive' },
        { text: 'old house', label: 'negative' },
        { text: 'a crane', label: 'neutral' },
      ]),
    );
    const kept = await finetune({ ...CLASSIFIER, model, train: known, steps: 1 });
    expect(kept.labels.names).toEqual(['negative', 'neutral', 'positive']);
    const other = join(dir, 'other.jsonl');
    await writeFile(
      other,
      jsonl([
        { text: 'the river', label: 'positive' },
        { text: 'a crane', label: 'pos' },
      ]),
    );
    await expect(finetune({ ...CLASSIFIER, model, train: other, steps: 1 })).rejects.toThrow(
      `${other}:2 (column 'label'): the label 'pos' is not one of the model's (negative, neutral, positive)`,
    );
  });
});

describe('finetune: refusals', () => {
  it('names bad options before any work', async () => {
    const train = files.train;
    const cases: [FinetuneOptions, ErrorConstructor, RegExp][] = [
      [{ ...CLASSIFIER, train, bogus: 1 } as FinetuneOptions, TypeError, /^bogus: not an option of finetune$/],
      [{ train }, TypeError, /^model: required/],
      [{ model: MODEL }, TypeError, /^train: required/],
      [
        { ...CLASSIFIER, train, valid: files.valid, validSplit: 0.1 },
        RangeError,
        /^validSplit: give valid or validSplit, not both$/,
      ],
      [
        { ...CLASSIFIER, train, valid: files.valid, metric: 'f1' },
        RangeError,
        /^metric: a single_label_classification head is measured by accuracy, macroF1, macroPrecision, macroRecall, loss, not 'f1'$/,
      ],
      [
        { ...CLASSIFIER, train, earlyStopping: 2 },
        RangeError,
        /^earlyStopping: needs held-out data \(valid or validSplit\)$/,
      ],
      [{ ...CLASSIFIER, train, metric: 'loss' }, RangeError, /^metric: needs held-out data/],
      [{ ...CLASSIFIER, train, maxLen: 64 }, RangeError, /^maxLen: 64 is over the model's 32 positions$/],
      [{ ...CLASSIFIER, train, batchSize: 0 }, RangeError, /^batchSize:/],
      [{ ...CLASSIFIER, train, onStep: 'no' } as never, TypeError, /^onStep: expected a function/],
    ];
    for (const [options, type, message] of cases) {
      const error = await finetune(options).catch((e: unknown) => e);
      expect(error, String(message)).toBeInstanceOf(type);
      expect((error as Error).message).toMatch(message);
    }
  });

  it('rejects a diverged run with TrainingDivergedError and leaves the model in out as it was', async () => {
    const out = outDir('diverged');
    await finetune({ ...CLASSIFIER, train: files.train, steps: 2, out });
    const modelFiles = async () => {
      const names = (await readdir(out)).filter((n) => !/^(checkpoints|history\.jsonl|loss\.svg)$/.test(n)).sort();
      return Promise.all(names.map(async (n) => [n, (await readFile(join(out, n))).toString('base64')]));
    };
    const before = await modelFiles();
    const error = await finetune({
      ...CLASSIFIER,
      train: files.train,
      valid: files.valid,
      evalEvery: 1, // a best model saved on the way, and removed
      lr: 1e6,
      out,
      overwrite: true,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrainingDivergedError);
    expect((error as Error).message).toMatch(/^training diverged at step \d+: .*lower the learning rate/);
    expect((error as TrainingDivergedError).step).toBeGreaterThan(1);
    expect(await modelFiles()).toEqual(before);
    expect(await exists(join(out, 'best'))).toBe(false);
  });
});
