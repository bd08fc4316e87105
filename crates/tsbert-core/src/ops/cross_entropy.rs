//! Row-wise cross-entropy `logsumexp(x) - x[label]` as one CPU kernel with a real backward.
//!
//! Composed from candle ops, the MLM loss over `[N, vocab]` logits (N ≈ 5000, vocab ≈ 20000
//! in the textbook run) makes about ten full-size temporaries forward and backward. Fused,
//! the forward reads the logits twice and writes `[N]` losses, and the backward writes the
//! gradient `g · (softmax(x) - onehot(label))` in one pass, recovering `logsumexp` from the
//! saved loss. Other devices use the composed version.

use std::sync::Arc;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor, WithDType};
use num_traits::Float;
use rayon::prelude::*;

use crate::error::Result;
use crate::ops::rows::{by_dtype, last_dim_rows};
use crate::ops::runs_fused;
use crate::ops::softmax::log_softmax_last_dim;

/// `-log softmax(logits)[label]` for every row: `[N, C]` logits, `[N]` u32 labels → `[N]`.
/// Fused on the CPU (f32, f64); composed from differentiable candle ops elsewhere.
pub fn cross_entropy_per_row(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    if runs_fused(logits) {
        fused_cross_entropy_per_row(logits, labels)
    } else {
        composed_cross_entropy_per_row(logits, labels)
    }
}

/// The loss as one CPU kernel (f32, f64) with its one-pass backward.
pub fn fused_cross_entropy_per_row(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let op = CrossEntropy { labels: Arc::new(labels.to_vec1::<u32>()?) };
    Ok(logits.contiguous()?.apply_op1(op)?)
}

/// The same loss from differentiable candle ops (any device; the reference for the fused op).
pub fn composed_cross_entropy_per_row(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let picked = log_softmax_last_dim(logits)?.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?;
    Ok(picked.neg()?)
}

/// The forward op: logits → per-row loss.
struct CrossEntropy {
    labels: Arc<Vec<u32>>,
}

/// The backward op: logits → `grad[r] · (softmax(x_r) - onehot(label_r))`.
struct CrossEntropyGrad {
    labels: Arc<Vec<u32>>,
    losses: Vec<f64>,
    grads: Vec<f64>,
}

/// The contiguous rows of a `[N, C]` storage.
fn rows<'a, T: WithDType>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<(&'a [T], usize, usize)> {
    let (n, c) = layout.shape().dims2()?;
    let (x, _) = last_dim_rows(storage, layout, NAME)?;
    Ok((x, n, c))
}

fn log_sum_exp<T: Float>(row: &[T]) -> T {
    let max = row.iter().copied().fold(T::neg_infinity(), T::max);
    max + row.iter().map(|&x| (x - max).exp()).fold(T::zero(), |a, b| a + b).ln()
}

fn forward<T: WithDType + Float + Send + Sync>(x: &[T], c: usize, labels: &[u32]) -> Vec<T> {
    x.par_chunks(c).zip(labels.par_iter()).map(|(row, &label)| log_sum_exp(row) - row[label as usize]).collect()
}

fn backward<T: WithDType + Float + Send + Sync>(x: &[T], c: usize, op: &CrossEntropyGrad) -> Vec<T> {
    let mut out = vec![T::zero(); x.len()];
    out.par_chunks_mut(c).zip(x.par_chunks(c)).enumerate().for_each(|(r, (out, row))| {
        let label = op.labels[r] as usize;
        let g = T::from(op.grads[r]).expect("finite gradient");
        let lse = T::from(op.losses[r]).expect("finite loss") + row[label];
        for (o, &v) in out.iter_mut().zip(row) {
            *o = g * (v - lse).exp();
        }
        out[label] -= g;
    });
    out
}

/// The prefix of this op's error messages.
const NAME: &str = "cross-entropy";

fn loss_fwd<T: WithDType + Float + Send + Sync>(
    storage: &CpuStorage,
    layout: &Layout,
    labels: &[u32],
) -> candle_core::Result<Vec<T>> {
    let (x, n, c) = rows::<T>(storage, layout)?;
    check_labels(labels, n, c)?;
    Ok(forward(x, c, labels))
}

fn grad_fwd<T: WithDType + Float + Send + Sync>(
    storage: &CpuStorage,
    layout: &Layout,
    op: &CrossEntropyGrad,
) -> candle_core::Result<Vec<T>> {
    let (x, _, c) = rows::<T>(storage, layout)?;
    Ok(backward(x, c, op))
}

fn check_labels(labels: &[u32], n: usize, c: usize) -> candle_core::Result<()> {
    if labels.len() != n {
        candle_core::bail!("cross-entropy: {} labels for {n} rows", labels.len());
    }
    if let Some(bad) = labels.iter().find(|&&l| l as usize >= c) {
        candle_core::bail!("cross-entropy: label {bad} out of range for {c} classes");
    }
    Ok(())
}

impl CustomOp1 for CrossEntropy {
    fn name(&self) -> &'static str {
        "tsbert-cross-entropy"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((by_dtype!(NAME, storage, loss_fwd(storage, layout, &self.labels)), Shape::from(self.labels.len())))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let op = CrossEntropyGrad {
            labels: Arc::clone(&self.labels),
            losses: res.to_dtype(DType::F64)?.to_vec1()?,
            grads: grad_res.to_dtype(DType::F64)?.to_vec1()?,
        };
        Ok(Some(arg.apply_op1_no_bwd(&op)?))
    }
}

impl CustomOp1 for CrossEntropyGrad {
    fn name(&self) -> &'static str {
        "tsbert-cross-entropy-grad"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((by_dtype!(NAME, storage, grad_fwd(storage, layout, self)), layout.shape().clone()))
    }
}
