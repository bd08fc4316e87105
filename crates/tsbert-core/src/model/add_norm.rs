//! The residual connection followed by layer normalisation (post-LN).

use candle_core::Tensor;

use crate::error::Result;
use crate::model::layer_norm::LayerNorm;
use crate::model::mode::Mode;
use crate::params::ParamStore;

/// `LayerNorm(dropout(y) + x)`.
#[derive(Debug, Clone)]
pub struct AddNorm {
    ln: LayerNorm,
}

impl AddNorm {
    /// Creates `{prefix}.ln.weight` and `{prefix}.ln.bias`.
    pub fn new(params: &mut ParamStore, prefix: &str, dim: usize) -> Result<Self> {
        Ok(Self { ln: LayerNorm::new(params, &format!("{prefix}.ln"), dim)? })
    }

    /// Adds the sub-layer output `y` (after dropout) to its input `x`, then normalises.
    pub fn forward(&self, x: &Tensor, y: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        self.ln.forward(&(mode.dropout(y)? + x)?)
    }
}
