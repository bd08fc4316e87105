//! GELU, exact (`x · Φ(x)`) or its tanh approximation: its value and exact slope, which the
//! fused dense layer ([`crate::ops::linear`]) and the inference pass apply, beside the composed
//! candle version. candle's own `gelu_erf` and `gelu` have backward passes
//! with constants cut to six digits (`0.398942` for `1/√(2π)`, …): their gradients are off by
//! about 1e-5 relative, which the finite-difference check sees.

use candle_core::Tensor;

/// `√(2/π)`.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// `1/√(2π)`, the normal density's constant.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
/// The cubic coefficient of the tanh approximation.
const CUBIC: f64 = 0.044_715;

/// Which GELU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gelu {
    /// `x · Φ(x)` with the exact normal CDF.
    Exact,
    /// `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
    Tanh,
}

/// GELU from differentiable candle ops whose backward is exact (any device; the reference for
/// the fused dense layer's activation).
pub fn composed_gelu(x: &Tensor, kind: Gelu) -> candle_core::Result<Tensor> {
    let inner = match kind {
        Gelu::Exact => (x * std::f64::consts::FRAC_1_SQRT_2)?.erf()?,
        Gelu::Tanh => ((x + (x.powf(3.0)? * CUBIC)?)? * SQRT_2_OVER_PI)?.tanh()?,
    };
    (x * 0.5)? * (inner + 1.0)?
}

/// `(value, derivative)` of GELU at `x`.
pub(crate) fn gelu_and_slope(x: f64, kind: Gelu) -> (f64, f64) {
    match kind {
        Gelu::Exact => {
            let cdf = 0.5 * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2));
            (x * cdf, cdf + x * INV_SQRT_2PI * (-0.5 * x * x).exp())
        }
        Gelu::Tanh => {
            let t = (SQRT_2_OVER_PI * (x + CUBIC * x * x * x)).tanh();
            let slope = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * CUBIC * x * x);
            (0.5 * x * (1.0 + t), slope)
        }
    }
}
