/**
 * `npm run bench:hf [-- --threads N]`: tsbert on a real Hugging Face model, all-MiniLM-L6-v2
 * (fetched once into bench/.cache/ by bench/reference/fetch-minilm.sh), against transformers and
 * sentence-transformers' recipe (bench/reference/hf_compare.py) on 1000 sentences of WikiText-2's
 * validation split: token ids identical, token states within 1e-4 (max abs), pooled embeddings
 * with cosine ≥ 0.99999; then embedding throughput in sentences/sec at batch 32 and 1 beside
 * PyTorch's and onnxruntime's on the same CPU in the same run (same threads, texts sorted by
 * length). Also: the Hugging Face fixtures (tied and untied decoder) trained 5 steps by tsbert
 * and exported in Hugging Face's format load in transformers with no tensor missing or
 * unexpected and the same logits (bench/reference/make_hf_fixtures.py --check-export). Files go
 * to bench/out/hf/.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

import { Command, InvalidArgumentError } from 'commander';

import { BertModel, embed, encode, syntheticBatch } from '../src/index.js';
import { outDir, runPython, validationSentences, venvPython, WIKITEXT_VALID, writeSafetensors } from './support.js';

const SENTENCES = 1000;
const STATES = 100;

const positive = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
};
const { threads } = new Command('bench:hf')
  .option('--threads <n>', 'threads for every implementation', positive, availableParallelism())
  .parse()
  .opts<{ threads: number }>();
process.env.RAYON_NUM_THREADS = String(threads); // read when the core first computes

const python = venvPython();
const dir = outDir('hf');
const model = join(import.meta.dirname, '.cache/all-MiniLM-L6-v2');
if (!existsSync(join(model, 'model.safetensors'))) {
  const fetched = spawnSync('bash', [join(import.meta.dirname, 'reference/fetch-minilm.sh')], { stdio: 'inherit' });
  if (fetched.status !== 0) throw new Error('bench:hf: could not fetch all-MiniLM-L6-v2 (see above)');
}
if (!existsSync(WIKITEXT_VALID)) {
  console.log(`bench:hf: ${WIKITEXT_VALID} is absent (no WikiText-2 beside the repository); nothing to compare`);
  process.exit(0);
}
const sentences = validationSentences(SENTENCES);

const bert = await BertModel.load(model);
console.log(
  `bench:hf: all-MiniLM-L6-v2 (${bert.paramCount} parameters), ${sentences.length} WikiText-2 validation sentences, ${threads} thread(s)`,
);
const ids = bert.tokenizer
  .encodeBatch(
    sentences.map((s) => [s] as const),
    { maxLength: bert.config.maxPositions },
  )
  .map((t) => Array.from(t.ids));
const states: Float32Array[] = [];
let tokens = 0;
for (const s of sentences.slice(0, STATES)) {
  const e = await encode(bert, s);
  states.push(e.data);
  tokens += e.tokens.length;
}
const allStates = new Float32Array(tokens * bert.config.hidden);
let at = 0;
for (const s of states) {
  allStates.set(s, at);
  at += s.length;
}
const embeddings = await embed(bert, sentences);
writeFileSync(join(dir, 'sentences.json'), JSON.stringify(sentences));
writeFileSync(join(dir, 'tsbert.json'), JSON.stringify({ ids, states: STATES }));
writeSafetensors(join(dir, 'tsbert.safetensors'), {
  states: { dtype: 'F32', shape: [tokens, bert.config.hidden], data: allStates },
  embeddings: { dtype: 'F32', shape: [...embeddings.shape], data: embeddings.data },
});

/** Sentences/sec of embedding `texts` in batches of `batchSize` (best of 3, after a warm-up). */
async function rate(texts: string[], batchSize: number): Promise<number> {
  await embed(bert, texts.slice(0, batchSize), { batchSize });
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    await embed(bert, texts, { batchSize });
    best = Math.min(best, (performance.now() - started) / 1000);
  }
  return texts.length / best;
}
const ours = { '32': await rate(sentences, 32), '1': await rate(sentences.slice(0, 200), 1) };

runPython(python, 'hf_compare.py', ['--dir', dir, '--model', model, '--threads', String(threads)]);
const theirs = JSON.parse(readFileSync(join(dir, 'hf.json'), 'utf8'));

const checks = [
  ['token ids identical to the fast tokenizer', theirs.sameTokenIds, String(theirs.sameTokenIds)],
  [
    `token states of ${STATES} sentences, max abs difference ≤ 1e-4`,
    theirs.maxAbsStateDiff <= 1e-4,
    theirs.maxAbsStateDiff.toExponential(2),
  ],
  ['pooled embeddings, least cosine ≥ 0.99999', theirs.minCosine >= 0.99999, theirs.minCosine.toFixed(7)],
] as const;
console.log('');
console.log('| parity with transformers + sentence-transformers mean pooling | measured | verdict |');
console.log('| --- | ---: | --- |');
for (const [what, ok, value] of checks) console.log(`| ${what} | ${value} | ${ok ? 'PASS' : 'FAIL'} |`);
console.log('');
console.log(
  `| sentences/sec, ${threads} thread(s) | tsbert | PyTorch ${theirs.torch} | onnxruntime ${theirs.onnxruntime} | tsbert / PyTorch | tsbert / onnxruntime |`,
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const b of ['32', '1'] as const) {
  const [t, p, o] = [ours[b], theirs.sentencesPerSec.torch[b], theirs.sentencesPerSec.onnxruntime[b]];
  console.log(
    `| batch ${b} | ${t.toFixed(1)} | ${p.toFixed(1)} | ${o.toFixed(1)} | ${(t / p).toFixed(2)}× | ${(t / o).toFixed(2)}× |`,
  );
}

// the export: a model trained a few steps by tsbert (from the fixtures made by transformers,
// tied and untied decoder, every bias and layer norm non-trivial), saved in Hugging Face's
// format, loaded by transformers: the same logits, and no tensor missing or unexpected
console.log('');
console.log(
  'export to Hugging Face of a model trained 5 steps, loaded by transformers (BertForPreTraining, AutoTokenizer):',
);
for (const fixture of ['model', 'model-untied']) {
  const trained = await BertModel.load(join(import.meta.dirname, '../crates/tsbert-core/tests/fixtures/hf', fixture), {
    lr: 1e-3,
  });
  for (let step = 0; step < 5; step++) {
    await trained.trainStep(syntheticBatch(trained.config.vocabSize, { batchSize: 8, seqLen: 16, seed: step }));
  }
  const exportDir = join(dir, `export-${fixture}`);
  await trained.save(exportDir, { format: 'huggingface' });
  const text = 'the crane is flying over the river';
  const [t] = trained.tokenizer.encodeBatch([[text]]);
  const l = t.ids.length;
  const out = await trained.forward({
    ...trained.tokenizer.pad([t]),
    numPreds: l,
    predPositions: Int32Array.from({ length: l }, (_, i) => i),
    mlmWeights: new Float32Array(l).fill(1),
    mlmLabels: t.ids,
    nspLabels: new Int32Array(1),
  });
  writeFileSync(
    join(exportDir, 'tsbert-outputs.json'),
    JSON.stringify({
      text,
      ids: Array.from(t.ids),
      mlmLogits: Array.from(out.mlmLogits.data),
      nspLogits: Array.from(out.nspLogits.data),
    }),
  );
  process.stdout.write(`${fixture} (tie_word_embeddings ${trained.config.tieWordEmbeddings}): `);
  runPython(python, 'make_hf_fixtures.py', ['--check-export', exportDir]); // throws unless it passes
}
const failed = checks.some(([, ok]) => !ok);
if (failed) process.exitCode = 1;
