//! Softmax over the last dimension: one CPU kernel with a one-pass backward
//! (`dx = y · (g - Σ g·y)`) for the attention weights, beside the composed candle version it
//! replaces (five full-size passes and temporaries forward and more backward, on the largest
//! activation of a block, `[B·heads, L, L]`), which other devices use. Also log-softmax, for
//! the composed cross-entropy.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor, WithDType, D};
use num_traits::Float;
use rayon::prelude::*;

use crate::ops::rows::{by_dtype, dot, last_dim_rows, max, sum, MIN_ROWS_A_TASK};
use crate::ops::runs_fused;

/// `exp(x) / Σ exp(x)` over the last dimension: the fused kernel on the CPU (f32, f64), the
/// composed candle ops elsewhere.
pub fn softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    if runs_fused(x) {
        fused_softmax_last_dim(x)
    } else {
        composed_softmax_last_dim(x)
    }
}

/// `x` minus its row maximum, which is detached: the results do not depend on it.
fn shifted(x: &Tensor) -> candle_core::Result<Tensor> {
    x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())
}

/// The softmax from differentiable candle ops (any device; the reference for the fused op).
pub fn composed_softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    let e = shifted(x)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// `x - log Σ exp(x)` over the last dimension, from differentiable candle ops.
pub fn log_softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    let s = shifted(x)?;
    let log_sum = s.exp()?.sum_keepdim(D::Minus1)?.log()?;
    s.broadcast_sub(&log_sum)
}

fn forward<T: WithDType + Float + Send + Sync>(x: &[T], n: usize) -> Vec<T> {
    let mut out = vec![T::zero(); x.len()];
    out.par_chunks_mut(n).zip(x.par_chunks(n)).with_min_len(MIN_ROWS_A_TASK).for_each(|(out, row)| {
        let top = max(row);
        for (o, &v) in out.iter_mut().zip(row) {
            *o = (v - top).exp();
        }
        let inv = T::one() / sum(out);
        out.iter_mut().for_each(|o| *o *= inv);
    });
    out
}

fn backward<T: WithDType + Float + Send + Sync>(y: &[T], g: &[T], n: usize) -> Vec<T> {
    let mut out = vec![T::zero(); y.len()];
    out.par_chunks_mut(n).zip(y.par_chunks(n).zip(g.par_chunks(n))).with_min_len(MIN_ROWS_A_TASK).for_each(
        |(out, (y, g))| {
            let yg = dot(y, g);
            for ((o, &yv), &gv) in out.iter_mut().zip(y).zip(g) {
                *o = yv * (gv - yg);
            }
        },
    );
    out
}

fn softmax_fwd<T: WithDType + Float + Send + Sync>(s: &CpuStorage, l: &Layout) -> candle_core::Result<Vec<T>> {
    let (x, n) = last_dim_rows::<T>(s, l, NAME)?;
    Ok(forward(x, n))
}

fn softmax_bwd<T: WithDType + Float + Send + Sync>(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
) -> candle_core::Result<Vec<T>> {
    let ((y, n), (g, _)) = (last_dim_rows::<T>(s1, l1, NAME)?, last_dim_rows::<T>(s2, l2, NAME)?);
    Ok(backward(y, g, n))
}

/// `exp(x) / Σ exp(x)` over the last dimension of a CPU f32/f64 tensor, with its backward
/// pass. The input is made contiguous first.
pub fn fused_softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(Softmax)
}

/// The forward op.
struct Softmax;

/// The backward op: (y, grad of y) → grad of x.
struct SoftmaxGrad;

const NAME: &str = "tsbert-softmax";

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((by_dtype!(NAME, storage, softmax_fwd(storage, layout)), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(res.apply_op2_no_bwd(&grad_res.contiguous()?, &SoftmaxGrad)?))
    }
}

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "tsbert-softmax-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!("{NAME}: backward shapes differ: {:?} {:?}", l1.shape(), l2.shape());
        }
        Ok((by_dtype!(NAME, s1, softmax_bwd(s1, l1, s2, l2)), l1.shape().clone()))
    }
}
