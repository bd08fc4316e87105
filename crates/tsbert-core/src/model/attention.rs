//! Multi-head scaled dot-product self-attention with a key-padding mask.

use candle_core::Tensor;

use crate::config::BertConfig;
use crate::error::Result;
use crate::model::linear::Linear;
use crate::model::mode::Mode;
use crate::model::softmax::softmax_last_dim;
use crate::params::ParamStore;

/// Q/K/V/O projections (with bias) around `heads` parallel attention heads.
#[derive(Debug, Clone)]
pub struct MultiHeadAttention {
    w_q: Linear,
    w_k: Linear,
    w_v: Linear,
    w_o: Linear,
    heads: usize,
}

impl MultiHeadAttention {
    /// Creates `{prefix}.W_q`, `W_k`, `W_v`, `W_o`, each `hidden → hidden`.
    pub fn new(params: &mut ParamStore, prefix: &str, config: &BertConfig) -> Result<Self> {
        let h = config.hidden;
        Ok(Self {
            w_q: Linear::new(params, &format!("{prefix}.W_q"), h, h)?,
            w_k: Linear::new(params, &format!("{prefix}.W_k"), h, h)?,
            w_v: Linear::new(params, &format!("{prefix}.W_v"), h, h)?,
            w_o: Linear::new(params, &format!("{prefix}.W_o"), h, h)?,
            heads: config.heads,
        })
    }

    /// `[B, L, hidden]` → `[B, heads, L, d]`: head `i` takes features `i·d .. (i+1)·d`.
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, l, h) = x.dims3()?;
        Ok(x.reshape((b, l, self.heads, h / self.heads))?.transpose(1, 2)?.contiguous()?)
    }

    /// Self-attention over `x` `[B, L, hidden]`. `key_mask` `[B, 1, 1, L]` holds 0 for keys
    /// inside a sequence's valid length and a large negative number beyond it, so those keys
    /// get zero weight.
    pub fn forward(&self, x: &Tensor, key_mask: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        let (b, l, h) = x.dims3()?;
        let d = h / self.heads;
        let q = self.split_heads(&self.w_q.forward(x)?)?;
        let k = self.split_heads(&self.w_k.forward(x)?)?;
        let v = self.split_heads(&self.w_v.forward(x)?)?;
        // [B, heads, L, L]
        let scores = (q.matmul(&k.t()?)? * (1.0 / (d as f64).sqrt()))?.broadcast_add(key_mask)?;
        let weights = mode.dropout(&softmax_last_dim(&scores)?)?;
        // [B, heads, L, d] → [B, L, hidden]
        let context = weights.matmul(&v)?.transpose(1, 2)?.reshape((b, l, h))?;
        self.w_o.forward(&context)
    }
}
