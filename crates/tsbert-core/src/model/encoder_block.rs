//! One post-LN transformer encoder block.

use candle_core::Tensor;

use crate::config::BertConfig;
use crate::error::Result;
use crate::model::add_norm::AddNorm;
use crate::model::attention::MultiHeadAttention;
use crate::model::ffn::PositionWiseFfn;
use crate::model::mode::Mode;
use crate::params::ParamStore;

/// Self-attention → Add & Norm → feed-forward → Add & Norm.
#[derive(Debug, Clone)]
pub struct EncoderBlock {
    attention: MultiHeadAttention,
    addnorm1: AddNorm,
    ffn: PositionWiseFfn,
    addnorm2: AddNorm,
}

impl EncoderBlock {
    /// Creates block `index`'s parameters under `encoder.blks.{index}`.
    pub fn new(params: &mut ParamStore, index: usize, config: &BertConfig) -> Result<Self> {
        let p = format!("encoder.blks.{index}");
        Ok(Self {
            attention: MultiHeadAttention::new(params, &format!("{p}.attention"), config)?,
            addnorm1: AddNorm::new(params, &format!("{p}.addnorm1"), config.hidden)?,
            ffn: PositionWiseFfn::new(params, &format!("{p}.ffn"), config.hidden, config.ffn_hidden)?,
            addnorm2: AddNorm::new(params, &format!("{p}.addnorm2"), config.hidden)?,
        })
    }

    /// `[B, L, hidden]` → `[B, L, hidden]`.
    pub fn forward(&self, x: &Tensor, key_mask: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let y = self.addnorm1.forward(x, &self.attention.forward(x, key_mask, mode)?, mode)?;
        self.addnorm2.forward(&y, &self.ffn.forward(&y)?, mode)
    }
}
