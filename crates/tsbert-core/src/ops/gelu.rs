//! GELU, exact (`x · Φ(x)`) or its tanh approximation, as a CPU kernel with an exact backward,
//! beside the composed candle version. candle's own `gelu_erf` and `gelu` have backward passes
//! with constants cut to six digits (`0.398942` for `1/√(2π)`, …): their gradients are off by
//! about 1e-5 relative, which the finite-difference check sees.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor, WithDType};
use num_traits::Float;
use rayon::prelude::*;

use crate::ops::rows::{by_dtype, last_dim_rows};
use crate::ops::runs_fused;

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

/// GELU of `x`, element-wise: the fused kernel on the CPU (f32, f64), the composed candle ops
/// elsewhere.
pub fn gelu(x: &Tensor, kind: Gelu) -> candle_core::Result<Tensor> {
    if runs_fused(x) {
        fused_gelu(x, kind)
    } else {
        composed_gelu(x, kind)
    }
}

/// GELU from differentiable candle ops whose backward is exact (any device; the reference for
/// the fused op).
pub fn composed_gelu(x: &Tensor, kind: Gelu) -> candle_core::Result<Tensor> {
    let inner = match kind {
        Gelu::Exact => (x * std::f64::consts::FRAC_1_SQRT_2)?.erf()?,
        Gelu::Tanh => ((x + (x.powf(3.0)? * CUBIC)?)? * SQRT_2_OVER_PI)?.tanh()?,
    };
    (x * 0.5)? * (inner + 1.0)?
}

/// GELU as one CPU kernel with its exact backward.
pub fn fused_gelu(x: &Tensor, kind: Gelu) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(GeluOp(kind))
}

/// `(value, derivative)` of GELU at `x`.
fn gelu_and_slope(x: f64, kind: Gelu) -> (f64, f64) {
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

/// GELU of `x` (the value the fused kernel computes).
pub(crate) fn gelu_value(x: f64, kind: Gelu) -> f64 {
    gelu_and_slope(x, kind).0
}

/// `f` of every element of `x` (computed in f64).
fn map<T: WithDType + Float + Send + Sync>(x: &[T], f: impl Fn(f64) -> f64 + Sync) -> Vec<T> {
    x.par_iter().map(|&v| T::from_f64(f(WithDType::to_f64(v)))).collect()
}

fn forward<T: WithDType + Float + Send + Sync>(s: &CpuStorage, l: &Layout, kind: Gelu) -> candle_core::Result<Vec<T>> {
    let (x, _) = last_dim_rows::<T>(s, l, NAME)?;
    Ok(map(x, |v| gelu_and_slope(v, kind).0))
}

fn backward<T: WithDType + Float + Send + Sync>(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    kind: Gelu,
) -> candle_core::Result<Vec<T>> {
    let ((x, _), (g, _)) = (last_dim_rows::<T>(s1, l1, NAME)?, last_dim_rows::<T>(s2, l2, NAME)?);
    Ok(x.par_iter()
        .zip(g.par_iter())
        .map(|(&v, &gv)| T::from_f64(gelu_and_slope(WithDType::to_f64(v), kind).1) * gv)
        .collect())
}

const NAME: &str = "tsbert-gelu";

/// The forward op.
struct GeluOp(Gelu);

/// The backward op: (x, grad of GELU(x)) → grad of x.
struct GeluGrad(Gelu);

impl CustomOp1 for GeluOp {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((by_dtype!(NAME, storage, forward(storage, layout, self.0)), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(arg.apply_op2_no_bwd(&grad_res.contiguous()?, &GeluGrad(self.0))?))
    }
}

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "tsbert-gelu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!("{NAME}: backward shapes differ: {:?} {:?}", l1.shape(), l2.shape());
        }
        Ok((by_dtype!(NAME, s1, backward(s1, l1, s2, l2, self.0)), l1.shape().clone()))
    }
}
