//! The pretraining losses: weighted masked-language-model cross-entropy and mean
//! next-sentence-prediction cross-entropy.

use candle_core::Tensor;

use crate::error::Result;
use crate::model::softmax::log_softmax_last_dim;

/// Keeps a zero total weight from dividing by zero, as the textbook does.
pub const MLM_WEIGHT_EPS: f64 = 1e-8;

/// `-log softmax(logits)[label]` for every row: `[N, C]` logits, `[N]` u32 labels → `[N]`.
pub fn cross_entropy_per_row(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let picked = log_softmax_last_dim(logits)?.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?;
    Ok(picked.neg()?)
}

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
