//! Softmax and log-softmax over the last dimension, differentiable. The row maximum is
//! subtracted for stability and detached: the result does not depend on it.

use candle_core::{Tensor, D};

use crate::error::Result;
use crate::ops::runs_fused;
use crate::ops::softmax::fused_softmax_last_dim;

fn shifted(x: &Tensor) -> Result<Tensor> {
    Ok(x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?)
}

/// `exp(x) / Σ exp(x)` over the last dimension: one fused kernel on the CPU (f32, f64),
/// composed from candle ops elsewhere.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if runs_fused(x) {
        return Ok(fused_softmax_last_dim(x)?);
    }
    composed_softmax_last_dim(x)
}

/// The same softmax from differentiable candle ops (any device; the reference for the fused op).
pub fn composed_softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let e = shifted(x)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

/// `x - log Σ exp(x)` over the last dimension.
pub fn log_softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let s = shifted(x)?;
    let log_sum = s.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(s.broadcast_sub(&log_sum)?)
}
