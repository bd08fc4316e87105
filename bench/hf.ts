/**
 * `npm run bench:hf [-- --threads N]`: tsbert on a real Hugging Face model, all-MiniLM-L6-v2
 * (fetched once into bench/.cache/ by bench/reference/fetch-minilm.sh), against transformers and
 * sentence-transformers' recipe (bench/reference/hf_compare.py) on 1000 sentences of WikiText-2's
 * validation split: token ids identical, token states within 1e-4 (max abs), pooled embeddings
 * with cosine ≥ 0.99999; then embedding throughput in sentences/sec at batch 32 and 1 beside
 * PyTorch's and onnxruntime's on the same CPU in the same run (same threads, texts sorted by
 * length). Also: the Hugging Face fixtures (tied and untied decoder) trained 5 steps by tsbert
 * and exported in Hugging Face's format load in transformers with no tensor missing or
 * unexpected and the same logits (bench/reference/make_hf_fixtures.py --check-export). And
 * sentence-transformers' own settings: `embed()` at its defaults against
 * `SentenceTransformer(dir).encode()` on short and long texts, and tsbert's export of MiniLM
 * loaded by sentence-transformers (bench/reference/st_compare.py). And task models fine-tuned by
 * tsbert (each kind of head), exported and run by transformers' Auto classes and pipelines
 * (bench/task-exports.ts). Files go to bench/out/hf/.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

import { Command } from 'commander';

import { BertModel, embed, encode, syntheticBatch } from '../src/index.js';
import {
  miniLMFolder,
  outDir,
  positiveInteger,
  runPython,
  validationSentences,
  venvPython,
  WIKITEXT_VALID,
  writeSafetensors,
} from './support.js';
import { checkTaskExports } from './task-exports.js';

const SENTENCES = 1000;
const STATES = 100;

const { threads } = new Command('bench:hf')
  .option('--threads <n>', 'threads for every implementation', positiveInteger, availableParallelism())
  .parse()
  .opts<{ threads: number }>();
process.env.RAYON_NUM_THREADS = String(threads); // read when the core first computes

const python = venvPython();
const dir = outDir('hf');
const model = miniLMFolder('bench:hf');
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
// cut at the model's 512 positions as the transformers side is (sentence-transformers' own 256 is checked below)
const full = { maxLength: bert.config.maxPositions };
const embeddings = await embed(bert, sentences, full);
writeFileSync(join(dir, 'sentences.json'), JSON.stringify(sentences));
writeFileSync(join(dir, 'tsbert.json'), JSON.stringify({ ids, states: STATES }));
writeSafetensors(join(dir, 'tsbert.safetensors'), {
  states: { dtype: 'F32', shape: [tokens, bert.config.hidden], data: allStates },
  embeddings: { dtype: 'F32', shape: [...embeddings.shape], data: embeddings.data },
});

/** Sentences/sec of embedding `texts` in batches of `batchSize` (best of 3, after a warm-up). */
async function rate(texts: string[], batchSize: number): Promise<number> {
  await embed(bert, texts.slice(0, batchSize), { ...full, batchSize });
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    await embed(bert, texts, { ...full, batchSize });
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
  [
    "onnxruntime's export: PyTorch's states of a padded batch, max abs difference ≤ 1e-4",
    theirs.onnxMaxAbsStateDiff <= 1e-4,
    theirs.onnxMaxAbsStateDiff.toExponential(2),
  ],
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
// sentence-transformers' own settings: SentenceTransformer(dir).encode() at its defaults
// (modules.json's Normalize, the Pooling config, max_seq_length 256) against embed() at its
// defaults, on short texts and on long ones (cut at 256 tokens, not at the 512 positions);
// and the folder tsbert exports, loaded by sentence-transformers with the same modules
const long = Array.from({ length: 16 }, (_, i) => sentences.slice(i * 20, i * 20 + 10 + i * 2).join(' . '));
const stTexts = [...sentences.slice(0, 64), ...long];
const exportMiniLM = join(dir, 'export-minilm');
await bert.save(exportMiniLM, { format: 'huggingface' });
const ourVectors = await embed(bert, stTexts);
const reloaded = await embed(await BertModel.load(exportMiniLM), stTexts);
writeFileSync(join(dir, 'st-texts.json'), JSON.stringify(stTexts));
runPython(python, 'st_compare.py', ['--dir', dir, '--model', model, '--export', exportMiniLM]);
const st = JSON.parse(readFileSync(join(dir, 'st.json'), 'utf8'));
const longest = Math.max(...stTexts.map((t) => bert.tokenizer.encodeBatch([[t]])[0].ids.length));
/** The least cosine and largest absolute difference between `ours` (rows of `width`) and `theirs`, over rows `from`..`to`. */
function agreement(ours: Float32Array, theirs: number[][], from: number, to: number) {
  const width = ours.length / theirs.length;
  let [minCos, maxAbs] = [1, 0];
  for (let i = from; i < to; i++) {
    const a = ours.subarray(i * width, (i + 1) * width);
    const b = theirs[i];
    let [dot, na, nb] = [0, 0, 0];
    for (let j = 0; j < width; j++) {
      dot += a[j] * b[j];
      na += a[j] * a[j];
      nb += b[j] * b[j];
      maxAbs = Math.max(maxAbs, Math.abs(a[j] - b[j]));
    }
    minCos = Math.min(minCos, dot / Math.sqrt(na * nb));
  }
  return { minCos, maxAbs };
}
const short = agreement(ourVectors.data, st.source.vectors, 0, 64);
const longAgreement = agreement(ourVectors.data, st.source.vectors, 64, stTexts.length);
const exported = agreement(reloaded.data, st.export.vectors, 0, stTexts.length);
const stChecks = [
  [
    `64 short texts: least cosine ≥ 0.99999, max abs ≤ 1e-5`,
    short.minCos >= 0.99999 && short.maxAbs <= 1e-5,
    `${short.minCos.toFixed(7)}, ${short.maxAbs.toExponential(2)}`,
  ],
  [
    `16 long texts (up to ${longest} tokens; cut at ${st.source.maxSeqLength}): least cosine ≥ 0.99999, max abs ≤ 1e-5`,
    longAgreement.minCos >= 0.99999 && longAgreement.maxAbs <= 1e-5,
    `${longAgreement.minCos.toFixed(7)}, ${longAgreement.maxAbs.toExponential(2)}`,
  ],
  [
    `tsbert's export loads in sentence-transformers as ${st.export.modules.join(' → ')}, max_seq_length ${st.export.maxSeqLength}, same vectors`,
    st.export.modules.join() === st.source.modules.join() &&
      st.export.maxSeqLength === st.source.maxSeqLength &&
      exported.minCos >= 0.99999,
    exported.minCos.toFixed(7),
  ],
] as const;
console.log('');
console.log(
  `| embed() defaults against SentenceTransformer(dir).encode() (${st.source.modules.join(' → ')}) | measured | verdict |`,
);
console.log('| --- | ---: | --- |');
for (const [what, ok, value] of stChecks) console.log(`| ${what} | ${value} | ${ok ? 'PASS' : 'FAIL'} |`);

const failed = [...checks, ...stChecks].some(([, ok]) => !ok);
if (failed) process.exitCode = 1;

// fine-tuned task models: exported by tsbert, loaded and run by transformers and its pipelines
console.log('');
await checkTaskExports(python); // throws unless every model passes
