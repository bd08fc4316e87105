//! Row access shared by the fused CPU ops: the contiguous values of a storage, seen as rows
//! of its last dimension.

use candle_core::{CpuStorage, Layout, Storage, Tensor, WithDType};
use num_traits::Float;

/// The values of a contiguous CPU tensor and the length of its last dimension (a row).
pub(crate) fn last_dim_rows<'a, T: WithDType>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<(&'a [T], usize)> {
    let values = contiguous_values(storage, layout, op)?;
    let row = layout.dims().last().copied().unwrap_or(1);
    if row == 0 {
        candle_core::bail!("{op}: empty last dimension")
    }
    Ok((values, row))
}

/// The values of a contiguous storage; an error naming `op` otherwise.
pub(crate) fn contiguous_values<'a, T: WithDType>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&T::cpu_storage_as_slice(storage)?[start..end]),
        None => candle_core::bail!("{op}: expects contiguous inputs"),
    }
}

/// A tensor's values on the CPU, read in place (its storage stays locked for reading
/// meanwhile).
pub(crate) struct TensorValues<'a> {
    guard: candle_core::StorageRef<'a>,
    layout: &'a Layout,
}

impl<'a> TensorValues<'a> {
    /// Locks `t`'s storage for reading.
    pub(crate) fn of(t: &'a Tensor) -> Self {
        let (guard, layout) = t.storage_and_layout();
        Self { guard, layout }
    }

    /// The values, of dtype `T`; an error naming `op` for another dtype, a strided tensor or
    /// one off the CPU.
    pub(crate) fn slice<T: WithDType>(&self, op: &str) -> candle_core::Result<&[T]> {
        match &*self.guard {
            Storage::Cpu(s) => contiguous_values(s, self.layout, op),
            _ => candle_core::bail!("{op}: expects tensors on the CPU"),
        }
    }
}

/// Runs `$run::<T>(args…)`, which gives a `candle_core::Result<Vec<T>>`, for the dtype of
/// `$storage` (f32 or f64) and wraps the values in a `CpuStorage`; another dtype is an error
/// naming the op `$op`.
macro_rules! by_dtype {
    ($op:expr, $storage:expr, $run:ident ( $($arg:expr),* )) => {
        match $storage.dtype() {
            candle_core::DType::F32 => candle_core::CpuStorage::F32($run::<f32>($($arg),*)?),
            candle_core::DType::F64 => candle_core::CpuStorage::F64($run::<f64>($($arg),*)?),
            other => candle_core::bail!("{}: unsupported dtype {other:?}", $op),
        }
    };
}
pub(crate) use by_dtype;

/// Rows a rayon task takes at least: rows are short (64–128 values), so one a task would
/// spend more on scheduling than on arithmetic.
pub(crate) const MIN_ROWS_A_TASK: usize = 64;

/// Lanes of the row reductions: independent partial sums the compiler can keep in one SIMD
/// register, instead of one chain of dependent additions.
///
/// The reductions and exponentials below are `#[inline(always)]`: called from a function
/// compiled for the widest vectors (`widest_vectors!`), a function left apart runs the
/// baseline build (SSE2, 4 lanes) — softmax's exponentials did, at 1.2 ns a value.
const LANES: usize = 8;

/// `Σ a[i] · b[i]`, in [`LANES`] partial sums.
#[inline(always)]
pub(crate) fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::zero(); LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = ca.remainder().iter().zip(cb.remainder()).fold(T::zero(), |s, (&x, &y)| s + x * y);
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] = acc[i] + x[i] * y[i];
        }
    }
    acc.iter().fold(tail, |s, &v| s + v)
}

/// `Σ a[i]`, in [`LANES`] partial sums.
#[inline(always)]
pub(crate) fn sum<T: Float>(a: &[T]) -> T {
    let mut acc = [T::zero(); LANES];
    let chunks = a.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(T::zero(), |s, &x| s + x);
    for x in chunks {
        for i in 0..LANES {
            acc[i] = acc[i] + x[i];
        }
    }
    acc.iter().fold(tail, |s, &v| s + v)
}

/// `max a[i]` (−∞ for an empty row), in [`LANES`] partial maxima.
#[inline(always)]
pub(crate) fn max<T: Float>(a: &[T]) -> T {
    let mut acc = [T::neg_infinity(); LANES];
    let chunks = a.chunks_exact(LANES);
    let tail = chunks.remainder().iter().fold(T::neg_infinity(), |m, &x| m.max(x));
    for x in chunks {
        for i in 0..LANES {
            acc[i] = acc[i].max(x[i]);
        }
    }
    acc.iter().fold(tail, |m, &v| m.max(v))
}

/// Softmax's exponentials: `x ← exp(x − shift)` over a row whose values are at most `shift`,
/// returning their sum.
pub(crate) trait ExpShifted: Float {
    /// The exponentials in place, and their sum.
    fn exp_shifted_sum(row: &mut [Self], shift: Self) -> Self;
}

impl ExpShifted for f64 {
    fn exp_shifted_sum(row: &mut [f64], shift: f64) -> f64 {
        row.iter_mut().fold(0.0, |s, x| {
            *x = (*x - shift).exp();
            s + *x
        })
    }
}

impl ExpShifted for f32 {
    /// By [`exp_at_most_zero`], [`LANES`] at a time: the compiler keeps them in SIMD registers
    /// (libm's `expf` is a call a value).
    #[inline(always)]
    fn exp_shifted_sum(row: &mut [f32], shift: f32) -> f32 {
        let mut acc = [0f32; LANES];
        let mut chunks = row.chunks_exact_mut(LANES);
        for x in &mut chunks {
            for i in 0..LANES {
                x[i] = exp_at_most_zero(x[i] - shift);
                acc[i] += x[i];
            }
        }
        let tail = chunks.into_remainder().iter_mut().fold(0.0, |s, x| {
            *x = exp_at_most_zero(*x - shift);
            s + *x
        });
        acc.iter().fold(tail, |s, &v| s + v)
    }
}

/// `exp(x)` for `x ≤ 0` in f32, to about one unit in the last place (NaN stays NaN; below −87,
/// where the result is under 2⁻¹²⁵, it is that of −87): `2ⁿ · exp(r)` with `n` the nearest
/// integer to `x / ln 2` and `|r| ≤ ln 2 / 2`, `exp(r)` by its Taylor polynomial of degree 7.
#[inline(always)]
pub(crate) fn exp_at_most_zero(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2²³: adding it rounds to an integer
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = if x < -87.0 { -87.0 } else { x };
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // t's low bits hold n (two's complement): n + 127 shifted into the exponent field is 2ⁿ
    p * f32::from_bits(t.to_bits().wrapping_add(127) << 23)
}

#[cfg(test)]
mod tests {
    use super::exp_at_most_zero;

    #[test]
    fn f32_exponential_is_within_two_units_in_the_last_place() {
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let (got, want) = (f64::from(exp_at_most_zero(x)), f64::from(x).exp());
            assert!((got - want).abs() <= 2.5e-7 * want, "exp({x}) = {got}, expected {want}");
        }
        assert!(exp_at_most_zero(f32::NAN).is_nan());
        assert!(exp_at_most_zero(-1e4) < 1e-37);
    }
}
