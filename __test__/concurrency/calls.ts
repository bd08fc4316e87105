/**
 * A child process for the concurrency tests: many calls on one model at once, then the same
 * calls one after another on an identical model. Prints one JSON line: whether the results
 * agree bit for bit. (Run as a child so that a hang is a timeout, not a stuck test runner.)
 *
 * Usage: node --import tsx calls.ts <kind: train|embed|mixed|task> <calls> <rounds>
 *
 * `task`: a model with a classifier head; its training steps (`trainTaskStep`, one batch or
 * two accumulated), `classify` and `rerank`-free scoring calls interleaved.
 */
import { BertModel, classify, embed, RESERVED_TOKENS, syntheticBatch, Vocab } from '../../src/index.js';

const [kind, calls, rounds] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const vocab = Vocab.fromJSON({ tokens: [...RESERVED_TOKENS, ...Array.from({ length: 40 }, (_, i) => `w${i}`)] });
const base = { hidden: 32, ffnHidden: 64, heads: 2, layers: 2, maxPositions: 64 };
const config =
  kind === 'task'
    ? {
        ...base,
        mlmHead: false,
        nspHead: false,
        pooler: true,
        task: { kind: 'single_label_classification' as const, numLabels: 3 },
      }
    : base;
const batches = Array.from({ length: calls }, (_, i) =>
  syntheticBatch(vocab.size, { batchSize: 8, seqLen: 24, numPreds: 4, seed: i }),
);
const texts = Array.from({ length: 64 }, (_, i) =>
  Array.from({ length: 4 + (i % 40) }, (_, j) => `w${(i * j) % 40}`).join(' '),
);

/** The calls of one round on `model`, all at once or one after another; their results as bytes. */
async function round(model: BertModel, together: boolean): Promise<string> {
  const call = (i: number): Promise<unknown> => {
    if (kind === 'task') {
      const labels = Int32Array.from({ length: 8 }, (_, r) => (i + r) % 3);
      if (i % 4 === 0) return model.trainTaskStep(batches[i], labels);
      if (i % 4 === 1) return model.trainTaskStep([batches[i], batches[(i + 1) % calls]], [labels, labels]);
      return classify(model, texts.slice(i % 16, (i % 16) + 12), { topK: null, batchSize: 4 });
    }
    if (kind === 'train' || (kind === 'mixed' && i % 3 === 0)) return model.trainStep(batches[i]);
    return embed(model, texts.slice(i % 16, (i % 16) + 24 + (i % 9)), { batchSize: 4 });
  };
  const results = together
    ? await Promise.all(Array.from({ length: calls }, (_, i) => call(i)))
    : await (async () => {
        const out: unknown[] = [];
        for (let i = 0; i < calls; i++) out.push(await call(i));
        return out;
      })();
  const heads =
    kind === 'task' ? Array.from((await model.taskLogits(batches[0])).data) : await model.forward(batches[0]); // the heads' weights too
  const encoded = await embed(model, texts.slice(0, 8));
  return JSON.stringify([
    results.map((r) => (r instanceof Object && 'data' in r ? Array.from((r as { data: Float32Array }).data) : r)),
    Array.from(encoded.data),
    kind === 'task' ? heads : [(heads as { mlmLoss: number }).mlmLoss, (heads as { nspLoss: number }).nspLoss],
  ]);
}

let differing = 0;
for (let r = 0; r < rounds; r++) {
  const a = BertModel.create(vocab, { config, seed: r, lr: 1e-3 });
  const b = BertModel.create(vocab, { config, seed: r, lr: 1e-3 });
  if ((await round(a, true)) !== (await round(b, false))) differing++;
  a.dispose();
  b.dispose();
}
console.log(JSON.stringify({ rounds, differing }));
