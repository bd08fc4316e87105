//! Layer normalisation over the last dimension, `(x - mean) / sqrt(var + eps) · w + b`. On the
//! CPU, the row normalisation is one kernel with a one-pass backward and the affine part is
//! [`crate::ops::row_affine`]'s kernel; composed from candle ops (the reference, and what
//! other devices run) the normalisation alone costs about six full passes and temporaries
//! forward and more backward, four times a block.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor, WithDType, D};
use num_traits::Float;
use rayon::prelude::*;

use crate::ops::row_affine::fused_row_affine;
use crate::ops::rows::{by_dtype, dot, last_dim_rows, sum, MIN_ROWS_A_TASK};
use crate::ops::runs_fused;

/// Layer norm of `x` over its last dimension with scale `w` and shift `b` (biased variance):
/// the fused kernels on the CPU (f32, f64), the composed candle ops elsewhere.
pub fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    if runs_fused(x) {
        fused_row_affine(&fused_normalize_last_dim(x, eps)?, w, b)
    } else {
        composed_normalize_last_dim(x, eps)?.broadcast_mul(w)?.broadcast_add(b)
    }
}

/// `(x - mean) / sqrt(var + eps)` over the last dimension from differentiable candle ops (any
/// device; the reference for the fused op).
pub fn composed_normalize_last_dim(x: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let centered = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    centered.broadcast_div(&(var + eps)?.sqrt()?)
}

/// Writes `x - mean` of a row into `out`; returns `1 / sqrt(var + eps)` (biased variance).
fn center<T: Float>(row: &[T], out: &mut [T], eps: T) -> T {
    let n = T::from(row.len()).unwrap_or_else(T::nan);
    let mean = sum(row) / n;
    for (o, &v) in out.iter_mut().zip(row) {
        *o = v - mean;
    }
    T::one() / (dot(out, out) / n + eps).sqrt()
}

/// Writes `(row - mean) / sqrt(var + eps)` into `out` (the normalisation of one row).
pub(crate) fn normalize_row<T: Float + std::ops::MulAssign>(row: &[T], out: &mut [T], eps: T) {
    let inv = center(row, out, eps);
    out.iter_mut().for_each(|o| *o *= inv);
}

fn forward<T: WithDType + Float + Send + Sync>(x: &[T], h: usize, eps: T) -> Vec<T> {
    let mut out = vec![T::zero(); x.len()];
    out.par_chunks_mut(h)
        .zip(x.par_chunks(h))
        .with_min_len(MIN_ROWS_A_TASK)
        .for_each(|(out, row)| normalize_row(row, out, eps));
    out
}

/// `dx = inv · (g - mean(g) - x̂ · mean(g · x̂))` for each row, with `x̂ = (x - mean) · inv`
/// recomputed from `x`.
fn backward<T: WithDType + Float + Send + Sync>(x: &[T], grad: &[T], h: usize, eps: T) -> Vec<T> {
    let mut out = vec![T::zero(); x.len()];
    let n = T::from(h).unwrap_or_else(T::nan);
    out.par_chunks_mut(h).zip(x.par_chunks(h).zip(grad.par_chunks(h))).with_min_len(MIN_ROWS_A_TASK).for_each(
        |(out, (row, g))| {
            let inv = center(row, out, eps); // `out` holds x - mean until the last loop
            let (mean_g, mean_gx) = (sum(g) / n, dot(g, out) * inv / n);
            for (o, &gv) in out.iter_mut().zip(g) {
                *o = inv * (gv - mean_g - *o * inv * mean_gx);
            }
        },
    );
    out
}

fn normalize_fwd<T: WithDType + Float + Send + Sync>(
    s: &CpuStorage,
    l: &Layout,
    eps: f64,
) -> candle_core::Result<Vec<T>> {
    let (x, h) = last_dim_rows::<T>(s, l, NAME)?;
    Ok(forward(x, h, T::from_f64(eps)))
}

fn normalize_bwd<T: WithDType + Float + Send + Sync>(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    eps: f64,
) -> candle_core::Result<Vec<T>> {
    let ((x, h), (g, _)) = (last_dim_rows::<T>(s1, l1, NAME)?, last_dim_rows::<T>(s2, l2, NAME)?);
    Ok(backward(x, g, h, T::from_f64(eps)))
}

/// `(x - mean) / sqrt(var + eps)` over the last dimension of a CPU f32/f64 tensor, with its
/// backward pass. The input is made contiguous first.
pub fn fused_normalize_last_dim(x: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(Normalize { eps })
}

/// The forward op.
struct Normalize {
    eps: f64,
}

/// The backward op: (x, grad of x̂) → grad of x.
struct NormalizeGrad {
    eps: f64,
}

const NAME: &str = "tsbert-normalize";

impl CustomOp1 for Normalize {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((by_dtype!(NAME, storage, normalize_fwd(storage, layout, self.eps)), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(arg.apply_op2_no_bwd(&grad_res.contiguous()?, &NormalizeGrad { eps: self.eps })?))
    }
}

impl CustomOp2 for NormalizeGrad {
    fn name(&self) -> &'static str {
        "tsbert-normalize-grad"
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
        Ok((by_dtype!(NAME, s1, normalize_bwd(s1, l1, s2, l2, self.eps)), l1.shape().clone()))
    }
}
