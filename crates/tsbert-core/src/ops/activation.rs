//! The feed-forward activation of the fused dense layer and of the inference pass, value and
//! slope, element by element: in f64 from libm (exact, for the finite-difference checks), in
//! f32 by branch-free formulas the compiler vectorises ([`crate::ops::gelu`]'s `*_f32`), a
//! loop an activation so that no `match` sits inside it.

use num_traits::Float;
use rayon::prelude::*;

use crate::config::Activation;
use crate::ops::gelu::{gelu_and_slope, gelu_and_slope_f32, gelu_tanh_and_slope_f32, Gelu};

/// Values an element-wise task takes at least.
const VALUES_A_TASK: usize = 1 << 14;

/// A float the activations are computed in.
pub(crate) trait Activated: Float + Send + Sync {
    /// `(GELU(x), GELU'(x))`, exact.
    fn gelu(self) -> (Self, Self);
    /// `(value, slope)` of GELU's tanh approximation.
    fn gelu_tanh(self) -> (Self, Self);
}

impl Activated for f64 {
    fn gelu(self) -> (f64, f64) {
        gelu_and_slope(self, Gelu::Exact)
    }

    fn gelu_tanh(self) -> (f64, f64) {
        gelu_and_slope(self, Gelu::Tanh)
    }
}

impl Activated for f32 {
    #[inline(always)]
    fn gelu(self) -> (f32, f32) {
        gelu_and_slope_f32(self)
    }

    #[inline(always)]
    fn gelu_tanh(self) -> (f32, f32) {
        gelu_tanh_and_slope_f32(self)
    }
}

/// `(value, slope)` of ReLU.
#[inline(always)]
fn relu<T: Float>(x: T) -> (T, T) {
    if x > T::zero() {
        (x, T::one())
    } else {
        (T::zero(), T::zero())
    }
}

widest_vectors! {
    /// `x[i] = f(x[i])`, compiled for the widest vectors the CPU has, AVX-512 included (the same
    /// arithmetic, so the same bits, on every CPU; the GELU of the inference pass ran at 0.70
    /// instead of 1.07 ns a value with AVX-512 against AVX2 on an AMD EPYC).
    fn map_chunk<T: Activated>(x: &mut [T], f: impl Fn(T) -> T + Copy) {
        x.iter_mut().for_each(|v| *v = f(*v));
    }
}

/// `activation` of every value of `x`, in place, in parallel tasks of [`VALUES_A_TASK`].
pub(crate) fn activate_in_place<T: Activated>(x: &mut [T], activation: Activation) {
    x.par_chunks_mut(VALUES_A_TASK).for_each(|chunk| activate(chunk, activation));
}

/// `activation` of every value of `x`, in place, on this thread (the same bits as
/// [`activate_in_place`]: each value is computed alone).
pub(crate) fn activate<T: Activated>(x: &mut [T], activation: Activation) {
    match activation {
        Activation::Relu => map_chunk(x, |v| relu(v).0),
        Activation::Gelu => map_chunk(x, |v| v.gelu().0),
        Activation::GeluTanh => map_chunk(x, |v| v.gelu_tanh().0),
    }
}

/// `g ⊙ activation'(z)`: a gradient taken back through the activation at its input `z`.
pub(crate) fn through_activation<T: Activated>(g: &[T], z: &[T], activation: Activation) -> Vec<T> {
    let mut out = g.to_vec();
    match activation {
        Activation::Relu => scale_in_place(&mut out, z, |v| relu(v).1),
        Activation::Gelu => scale_in_place(&mut out, z, |v| v.gelu().1),
        Activation::GeluTanh => scale_in_place(&mut out, z, |v| v.gelu_tanh().1),
    }
    out
}

/// `out[i] *= slope(z[i])` for every `i`, in parallel tasks of [`VALUES_A_TASK`].
fn scale_in_place<T: Activated>(out: &mut [T], z: &[T], slope: impl Fn(T) -> T + Sync + Copy) {
    out.par_chunks_mut(VALUES_A_TASK).zip(z.par_chunks(VALUES_A_TASK)).for_each(|(o, z)| scale_chunk(o, z, slope));
}

widest_vectors! {
    /// `out[i] *= slope(z[i])`, compiled as [`map_chunk`] is.
    fn scale_chunk<T: Activated>(out: &mut [T], z: &[T], slope: impl Fn(T) -> T + Copy) {
        out.iter_mut().zip(z).for_each(|(o, &v)| *o = *o * slope(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever vectors the CPU's clone computes in, each value and slope is the bits of the
    /// scalar formula (no clone fuses or reorders the arithmetic).
    #[test]
    fn every_clone_gives_the_scalar_formulas_bits() {
        let x: Vec<f32> =
            (0..20_011).map(|i| (i as f32 - 10_000.0) * 7.3e-4).chain([0.0, -0.0, 1e-30, -1e30]).collect();
        let g: Vec<f32> = x.iter().map(|&v| 1.0 - v * 0.25).collect();
        let scalar: [fn(f32) -> (f32, f32); 3] = [|v| v.gelu(), |v| v.gelu_tanh(), relu];
        for (activation, scalar) in [Activation::Gelu, Activation::GeluTanh, Activation::Relu].into_iter().zip(scalar) {
            let mut values = x.clone();
            activate_in_place(&mut values, activation);
            let scaled = through_activation(&g, &x, activation);
            for (i, &v) in x.iter().enumerate() {
                let (value, slope) = scalar(v);
                assert_eq!(values[i].to_bits(), value.to_bits(), "{activation:?}({v})");
                assert_eq!(scaled[i].to_bits(), (g[i] * slope).to_bits(), "{activation:?}'({v})");
            }
        }
    }
}
