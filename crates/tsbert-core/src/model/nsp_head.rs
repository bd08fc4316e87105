//! The next-sentence-prediction head.

use candle_core::Tensor;

use crate::config::BertConfig;
use crate::error::Result;
use crate::model::linear::Linear;
use crate::params::ParamStore;

/// `Linear(hidden, hidden) → Tanh` on the `<cls>` output (`hidden.0`), then
/// `Linear(hidden, 2)` (`nsp.output`).
#[derive(Debug, Clone)]
pub struct NspHead {
    hidden: Linear,
    output: Linear,
}

impl NspHead {
    /// Creates `hidden.0` and `nsp.output`.
    pub fn new(params: &mut ParamStore, config: &BertConfig) -> Result<Self> {
        let h = config.hidden;
        Ok(Self { hidden: Linear::new(params, "hidden.0", h, h)?, output: Linear::new(params, "nsp.output", h, 2)? })
    }

    /// `encoded` `[B, L, hidden]` → logits `[B, 2]` (class 1 = isNext).
    pub fn forward(&self, encoded: &Tensor) -> Result<Tensor> {
        let cls = encoded.narrow(1, 0, 1)?.squeeze(1)?;
        self.output.forward(&self.hidden.forward(&cls)?.tanh()?)
    }
}
