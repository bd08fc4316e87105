//! Sentence embeddings from token states: sentence-transformers' recipe (the mean over a
//! sequence's real tokens, or its first token's state), optionally L2-normalised.

use candle_core::{DType, Tensor, D};

use crate::error::Result;

/// How a sequence's token states become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The mean over the tokens inside the valid length (special tokens included, padding not).
    Mean,
    /// The state of the first token (`[CLS]` / `<cls>`).
    Cls,
}

/// `[B, L, H]` token states of sequences of `valid_lens` real tokens → `[B, H]`, each row
/// divided by its L2 norm (at least 1e-12, as `torch.nn.functional.normalize`) when `normalize`.
pub fn pool(encoded: &Tensor, valid_lens: &[usize], pooling: Pooling, normalize: bool) -> Result<Tensor> {
    let (b, l, _) = encoded.dims3()?;
    let pooled = match pooling {
        Pooling::Cls => encoded.narrow(1, 0, 1)?.squeeze(1)?,
        Pooling::Mean => {
            let mask: Vec<f32> =
                valid_lens.iter().flat_map(|&v| (0..l).map(move |j| f32::from(u8::from(j < v)))).collect();
            let mask = Tensor::from_vec(mask, (b, l, 1), encoded.device())?.to_dtype(encoded.dtype())?;
            let counts: Vec<f32> = valid_lens.iter().map(|&v| v.max(1) as f32).collect();
            let counts = Tensor::from_vec(counts, (b, 1), encoded.device())?.to_dtype(encoded.dtype())?;
            encoded.broadcast_mul(&mask)?.sum(1)?.broadcast_div(&counts)?
        }
    };
    if !normalize {
        return Ok(pooled);
    }
    let norms = pooled.to_dtype(DType::F32)?.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.maximum(1e-12)?;
    Ok(pooled.broadcast_div(&norms.to_dtype(pooled.dtype())?)?)
}
