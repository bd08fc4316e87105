//! A dense layer with bias, `y = x Wᵀ + b`, over the last dimension of any-rank input.

use candle_core::Tensor;

use crate::error::Result;
use crate::ops::row_affine::add_row_bias;
use crate::ops::runs_fused;
use crate::params::{Init, ParamStore};

/// A fully connected layer; `weight` is `[out, in]` as in PyTorch.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    /// Creates `{prefix}.weight` `[out, in]` and `{prefix}.bias` `[out]`, PyTorch-initialised.
    pub fn new(params: &mut ParamStore, prefix: &str, in_dim: usize, out_dim: usize) -> Result<Self> {
        let weight = params.create(&format!("{prefix}.weight"), &[out_dim, in_dim], Init::FanIn(in_dim))?;
        let bias = params.create(&format!("{prefix}.bias"), &[out_dim], Init::FanIn(in_dim))?;
        Ok(Self { weight, bias })
    }

    /// `[rows, in]` → `[rows, out]` with the bias folded into the matrix product
    /// (`[x, 1] · [W | b]ᵀ`): one output tensor instead of two, and the bias gradient comes
    /// from the product rather than from a strided column sum. Worth it where the output is
    /// large (the MLM head's `[predictions, vocab]` logits).
    pub fn forward_folded(&self, x: &Tensor) -> Result<Tensor> {
        let rows = x.dim(0)?;
        let ones = Tensor::ones((rows, 1), x.dtype(), x.device())?;
        let x1 = Tensor::cat(&[x, &ones], 1)?;
        let wb = Tensor::cat(&[&self.weight, &self.bias.unsqueeze(1)?], 1)?;
        Ok(x1.matmul(&wb.t()?)?)
    }

    /// `[..., in]` → `[..., out]`. Leading dimensions are flattened into one matrix product.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let in_dim = dims[dims.len() - 1];
        let rows = x.elem_count() / in_dim;
        let out_dim = self.weight.dim(0)?;
        let product = x.reshape((rows, in_dim))?.matmul(&self.weight.t()?)?;
        let y = if runs_fused(&product) {
            add_row_bias(&product, &self.bias)?
        } else {
            product.broadcast_add(&self.bias)?
        };
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().expect("rank ≥ 1") = out_dim;
        Ok(y.reshape(out_dims)?)
    }
}
