//! The pretraining losses: weighted masked-language-model cross-entropy and mean
//! next-sentence-prediction cross-entropy.

use candle_core::Tensor;

use crate::batch::Batch;
use crate::error::Result;
use crate::ops::cross_entropy::cross_entropy_per_row;

/// Keeps a zero total weight from dividing by zero, as the textbook does.
pub const MLM_WEIGHT_EPS: f64 = 1e-8;

/// The denominators of both losses: `Σ wᵢ + 1e-8` over a batch's MLM predictions, and its
/// number of rows. A shard of a data-parallel batch is scaled by the whole batch's, so the
/// shards' losses and gradients add up to exactly those of the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossScale {
    /// `Σ wᵢ + 1e-8`.
    pub mlm: f64,
    /// B.
    pub nsp: f64,
}

impl LossScale {
    /// The denominators of `batch` itself.
    pub fn of(batch: &Batch) -> Self {
        Self::of_all(std::slice::from_ref(batch))
    }

    /// The denominators of `batches` taken as one batch (gradient accumulation).
    pub fn of_all(batches: &[Batch]) -> Self {
        let total: f64 = batches.iter().flat_map(|b| &b.mlm_weights).map(|&w| f64::from(w)).sum();
        let rows: usize = batches.iter().map(|b| b.sequences.batch_size).sum();
        Self { mlm: total + MLM_WEIGHT_EPS, nsp: rows as f64 }
    }
}

/// `Σ wᵢ·CEᵢ / total` (total = `Σ wᵢ + 1e-8` of the batch): predictions with weight 0
/// (padding) add nothing to the loss nor to any gradient. `weights` is `[N]` in the logits'
/// dtype.
pub fn weighted_mlm_loss(logits: &Tensor, labels: &Tensor, weights: &Tensor, total: f64) -> Result<Tensor> {
    let weighted = (cross_entropy_per_row(logits, labels)? * weights)?.sum_all()?;
    Ok((weighted * (1.0 / total))?)
}

/// Cross-entropy of `[B, 2]` NSP logits against `[B]` u32 labels, summed and divided by
/// `count` (the batch's rows: the mean).
pub fn nsp_loss(logits: &Tensor, labels: &Tensor, count: f64) -> Result<Tensor> {
    Ok((cross_entropy_per_row(logits, labels)?.sum_all()? * (1.0 / count))?)
}
