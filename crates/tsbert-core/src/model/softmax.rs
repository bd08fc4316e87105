//! Softmax and log-softmax over the last dimension, differentiable. The row maximum is
//! subtracted for stability and detached: the result does not depend on it.

use candle_core::{Tensor, D};

use crate::error::Result;

fn shifted(x: &Tensor) -> Result<Tensor> {
    Ok(x.broadcast_sub(&x.max_keepdim(D::Minus1)?.detach())?)
}

/// `exp(x) / Σ exp(x)` over the last dimension.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let e = shifted(x)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

/// `x - log Σ exp(x)` over the last dimension.
pub fn log_softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let s = shifted(x)?;
    let log_sum = s.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(s.broadcast_sub(&log_sum)?)
}
