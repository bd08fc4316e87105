/** Random but valid batches for tests of the native addon (a seeded LCG, no data files). */
import type { BatchInput } from '../../src/native.js';

/** A tiny deterministic generator: integers in [lo, hi). */
export function lcg(seed: number): (lo: number, hi: number) => number {
  let state = seed >>> 0;
  return (lo, hi) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return lo + (state % (hi - lo));
  };
}

/** B rows of length L with P predictions each; every other row's last prediction padded. */
export function syntheticBatch(vocabSize: number, b: number, l: number, p: number, seed: number): BatchInput {
  const next = lcg(seed);
  const tokens = new Int32Array(b * l).fill(1);
  const segments = new Int32Array(b * l);
  const validLens = new Int32Array(b);
  const predPositions = new Int32Array(b * p);
  const mlmWeights = new Float32Array(b * p);
  const mlmLabels = new Int32Array(b * p);
  const nspLabels = new Int32Array(b);
  for (let row = 0; row < b; row++) {
    const valid = next(Math.max(p + 2, 3), l + 1);
    validLens[row] = valid;
    const split = next(1, valid);
    for (let j = 0; j < valid; j++) {
      tokens[row * l + j] = next(5, vocabSize);
      segments[row * l + j] = j >= split ? 1 : 0;
    }
    for (let k = 0; k < p; k++) {
      const padded = k === p - 1 && row % 2 === 1;
      predPositions[row * p + k] = padded ? 0 : next(1, valid);
      mlmWeights[row * p + k] = padded ? 0 : 1;
      mlmLabels[row * p + k] = padded ? 0 : next(5, vocabSize);
    }
    nspLabels[row] = row % 2;
  }
  return {
    batchSize: b,
    seqLen: l,
    numPreds: p,
    tokens,
    segments,
    validLens,
    predPositions,
    mlmWeights,
    mlmLabels,
    nspLabels,
  };
}
