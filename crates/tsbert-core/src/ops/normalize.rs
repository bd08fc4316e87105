//! Row normalisation `(x - mean) / sqrt(var + eps)` over the last dimension as one CPU kernel
//! with a one-pass backward: the core of layer norm (the affine weight and bias stay ordinary
//! differentiable ops). Composed from candle ops, layer norm costs about eight full passes and
//! temporaries forward and more backward, four times a block.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp3, DType, Layout, Shape, Tensor, WithDType};
use num_traits::Float;
use rayon::prelude::*;

use crate::ops::rows::{dot, last_dim_rows, sum, MIN_ROWS_A_TASK};

/// Writes `x - mean` of a row into `out`; returns `1 / sqrt(var + eps)` (biased variance).
fn center<T: Float>(row: &[T], out: &mut [T], eps: T) -> T {
    let n = T::from(row.len()).unwrap_or_else(T::nan);
    let mean = sum(row) / n;
    for (o, &v) in out.iter_mut().zip(row) {
        *o = v - mean;
    }
    T::one() / (dot(out, out) / n + eps).sqrt()
}

fn forward<T: WithDType + Float + Send + Sync>(x: &[T], h: usize, eps: T) -> Vec<T> {
    let mut out = vec![T::zero(); x.len()];
    out.par_chunks_mut(h).zip(x.par_chunks(h)).with_min_len(MIN_ROWS_A_TASK).for_each(|(out, row)| {
        let inv = center(row, out, eps);
        out.iter_mut().for_each(|o| *o = *o * inv);
    });
    out
}

/// `dx = inv · (g - mean(g) - x̂ · mean(g · x̂))` for each row.
fn backward<T: WithDType + Float + Send + Sync>(x: &[T], normed: &[T], grad: &[T], h: usize, eps: T) -> Vec<T> {
    let mut out = vec![T::zero(); x.len()];
    let n = T::from(h).unwrap_or_else(T::nan);
    out.par_chunks_mut(h)
        .zip(x.par_chunks(h).zip(normed.par_chunks(h)).zip(grad.par_chunks(h)))
        .with_min_len(MIN_ROWS_A_TASK)
        .for_each(|(out, ((row, xh), g))| {
            let inv = center(row, out, eps); // `out` is scratch until the last loop
            let (mean_g, mean_gx) = (sum(g) / n, dot(g, xh) / n);
            for ((o, &gv), &xv) in out.iter_mut().zip(g).zip(xh) {
                *o = inv * (gv - mean_g - xv * mean_gx);
            }
        });
    out
}

/// `(x - mean) / sqrt(var + eps)` over the last dimension of a CPU f32/f64 tensor, with its
/// backward pass. The input is made contiguous first.
pub fn normalize_last_dim(x: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(Normalize { eps })
}

/// The forward op.
struct Normalize {
    eps: f64,
}

/// The backward op: (x, x̂, grad of x̂) → grad of x.
struct NormalizeGrad {
    eps: f64,
}

const NAME: &str = "tsbert-normalize";

impl CustomOp1 for Normalize {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = match storage.dtype() {
            DType::F32 => {
                let (x, h) = last_dim_rows::<f32>(storage, layout, NAME)?;
                CpuStorage::F32(forward(x, h, self.eps as f32))
            }
            DType::F64 => {
                let (x, h) = last_dim_rows::<f64>(storage, layout, NAME)?;
                CpuStorage::F64(forward(x, h, self.eps))
            }
            other => candle_core::bail!("{NAME}: unsupported dtype {other:?}"),
        };
        Ok((out, layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let grad = grad_res.contiguous()?;
        Ok(Some(arg.apply_op3_no_bwd(res, &grad, &NormalizeGrad { eps: self.eps })?))
    }
}

impl CustomOp3 for NormalizeGrad {
    fn name(&self) -> &'static str {
        "tsbert-normalize-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() || l1.shape() != l3.shape() {
            candle_core::bail!("{NAME}: backward shapes differ: {:?} {:?} {:?}", l1.shape(), l2.shape(), l3.shape());
        }
        let out = match s1.dtype() {
            DType::F32 => {
                let ((x, h), (xh, _), (g, _)) = (last_dim_rows::<f32>(s1, l1, NAME)?, last_dim_rows::<f32>(s2, l2, NAME)?, last_dim_rows::<f32>(s3, l3, NAME)?);
                CpuStorage::F32(backward(x, xh, g, h, self.eps as f32))
            }
            DType::F64 => {
                let ((x, h), (xh, _), (g, _)) = (last_dim_rows::<f64>(s1, l1, NAME)?, last_dim_rows::<f64>(s2, l2, NAME)?, last_dim_rows::<f64>(s3, l3, NAME)?);
                CpuStorage::F64(backward(x, xh, g, h, self.eps))
            }
            other => candle_core::bail!("{NAME}: unsupported dtype {other:?}"),
        };
        Ok((out, l1.shape().clone()))
    }
}
