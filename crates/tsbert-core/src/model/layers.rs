//! The building blocks every part of the model uses: a dense layer, layer normalisation and
//! dropout. Each computes through [`crate::ops`], which picks the fused CPU kernel or the
//! composed candle ops for the tensor's device.

use candle_core::{Shape, Tensor};

use crate::config::Activation;
use crate::error::Result;
use crate::ops::layer_norm::{add_and_norm, layer_norm};
use crate::ops::linear::{linear, linear_activated};
use crate::params::{Init, ParamStore};
use crate::rng::SeededRng;

/// PyTorch's epsilon for `nn.LayerNorm` (the textbook's layer norms use it).
pub const LAYER_NORM_EPS: f64 = 1e-5;

/// A fully connected layer, `y = x Wᵀ + b`; `weight` is `[out, in]` as in PyTorch.
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
        params.exclude_from_decay(&format!("{prefix}.bias"));
        Ok(Self { weight, bias })
    }

    /// `[..., in]` → `[..., out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(linear(x, &self.weight, &self.bias)?)
    }

    /// `activation(x · Wᵀ + b)`, `[..., in]` → `[..., out]`.
    pub fn forward_activated(&self, x: &Tensor, activation: Activation) -> Result<Tensor> {
        Ok(linear_activated(x, &self.weight, &self.bias, activation)?)
    }

    /// The weight `[out, in]` and the bias `[out]`.
    pub fn weight_and_bias(&self) -> (&Tensor, &Tensor) {
        (&self.weight, &self.bias)
    }
}

/// `x · Wᵀ + b` for `[rows, in]` `x` and `[out, in]` `W`, with the bias folded into the matrix
/// product (`[x, 1] · [W | b]ᵀ`): one output tensor instead of two, and the bias gradient comes
/// from the product rather than from a column sum. Worth it where the output is large (the
/// MLM head's `[predictions, vocab]` logits).
pub fn folded_product(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let ones = Tensor::ones((x.dim(0)?, 1), x.dtype(), x.device())?;
    let x1 = Tensor::cat(&[x, &ones], 1)?;
    let wb = Tensor::cat(&[weight, &bias.unsqueeze(1)?], 1)?;
    Ok(x1.matmul(&wb.t()?)?)
}

/// Layer normalisation over the last dimension with a learned scale and shift:
/// `(x - mean) / sqrt(var + eps) * weight + bias`, with the biased variance.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// Creates `{prefix}.weight` (ones) and `{prefix}.bias` (zeros) of width `dim`.
    pub fn new(params: &mut ParamStore, prefix: &str, dim: usize, eps: f64) -> Result<Self> {
        let weight = params.create(&format!("{prefix}.weight"), &[dim], Init::Constant(1.0))?;
        let bias = params.create(&format!("{prefix}.bias"), &[dim], Init::Constant(0.0))?;
        params.exclude_from_decay(&format!("{prefix}.weight"));
        params.exclude_from_decay(&format!("{prefix}.bias"));
        Ok(Self { weight, bias, eps })
    }

    /// The scale `[dim]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The shift `[dim]`.
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// The epsilon added to the variance.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// Add & Norm: normalises `y ⊙ dropout + residual` over its last dimension.
    pub fn forward_residual(&self, y: &Tensor, residual: &Tensor, dropout: Option<&Tensor>) -> Result<Tensor> {
        Ok(add_and_norm(y, residual, dropout, (&self.weight, &self.bias), self.eps)?)
    }

    /// Normalises `x` over its last dimension.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(layer_norm(x, &self.weight, &self.bias, self.eps)?)
    }
}

/// How a forward pass runs: training (dropout on) or inference.
pub enum Mode<'a> {
    /// A training step: dropout masks drawn from this seeded stream.
    Train(&'a mut SeededRng),
    /// Inference: no dropout.
    Eval,
}

impl Mode<'_> {
    /// The factors of inverted dropout with probability `p` for a tensor of `shape` like
    /// `like` (each 0 with probability `p`, else `1/(1-p)`), in training mode; `None` otherwise
    /// (or when `p` = 0).
    pub fn dropout_factors(&mut self, shape: impl Into<Shape>, p: f64, like: &Tensor) -> Result<Option<Tensor>> {
        match self {
            Mode::Train(rng) if p > 0.0 => Ok(Some(rng.dropout_mask(shape, p, like.dtype(), like.device())?)),
            _ => Ok(None),
        }
    }

    /// Inverted dropout with probability `p` on `x` in training mode; `x` unchanged otherwise
    /// (or when `p` = 0).
    pub fn dropout(&mut self, x: &Tensor, p: f64) -> Result<Tensor> {
        match self.dropout_factors(x.shape(), p, x)? {
            Some(factors) => Ok(x.mul(&factors)?),
            None => Ok(x.clone()),
        }
    }
}
