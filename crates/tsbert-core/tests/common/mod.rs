//! Shared helpers of the core's integration tests: a tiny config and random valid batches.
#![allow(dead_code)]

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tsbert_core::adam::AdamConfig;
use tsbert_core::batch::Sequences;
use tsbert_core::{Batch, BertConfig, Trainer, TrainerOptions};

/// A model small enough for finite differences.
pub fn tiny_config(dropout: f64) -> BertConfig {
    BertConfig { vocab_size: 13, hidden: 8, ffn_hidden: 12, heads: 2, layers: 2, dropout, max_positions: 10 }
}

/// A trainer on the CPU in `dtype`.
pub fn trainer(config: BertConfig, seed: u64, lr: f64, dtype: DType) -> Trainer {
    let adam = AdamConfig { lr, ..AdamConfig::default() };
    Trainer::new(config, TrainerOptions { seed, adam, dtype, device: Device::Cpu }).unwrap()
}

/// A random valid batch: tokens ≥ 5 inside the valid length, `<pad>` (1) after it, the last
/// prediction of every other row padded (weight 0).
pub fn random_batch(config: &BertConfig, b: usize, l: usize, p: usize, seed: u64) -> Batch {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tokens = vec![1; b * l];
    let mut segments = vec![0; b * l];
    let mut valid_lens = Vec::new();
    let (mut pred_positions, mut mlm_weights, mut mlm_labels) = (vec![], vec![], vec![]);
    for row in 0..b {
        let valid = rng.random_range((p + 2).max(3)..=l);
        valid_lens.push(valid as i32);
        let split = rng.random_range(1..valid);
        for j in 0..valid {
            tokens[row * l + j] = rng.random_range(5..config.vocab_size as i32);
            segments[row * l + j] = i32::from(j >= split);
        }
        for k in 0..p {
            let padded = k == p - 1 && row % 2 == 1;
            pred_positions.push(if padded { 0 } else { rng.random_range(1..valid as i32) });
            mlm_weights.push(if padded { 0.0 } else { 1.0 });
            mlm_labels.push(if padded { 0 } else { rng.random_range(5..config.vocab_size as i32) });
        }
    }
    let nsp_labels = (0..b).map(|i| (i % 2) as i32).collect();
    Batch {
        sequences: Sequences { batch_size: b, seq_len: l, tokens, segments, valid_lens },
        num_preds: p,
        pred_positions,
        mlm_weights,
        mlm_labels,
        nsp_labels,
    }
}

/// All values of a tensor as f64.
pub fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
}
