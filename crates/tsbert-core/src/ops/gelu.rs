//! GELU, exact (`x · Φ(x)`) or its tanh approximation: its value and exact slope, which the
//! fused dense layer ([`crate::ops::linear`]) and the inference pass apply, beside the composed
//! candle version. candle's own `gelu_erf` and `gelu` have backward passes
//! with constants cut to six digits (`0.398942` for `1/√(2π)`, …): their gradients are off by
//! about 1e-5 relative, which the finite-difference check sees. In f32 the value and slope come
//! from branch-free formulas (within 1e-6 of the exact ones, see the tests) that the compiler
//! vectorises: libm's f64 `erf` and `exp` a value were a fifth of an encode's time.

use candle_core::Tensor;

use crate::ops::rows::exp_at_most_zero;

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

/// Abramowitz and Stegun 7.1.26: `erfc(z) ≈ t·(a₁ + t·(a₂ + … + t·a₅))·e^(−z²)`,
/// `t = 1/(1 + p·z)`, `z ≥ 0`, with an absolute error under 1.5e-7.
const ERFC_P: f32 = 0.327_591_1;
/// The coefficients a₁…a₅ of [`ERFC_P`]'s formula.
const ERFC_A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_8, -1.453_152_1, 1.061_405_4];

/// `(GELU(x), GELU'(x))` with the normal CDF from [`ERFC_P`]'s formula: `Φ(x)` is
/// `1 − erfc(z)/2` for `x ≥ 0` and `erfc(z)/2` below (`z = |x|/√2`), so that neither side
/// loses precision by cancellation; the density `e^(−z²)/√(2π)` shares its exponential.
#[inline(always)]
pub(crate) fn gelu_and_slope_f32(x: f32) -> (f32, f32) {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let e = exp_at_most_zero(-z * z);
    let t = 1.0 / (1.0 + ERFC_P * z);
    let [a1, a2, a3, a4, a5] = ERFC_A;
    let half_erfc = 0.5 * t * (a1 + t * (a2 + t * (a3 + t * (a4 + t * a5)))) * e;
    let cdf = if x >= 0.0 { 1.0 - half_erfc } else { half_erfc };
    (x * cdf, cdf + x * (INV_SQRT_2PI as f32) * e)
}

/// `(value, slope)` of GELU's tanh approximation in f32: `tanh(u)` as
/// `sign(u)·(1 − e)/(1 + e)` with `e = e^(−2|u|) ≤ 1`, and `1 − tanh²(u)` as `4e/(1 + e)²`
/// (no cancellation where `tanh(u)` nears ±1).
#[inline(always)]
pub(crate) fn gelu_tanh_and_slope_f32(x: f32) -> (f32, f32) {
    let (c, k) = (SQRT_2_OVER_PI as f32, CUBIC as f32);
    let u = c * (x + k * x * x * x);
    let e = exp_at_most_zero(-2.0 * u.abs());
    let inv = 1.0 / (1.0 + e);
    let t = ((1.0 - e) * inv).copysign(u);
    let sech2 = 4.0 * e * inv * inv;
    let slope = 0.5 * (1.0 + t) + 0.5 * x * sech2 * c * (1.0 + 3.0 * k * x * x);
    (0.5 * x * (1.0 + t), slope)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The f32 forms against the exact f64 ones over `[-12, 12]` and at the extremes.
    fn check(f32_form: fn(f32) -> (f32, f32), kind: Gelu) {
        let mut worst = (0f64, 0f64);
        for i in -120_000..=120_000 {
            let x = i as f32 * 1e-4;
            let ((v, s), (ev, es)) = (f32_form(x), gelu_and_slope(f64::from(x), kind));
            worst.0 = worst.0.max((f64::from(v) - ev).abs() / ev.abs().max(1.0));
            worst.1 = worst.1.max((f64::from(s) - es).abs());
        }
        assert!(worst.0 < 1e-6 && worst.1 < 1e-6, "{kind:?}: value {:.2e}, slope {:.2e}", worst.0, worst.1);
        assert_eq!(f32_form(f32::INFINITY).0, f32::INFINITY);
        assert!(f32_form(-1e30).0.abs() < 1e-30);
        assert!(f32_form(f32::NAN).0.is_nan());
    }

    #[test]
    fn f32_gelu_is_within_a_millionth_of_the_exact_one() {
        check(gelu_and_slope_f32, Gelu::Exact);
    }

    #[test]
    fn f32_gelu_tanh_is_within_a_millionth_of_the_exact_one() {
        check(gelu_tanh_and_slope_f32, Gelu::Tanh);
    }
}
