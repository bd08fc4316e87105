//! Random but valid batches, for the core's tests and benchmarks (which include this file):
//! no corpus needed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use tsbert_core::batch::{Batch, Sequences};

/// `b` rows of length `l` with `p` predictions each, drawn from `seed`: word ids (≥ 5, past
/// the reserved tokens) inside a random valid length, `<pad>` (1) after it, a random split
/// into two segments, and the last prediction of every odd row padded (weight 0).
pub fn synthetic_batch(vocab_size: usize, b: usize, l: usize, p: usize, seed: u64) -> Batch {
    assert!(vocab_size > 5 && l >= 3 && p + 2 <= l, "synthetic_batch needs vocab > 5, l ≥ 3, p + 2 ≤ l");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let vocab = vocab_size as i32;
    let mut tokens = vec![1; b * l];
    let mut segments = vec![0; b * l];
    let mut valid_lens = Vec::with_capacity(b);
    let (mut pred_positions, mut mlm_weights, mut mlm_labels) = (vec![], vec![], vec![]);
    for row in 0..b {
        let valid = rng.random_range((p + 2).max(3)..=l);
        valid_lens.push(valid as i32);
        let split = rng.random_range(1..valid);
        for j in 0..valid {
            tokens[row * l + j] = rng.random_range(5..vocab);
            segments[row * l + j] = i32::from(j >= split);
        }
        for k in 0..p {
            let padded = k == p - 1 && row % 2 == 1;
            pred_positions.push(if padded { 0 } else { rng.random_range(1..valid as i32) });
            mlm_weights.push(if padded { 0.0 } else { 1.0 });
            mlm_labels.push(if padded { 0 } else { rng.random_range(5..vocab) });
        }
    }
    Batch {
        sequences: Sequences { batch_size: b, seq_len: l, tokens, segments, valid_lens },
        num_preds: p,
        pred_positions,
        mlm_weights,
        mlm_labels,
        nsp_labels: (0..b).map(|i| (i % 2) as i32).collect(),
    }
}
