//! The whole model: embeddings, encoder blocks and both pretraining heads.

use candle_core::Tensor;

use crate::config::BertConfig;
use crate::error::Result;
use crate::model::embeddings::Embeddings;
use crate::model::encoder_block::EncoderBlock;
use crate::model::mlm_head::MlmHead;
use crate::model::mode::Mode;
use crate::model::nsp_head::NspHead;
use crate::params::ParamStore;

/// Large negative score given to keys beyond a sequence's valid length: after softmax their
/// weight is exactly zero.
const MASKED_SCORE: f64 = -1e9;

/// A BERT encoder with MLM and NSP heads. Parameters are created in a fixed order, so a
/// seed fully determines the initial weights.
#[derive(Debug, Clone)]
pub struct BertModel {
    embeddings: Embeddings,
    blocks: Vec<EncoderBlock>,
    mlm: MlmHead,
    nsp: NspHead,
}

impl BertModel {
    /// Creates every parameter of `config` in `params`.
    pub fn new(params: &mut ParamStore, config: &BertConfig) -> Result<Self> {
        let embeddings = Embeddings::new(params, config)?;
        let blocks = (0..config.layers).map(|i| EncoderBlock::new(params, i, config)).collect::<Result<Vec<_>>>()?;
        let mlm = MlmHead::new(params, config)?;
        let nsp = NspHead::new(params, config)?;
        Ok(Self { embeddings, blocks, mlm, nsp })
    }

    /// `[B, 1, 1, L]`: 0 for keys `j < valid_lens[b]`, a large negative score beyond.
    pub fn key_mask(valid_lens: &[usize], seq_len: usize, like: &Tensor) -> Result<Tensor> {
        let values: Vec<f32> = valid_lens
            .iter()
            .flat_map(|&v| (0..seq_len).map(move |j| if j < v { 0.0 } else { MASKED_SCORE as f32 }))
            .collect();
        Ok(Tensor::from_vec(values, (valid_lens.len(), 1, 1, seq_len), like.device())?.to_dtype(like.dtype())?)
    }

    /// The contextual representation of every token: `[B, L]` ids and segments → `[B, L, hidden]`.
    pub fn encode(&self, tokens: &Tensor, segments: &Tensor, key_mask: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let mut x = self.embeddings.forward(tokens, segments)?;
        for block in &self.blocks {
            x = block.forward(&x, key_mask, mode)?;
        }
        Ok(x)
    }

    /// MLM logits `[N, vocab]` at `flat_positions` (`row · L + position`, u32) of `encoded`.
    pub fn mlm_logits(&self, encoded: &Tensor, flat_positions: &Tensor) -> Result<Tensor> {
        self.mlm.forward(encoded, flat_positions)
    }

    /// NSP logits `[B, 2]` from the `<cls>` position of `encoded`.
    pub fn nsp_logits(&self, encoded: &Tensor) -> Result<Tensor> {
        self.nsp.forward(encoded)
    }
}
