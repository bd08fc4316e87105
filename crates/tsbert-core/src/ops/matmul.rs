//! Matrix products on strided views, for the fused CPU ops: one call of the `gemm` crate
//! (the kernels candle's own CPU matmul runs) with the strides spelled once.

use gemm::{gemm, Parallelism};
use num_traits::Float;

/// Multiply-adds below which a product runs on one thread (smaller ones finish before
/// threads would start).
pub(crate) const SERIAL_PRODUCT: usize = 1 << 18;

/// A strided matrix: its first value, row stride and column stride (in values).
#[derive(Clone, Copy)]
pub(crate) struct View<T> {
    at: *const T,
    rows: isize,
    cols: isize,
}

impl<T> View<T> {
    /// Row-major with rows `stride` apart.
    pub(crate) fn rows(at: *const T, stride: usize) -> Self {
        Self { at, rows: stride as isize, cols: 1 }
    }

    /// The transpose of a row-major matrix whose rows are `stride` apart.
    pub(crate) fn transposed(at: *const T, stride: usize) -> Self {
        Self { at, rows: 1, cols: stride as isize }
    }
}

/// How a product of `multiply_adds` splits: over every compute thread when large enough.
pub(crate) fn threads_for(multiply_adds: usize) -> Parallelism {
    match rayon::current_num_threads() {
        n if n > 1 && multiply_adds >= SERIAL_PRODUCT => Parallelism::Rayon(n),
        _ => Parallelism::None,
    }
}

/// `dst (m × n, row-major, rows dst_stride apart) = [dst +] scale · a (m × k) · b (k × n)`,
/// adding onto `dst` when `accumulate`.
///
/// # Safety
/// `a`, `b` and `dst` must address m × k, k × n and m × n valid values, and nothing else may
/// access `dst` meanwhile.
pub(crate) unsafe fn product<T: Float + 'static>(
    (m, n, k): (usize, usize, usize),
    dst: *mut T,
    dst_stride: usize,
    (a, b): (View<T>, View<T>),
    scale: T,
    accumulate: bool,
    parallelism: Parallelism,
) {
    let keep = if accumulate { T::one() } else { T::zero() };
    // SAFETY: as the caller promises.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_stride as isize,
            accumulate,
            a.at,
            a.cols,
            a.rows,
            b.at,
            b.cols,
            b.rows,
            keep,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}
