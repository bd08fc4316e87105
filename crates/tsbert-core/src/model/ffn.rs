//! The position-wise feed-forward network.

use candle_core::Tensor;

use crate::error::Result;
use crate::model::linear::Linear;
use crate::params::ParamStore;

/// `dense2(relu(dense1(x)))`, applied at every position.
#[derive(Debug, Clone)]
pub struct PositionWiseFfn {
    dense1: Linear,
    dense2: Linear,
}

impl PositionWiseFfn {
    /// Creates `{prefix}.dense1` (`hidden → ffn_hidden`) and `{prefix}.dense2` (back).
    pub fn new(params: &mut ParamStore, prefix: &str, hidden: usize, ffn_hidden: usize) -> Result<Self> {
        Ok(Self {
            dense1: Linear::new(params, &format!("{prefix}.dense1"), hidden, ffn_hidden)?,
            dense2: Linear::new(params, &format!("{prefix}.dense2"), ffn_hidden, hidden)?,
        })
    }

    /// `[..., hidden]` → `[..., hidden]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.dense2.forward(&self.dense1.forward(x)?.relu()?)
    }
}
