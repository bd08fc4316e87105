//! Layer normalisation over the last dimension. candle's fused `layer_norm` has no backward
//! pass; ours normalises and applies the affine weight and bias in fused kernels with their
//! own backward on the CPU ([`crate::ops::normalize`], [`crate::ops::row_affine`]) and from
//! differentiable candle ops elsewhere.

use candle_core::{Tensor, D};

use crate::error::Result;
use crate::ops::normalize::normalize_last_dim;
use crate::ops::row_affine::row_affine;
use crate::ops::runs_fused;
use crate::params::{Init, ParamStore};

/// PyTorch's epsilon for `nn.LayerNorm`.
pub const LAYER_NORM_EPS: f64 = 1e-5;

/// `(x - mean) / sqrt(var + eps) * weight + bias`, with the biased variance.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    /// Creates `{prefix}.weight` (ones) and `{prefix}.bias` (zeros) of width `dim`.
    pub fn new(params: &mut ParamStore, prefix: &str, dim: usize) -> Result<Self> {
        let weight = params.create(&format!("{prefix}.weight"), &[dim], Init::Constant(1.0))?;
        let bias = params.create(&format!("{prefix}.bias"), &[dim], Init::Constant(0.0))?;
        Ok(Self { weight, bias })
    }

    /// Normalises `x` over its last dimension.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if runs_fused(x) {
            let normed = normalize_last_dim(x, LAYER_NORM_EPS)?;
            return Ok(row_affine(&normed, &self.weight, &self.bias)?);
        }
        Ok(composed_normalize_last_dim(x)?.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)?)
    }
}

/// `(x - mean) / sqrt(var + eps)` over the last dimension from differentiable candle ops (any
/// device; the reference for the fused op).
pub fn composed_normalize_last_dim(x: &Tensor) -> Result<Tensor> {
    let centered = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    Ok(centered.broadcast_div(&(var + LAYER_NORM_EPS)?.sqrt()?)?)
}
