//! The masked-language-model head.

use candle_core::Tensor;

use crate::config::BertConfig;
use crate::error::Result;
use crate::model::layer_norm::LayerNorm;
use crate::model::linear::Linear;
use crate::params::ParamStore;

/// `Linear(hidden, hidden) → ReLU → LayerNorm → Linear(hidden, vocab)` on the encoder
/// outputs at the predicted positions (`mlm.mlp.0`, `mlm.mlp.2`, `mlm.mlp.3`).
#[derive(Debug, Clone)]
pub struct MlmHead {
    dense: Linear,
    ln: LayerNorm,
    output: Linear,
}

impl MlmHead {
    /// Creates the head's parameters under `mlm.mlp`.
    pub fn new(params: &mut ParamStore, config: &BertConfig) -> Result<Self> {
        let h = config.hidden;
        Ok(Self {
            dense: Linear::new(params, "mlm.mlp.0", h, h)?,
            ln: LayerNorm::new(params, "mlm.mlp.2", h)?,
            output: Linear::new(params, "mlm.mlp.3", h, config.vocab_size)?,
        })
    }

    /// `encoded` `[B, L, hidden]`, `flat_positions` `[N]` u32 indices into the `B·L` rows
    /// (`row · L + position`) → logits `[N, vocab]`.
    pub fn forward(&self, encoded: &Tensor, flat_positions: &Tensor) -> Result<Tensor> {
        let h = encoded.dim(2)?;
        let rows = encoded.reshape(((), h))?.index_select(flat_positions, 0)?;
        self.output.forward_folded(&self.ln.forward(&self.dense.forward(&rows)?.relu()?)?)
    }
}
