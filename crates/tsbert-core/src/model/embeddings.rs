//! Token + segment + learned position embeddings.

use candle_core::Tensor;

use crate::config::BertConfig;
use crate::error::Result;
use crate::params::{Init, ParamStore};

/// The input representation: `token[id] + segment[s] + position[i]`. The position table
/// is a trained parameter (the textbook freezes it by accident; this one learns).
#[derive(Debug, Clone)]
pub struct Embeddings {
    token: Tensor,
    segment: Tensor,
    position: Tensor,
}

impl Embeddings {
    /// Creates `encoder.token_embedding.weight` `[vocab, hidden]`,
    /// `encoder.segment_embedding.weight` `[2, hidden]` and `encoder.pos_embedding`
    /// `[maxPositions, hidden]`, all N(0, 1).
    pub fn new(params: &mut ParamStore, config: &BertConfig) -> Result<Self> {
        let h = config.hidden;
        let token = params.create("encoder.token_embedding.weight", &[config.vocab_size, h], Init::StandardNormal)?;
        let segment = params.create("encoder.segment_embedding.weight", &[2, h], Init::StandardNormal)?;
        let position = params.create("encoder.pos_embedding", &[config.max_positions, h], Init::StandardNormal)?;
        Ok(Self { token, segment, position })
    }

    /// `tokens`, `segments`: `[B, L]` u32 → `[B, L, hidden]`.
    pub fn forward(&self, tokens: &Tensor, segments: &Tensor) -> Result<Tensor> {
        let (b, l) = tokens.dims2()?;
        let h = self.token.dim(1)?;
        let tok = self.token.index_select(&tokens.flatten_all()?, 0)?;
        let seg = self.segment.index_select(&segments.flatten_all()?, 0)?;
        let x = (tok + seg)?.reshape((b, l, h))?;
        Ok(x.broadcast_add(&self.position.narrow(0, 0, l)?)?)
    }
}
