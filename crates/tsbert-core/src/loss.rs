//! The pretraining losses: weighted masked-language-model cross-entropy and mean
//! next-sentence-prediction cross-entropy.

use candle_core::Tensor;

use crate::error::Result;
pub use crate::ops::cross_entropy::cross_entropy_per_row;

/// Keeps a zero total weight from dividing by zero, as the textbook does.
pub const MLM_WEIGHT_EPS: f64 = 1e-8;

/// `Σ wᵢ·CEᵢ / (Σ wᵢ + 1e-8)`: predictions with weight 0 (padding) add nothing to the loss
/// nor to any gradient. `weights` is `[N]` in the logits' dtype.
pub fn weighted_mlm_loss(logits: &Tensor, labels: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let weighted = (cross_entropy_per_row(logits, labels)? * weights)?.sum_all()?;
    let total = (weights.sum_all()? + MLM_WEIGHT_EPS)?;
    Ok(weighted.div(&total)?)
}

/// Mean cross-entropy of `[B, 2]` NSP logits against `[B]` u32 labels.
pub fn nsp_loss(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    Ok(cross_entropy_per_row(logits, labels)?.mean_all()?)
}
