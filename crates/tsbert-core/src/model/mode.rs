//! Training or inference: whether dropout is applied, and from which random stream.

use candle_core::Tensor;

use crate::error::Result;
use crate::rng::SeededRng;

/// How a forward pass runs.
pub enum Mode<'a> {
    /// A training step: dropout with probability `p`, masks drawn from `rng`.
    Train {
        /// The seeded stream dropout masks come from.
        rng: &'a mut SeededRng,
        /// Dropout probability.
        p: f64,
    },
    /// Inference: no dropout.
    Eval,
}

impl Mode<'_> {
    /// Inverted dropout on `x` in training mode; `x` unchanged otherwise (or when p = 0).
    pub fn dropout(&mut self, x: &Tensor) -> Result<Tensor> {
        match self {
            Mode::Train { rng, p } if *p > 0.0 => {
                let mask = rng.dropout_mask(x.shape(), *p, x.dtype(), x.device())?;
                Ok(x.mul(&mask)?)
            }
            _ => Ok(x.clone()),
        }
    }
}
