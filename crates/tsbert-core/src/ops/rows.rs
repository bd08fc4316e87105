//! Row access shared by the fused CPU ops: the contiguous values of a storage, seen as rows
//! of its last dimension.

use candle_core::{CpuStorage, Layout, WithDType};
use num_traits::Float;

/// The values of a contiguous CPU tensor and the length of its last dimension (a row).
pub(crate) fn last_dim_rows<'a, T: WithDType>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<(&'a [T], usize)> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: expects a contiguous tensor")
    };
    let row = layout.dims().last().copied().unwrap_or(1);
    if row == 0 {
        candle_core::bail!("{op}: empty last dimension")
    }
    Ok((&T::cpu_storage_as_slice(storage)?[start..end], row))
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
const LANES: usize = 8;

/// `Σ a[i] · b[i]`, in [`LANES`] partial sums.
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
