//! Layer normalisation over the last dimension, `(x - mean) / sqrt(var + eps) · w + b`. On the
//! CPU, the row normalisation is one kernel with a one-pass backward and the affine part is
//! [`crate::ops::row_affine`]'s kernel; composed from candle ops (the reference, and what
//! other devices run) the normalisation alone costs about six full passes and temporaries
//! forward and more backward, four times a block.

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor, WithDType, D};
use num_traits::Float;
use rayon::prelude::*;

use crate::ops::row_affine::fused_row_affine;
use crate::ops::rows::{by_dtype, dot, last_dim_rows, sum, TensorValues, MIN_ROWS_A_TASK};
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

/// Add & Norm: the layer norm of `y ⊙ dropout + residual` (`dropout`, if any, factors of `y`'s
/// shape): on the CPU (f32, f64) the sum and its normalisation are one op (no dropout and sum
/// nodes), the composed candle ops elsewhere.
pub fn add_and_norm(
    y: &Tensor,
    residual: &Tensor,
    dropout: Option<&Tensor>,
    (w, b): (&Tensor, &Tensor),
    eps: f64,
) -> candle_core::Result<Tensor> {
    if runs_fused(y) {
        fused_row_affine(&fused_add_normalize(y, residual, dropout, eps)?, w, b)
    } else {
        layer_norm(&composed_add(y, residual, dropout)?, w, b, eps)
    }
}

/// `y ⊙ dropout + residual` from candle's ops.
pub fn composed_add(y: &Tensor, residual: &Tensor, dropout: Option<&Tensor>) -> candle_core::Result<Tensor> {
    match dropout {
        Some(factors) => (y * factors)? + residual,
        None => y + residual,
    }
}

/// The normalisation of `y ⊙ dropout + residual` as one CPU op (f32, f64), which keeps the sum
/// for its backward pass.
pub fn fused_add_normalize(
    y: &Tensor,
    residual: &Tensor,
    dropout: Option<&Tensor>,
    eps: f64,
) -> candle_core::Result<Tensor> {
    if y.shape() != residual.shape() || dropout.is_some_and(|f| f.shape() != y.shape()) {
        candle_core::bail!(
            "{NAME}: y {:?}, residual {:?}, dropout {:?}",
            y.dims(),
            residual.dims(),
            dropout.map(|f| f.dims())
        )
    }
    let op = AddNormalize { eps, dropout: dropout.map(|f| f.contiguous()).transpose()?, sum: Mutex::new(None) };
    y.contiguous()?.apply_op2(&residual.contiguous()?, op)
}

/// `(x - mean) / sqrt(var + eps)` over the last dimension from differentiable candle ops (any
/// device; the reference for the fused op).
pub fn composed_normalize_last_dim(x: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let centered = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    centered.broadcast_div(&(var + eps)?.sqrt()?)
}

/// Writes `x - mean` of a row into `out`; returns `1 / sqrt(var + eps)` (biased variance).
#[inline(always)]
fn center<T: Float>(row: &[T], out: &mut [T], eps: T) -> T {
    let n = T::from(row.len()).unwrap_or_else(T::nan);
    let mean = sum(row) / n;
    for (o, &v) in out.iter_mut().zip(row) {
        *o = v - mean;
    }
    T::one() / (dot(out, out) / n + eps).sqrt()
}

widest_vectors! {
    /// Writes `(row - mean) / sqrt(var + eps)` into `out` (the normalisation of one row), compiled
    /// for the widest vectors the CPU has (the same arithmetic, so the same bits, on every CPU).
    pub(crate) fn normalize_row<T: Float + std::ops::MulAssign>(row: &[T], out: &mut [T], eps: T) {
        let inv = center(row, out, eps);
        out.iter_mut().for_each(|o| *o *= inv);
    }
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

/// `(y, residual)` → the normalisation of `y ⊙ dropout + residual`, keeping the sum.
struct AddNormalize {
    eps: f64,
    dropout: Option<Tensor>,
    sum: Mutex<Option<CpuStorage>>,
}

/// The sum `y ⊙ dropout + residual` of contiguous values.
fn add<T: WithDType + Float + Send + Sync>(y: &[T], residual: &[T], dropout: Option<&[T]>) -> Vec<T> {
    match dropout {
        Some(f) => y.par_iter().zip(residual).zip(f).map(|((&a, &r), &k)| a * k + r).collect(),
        None => y.par_iter().zip(residual).map(|(&a, &r)| a + r).collect(),
    }
}

/// `f` of the values of a contiguous CPU tensor, read in place.
fn tensor_values<T: WithDType>(t: &Tensor, f: impl FnOnce(&[T]) -> Vec<T>) -> candle_core::Result<Vec<T>> {
    Ok(f(TensorValues::of(t).slice(NAME)?))
}

impl AddNormalize {
    fn forward<T: WithDType + Float + Send + Sync>(
        &self,
        (s1, l1): (&CpuStorage, &Layout),
        (s2, l2): (&CpuStorage, &Layout),
    ) -> candle_core::Result<(Vec<T>, Vec<T>)> {
        let ((y, h), (residual, _)) = (last_dim_rows::<T>(s1, l1, NAME)?, last_dim_rows::<T>(s2, l2, NAME)?);
        let sum = match &self.dropout {
            Some(f) => tensor_values(f, |f| add(y, residual, Some(f)))?,
            None => add(y, residual, None),
        };
        let out = forward(&sum, h, T::from_f64(self.eps));
        Ok((out, sum))
    }

    /// The gradients of y and the residual from that of the output, `g`.
    fn backward<T: WithDType + Float + Send + Sync>(&self, sum: &[T], g: &Tensor) -> candle_core::Result<[Vec<T>; 2]> {
        let h = g.dims().last().copied().unwrap_or(1);
        let d_sum = tensor_values(g, |g| backward(sum, g, h, T::from_f64(self.eps)))?;
        let d_y = match &self.dropout {
            Some(f) => tensor_values(f, |f| d_sum.par_iter().zip(f).map(|(&d, &k)| d * k).collect())?,
            None => d_sum.clone(),
        };
        Ok([d_y, d_sum])
    }
}

impl CustomOp2 for AddNormalize {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (out, sum) = match s1.dtype() {
            DType::F32 => {
                let (out, sum) = self.forward::<f32>((s1, l1), (s2, l2))?;
                (CpuStorage::F32(out), CpuStorage::F32(sum))
            }
            DType::F64 => {
                let (out, sum) = self.forward::<f64>((s1, l1), (s2, l2))?;
                (CpuStorage::F64(out), CpuStorage::F64(sum))
            }
            other => candle_core::bail!("{NAME}: unsupported dtype {other:?}"),
        };
        *self.sum.lock().map_err(|_| candle_core::Error::Msg(format!("{NAME}: poisoned")))? = Some(sum);
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        y: &Tensor,
        _residual: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let sum = self.sum.lock().map_err(|_| candle_core::Error::Msg(format!("{NAME}: poisoned")))?;
        let [d_y, d_residual] = match sum.as_ref() {
            Some(CpuStorage::F32(sum)) => {
                self.backward(sum, &grad)?.map(|v| Tensor::from_vec(v, y.shape(), y.device()))
            }
            Some(CpuStorage::F64(sum)) => {
                self.backward(sum, &grad)?.map(|v| Tensor::from_vec(v, y.shape(), y.device()))
            }
            _ => candle_core::bail!("{NAME}: backward before forward"),
        };
        Ok((Some(d_y?), Some(d_residual?)))
    }
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
