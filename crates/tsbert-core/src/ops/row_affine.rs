//! `x · w + b` with `w` and `b` vectors along the last dimension (layer norm's affine), as CPU
//! kernels whose backward sums the gradient over rows in row-major
//! order, beside the composed candle broadcast ops they replace (each a full pass forward,
//! the parameter gradients from strided reductions over the leading dimensions).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor, WithDType};
use num_traits::Float;
use rayon::prelude::*;

use crate::ops::rows::{by_dtype, last_dim_rows};

/// Rows a task takes (short rows: 128–256 values).
const ROWS_A_TASK: usize = 256;

const NAME: &str = "tsbert-row-affine";

/// `x + b` over the last dimension from candle's broadcast add (the composed dense layer's bias).
pub fn composed_add_row_bias(x: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    x.broadcast_add(b)
}

/// `x · w + b` over the last dimension (CPU, f32/f64); backward: `g · w`, `Σ_rows g · x`,
/// `Σ_rows g`.
pub fn fused_row_affine(x: &Tensor, w: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, RowAffine)
}

/// `x · w + b` from candle's broadcast ops (any device; the reference for the fused op).
pub fn composed_row_affine(x: &Tensor, w: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    x.broadcast_mul(w)?.broadcast_add(b)
}

/// `Σ_rows g[r] · x[r]` (or `Σ_rows g[r]` without `x`) of row-major `[.., n]` values.
///
/// Blocks of [`ROWS_A_TASK`] rows are summed in parallel, then the block sums added in block
/// order on one thread: the bits depend on the values only, never on how the threads shared
/// the work (a rayon `reduce` adds the partial sums in an order that stealing decides).
pub(crate) fn column_sums<T: WithDType + Float + Send + Sync>(g: &[T], x: Option<&[T]>, n: usize) -> Vec<T> {
    let block = n * ROWS_A_TASK;
    let partials: Vec<Vec<T>> = g
        .par_chunks(block)
        .enumerate()
        .map(|(i, gb)| {
            let mut acc = vec![T::zero(); n];
            for (r, grow) in gb.chunks(n).enumerate() {
                match x {
                    Some(x) => {
                        let xrow = &x[i * block + r * n..][..n];
                        acc.iter_mut().zip(grow).zip(xrow).for_each(|((s, &v), &xv)| *s += v * xv);
                    }
                    None => acc.iter_mut().zip(grow).for_each(|(s, &v)| *s += v),
                }
            }
            acc
        })
        .collect();
    let mut sums = vec![T::zero(); n];
    for part in &partials {
        sums.iter_mut().zip(part).for_each(|(s, &p)| *s += p);
    }
    sums
}

/// `x · w + b` for every row.
fn affine<T: WithDType + Float + Send + Sync>(x: &[T], w: &[T], b: &[T], n: usize) -> Vec<T> {
    let mut out = vec![T::zero(); x.len()];
    out.par_chunks_mut(n * ROWS_A_TASK).zip(x.par_chunks(n * ROWS_A_TASK)).for_each(|(out, x)| {
        for (orow, xrow) in out.chunks_mut(n).zip(x.chunks(n)) {
            orow.iter_mut().zip(xrow).zip(w.iter().zip(b)).for_each(|((o, &v), (&wv, &bv))| *o = v * wv + bv)
        }
    });
    out
}

/// The values of a vector argument of length `n`.
fn vector<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout, n: usize, what: &str) -> candle_core::Result<&'a [T]> {
    let (v, len) = last_dim_rows::<T>(s, l, NAME)?;
    if l.dims().len() != 1 || len != n {
        candle_core::bail!("{NAME}: {what} has shape {:?}, expected [{n}]", l.shape());
    }
    Ok(v)
}

/// `x · w + b`.
struct RowAffine;

/// `g` → `Σ_rows g`.
struct ColumnSum;

/// `(g, x)` → `Σ_rows g · x`.
struct ColumnDot;

fn affine_fwd<T: WithDType + Float + Send + Sync>(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    s3: &CpuStorage,
    l3: &Layout,
) -> candle_core::Result<Vec<T>> {
    let (x, n) = last_dim_rows::<T>(s1, l1, NAME)?;
    Ok(affine(x, vector(s2, l2, n, "the weight")?, vector(s3, l3, n, "the bias")?, n))
}

fn sum_fwd<T: WithDType + Float + Send + Sync>(s: &CpuStorage, l: &Layout) -> candle_core::Result<Vec<T>> {
    let (g, n) = last_dim_rows::<T>(s, l, NAME)?;
    Ok(column_sums(g, None, n))
}

fn dot_fwd<T: WithDType + Float + Send + Sync>(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
) -> candle_core::Result<Vec<T>> {
    if l1.shape() != l2.shape() {
        candle_core::bail!("{NAME}: gradient {:?} and input {:?} differ", l1.shape(), l2.shape());
    }
    let ((g, n), (x, _)) = (last_dim_rows::<T>(s1, l1, NAME)?, last_dim_rows::<T>(s2, l2, NAME)?);
    Ok(column_sums(g, Some(x), n))
}

/// The shape `[n]` of a column sum of `l`.
fn row_shape(l: &Layout) -> Shape {
    Shape::from(l.dims().last().copied().unwrap_or(1))
}

impl CustomOp3 for RowAffine {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((by_dtype!(NAME, s1, affine_fwd(s1, l1, s2, l2, s3, l3)), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let zero = b.zeros_like()?;
        let dx = grad.apply_op3_no_bwd(w, &zero, &RowAffine)?;
        let dw = grad.apply_op2_no_bwd(x, &ColumnDot)?;
        let db = grad.apply_op1_no_bwd(&ColumnSum)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

impl CustomOp1 for ColumnSum {
    fn name(&self) -> &'static str {
        "tsbert-column-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((by_dtype!(NAME, s, sum_fwd(s, l)), row_shape(l)))
    }
}

impl CustomOp2 for ColumnDot {
    fn name(&self) -> &'static str {
        "tsbert-column-dot"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((by_dtype!(NAME, s1, dot_fwd(s1, l1, s2, l2)), row_shape(l1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sum of every block's sum, added in block order.
    fn in_block_order(g: &[f32], n: usize) -> Vec<f32> {
        let mut sums = vec![0f32; n];
        for block in g.chunks(n * ROWS_A_TASK) {
            let mut acc = vec![0f32; n];
            block.chunks(n).for_each(|row| acc.iter_mut().zip(row).for_each(|(s, &v)| *s += v));
            sums.iter_mut().zip(&acc).for_each(|(s, &a)| *s += a);
        }
        sums
    }

    #[test]
    fn column_sums_have_the_same_bits_whatever_the_threads_and_their_timing() {
        let n = 3;
        // 64 blocks of values spanning 12 orders of magnitude: any other order rounds differently.
        let g: Vec<f32> = (0..n * ROWS_A_TASK * 64)
            .map(|i| ((i * 7919) % 1013) as f32 * 10f32.powi((i % 13) as i32 - 6) * if i % 3 == 0 { -1.0 } else { 1.0 })
            .collect();
        let expected = in_block_order(&g, n);
        for threads in [1, 2, 3, 8] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            for _ in 0..20 {
                let got = pool.install(|| column_sums(&g, None, n));
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&expected), "{threads} threads");
            }
        }
    }
}
