//! The MLM output layer and its weighted cross-entropy as one CPU op:
//! `Σᵣ wᵣ · CE(xᵣ Wᵀ + b, labelᵣ) / total`.
//!
//! Composed, the `[N, V]` logits (N ≈ 5000 predictions, V ≈ 20000 words in the textbook run:
//! 400 MB) are written, their gradient written again in backward, and candle's gradient
//! bookkeeping clears and adds a third copy. Fused, the logits exist a chunk of rows at a
//! time: each chunk's logits become, in place, the chunk's gradient (the loss is the end of
//! the graph, so the gradient of each logit is known as soon as its row's softmax is:
//! `wᵣ/total · (softmax − onehot)`), which goes at once into the gradients of `x`, `W` and `b`.
//! The forward pass thus also computes the backward's values, which the backward scales by
//! the gradient it receives. One exponential a logit instead of two, and memory of one chunk.
//! Other devices use the composed version.

use std::ops::{AddAssign, MulAssign, SubAssign};
use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Device, Layout, Shape, Tensor, WithDType};
use rayon::prelude::*;

use crate::error::Result;
use crate::ops::cross_entropy::cross_entropy_per_row;
use crate::ops::matmul::{product, threads_for, View};
use crate::ops::rows::{contiguous_values, max, ExpShifted, MIN_ROWS_A_TASK};
use crate::ops::runs_fused;

/// Rows whose logits exist at once: 256 × V values (20 MB for V = 20256).
const CHUNK_ROWS: usize = 256;
/// Columns of the bias gradient a task sums.
const COLUMNS_A_TASK: usize = 2048;

const NAME: &str = "tsbert-decoder-loss";

/// What the predictions are scored against: a label and a weight a row (`[N]` u32 and `[N]`
/// floats), and the denominator of the weighted mean.
#[derive(Debug, Clone, Copy)]
pub struct Targets<'a> {
    /// `[N]` u32 labels.
    pub labels: &'a Tensor,
    /// `[N]` weights (0 for padding).
    pub weights: &'a Tensor,
    /// The denominator (`Σ w + 1e-8` of the whole batch).
    pub total: f64,
}

/// `Σᵣ wᵣ · CE(xᵣ Wᵀ + b, labelᵣ) / total` for `x` `[N, H]`, `weight` `[V, H]`, `bias` `[V]`:
/// the fused op on the CPU (f32, f64), the composed candle ops elsewhere. A scalar.
pub fn decoder_loss(x: &Tensor, weight: &Tensor, bias: &Tensor, targets: Targets) -> Result<Tensor> {
    if runs_fused(x) {
        fused_decoder_loss(x, weight, bias, targets)
    } else {
        composed_decoder_loss(x, weight, bias, targets)
    }
}

/// The loss as one CPU op (f32, f64), its gradients computed with it.
pub fn fused_decoder_loss(x: &Tensor, weight: &Tensor, bias: &Tensor, targets: Targets) -> Result<Tensor> {
    let op = DecoderLoss {
        labels: targets.labels.to_vec1::<u32>()?,
        weights: targets.weights.to_dtype(DType::F64)?.to_vec1()?,
        total: targets.total,
        grads: Mutex::new(None),
    };
    Ok(x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, op)?)
}

/// The same loss from differentiable candle ops (any device; the reference for the fused op).
pub fn composed_decoder_loss(x: &Tensor, weight: &Tensor, bias: &Tensor, targets: Targets) -> Result<Tensor> {
    let logits = x.matmul(&weight.t()?)?.broadcast_add(bias)?;
    let weighted = (cross_entropy_per_row(&logits, targets.labels)? * targets.weights)?.sum_all()?;
    Ok((weighted * (1.0 / targets.total))?)
}

/// The gradients the forward pass computed, for the backward pass to scale.
enum Grads {
    F32([Vec<f32>; 3]),
    F64([Vec<f64>; 3]),
}

/// The op: `(x, W, b)` → the scalar loss; its gradients are kept from the forward pass.
struct DecoderLoss {
    labels: Vec<u32>,
    weights: Vec<f64>,
    total: f64,
    grads: Mutex<Option<Grads>>,
}

/// Sizes of the op's inputs.
#[derive(Clone, Copy)]
struct Dims {
    n: usize,
    h: usize,
    v: usize,
}

/// Each row's loss, and the row turned into its gradient `g · (softmax − onehot)`, in place.
/// Returns `w · CE` of the row.
fn row_loss_and_grad<T: ExpShifted + AddAssign + MulAssign + SubAssign>(
    row: &mut [T],
    bias: &[T],
    label: usize,
    weight: f64,
    total: f64,
) -> f64 {
    if weight == 0.0 {
        row.fill(T::zero());
        return 0.0;
    }
    for (z, &b) in row.iter_mut().zip(bias) {
        *z += b;
    }
    let m = max(row);
    let picked = row[label];
    let s = T::exp_shifted_sum(row, m);
    let ce = (s.ln() + m - picked).to_f64().unwrap_or(f64::NAN);
    let g = T::from(weight / total).unwrap_or_else(T::nan);
    let scale = g / s;
    for z in row.iter_mut() {
        *z *= scale;
    }
    row[label] -= g;
    weight * ce
}

/// The loss and the gradients of `x`, `W`, `b`, a chunk of rows at a time.
fn fused<T: WithDType + ExpShifted + AddAssign + MulAssign + SubAssign + Send + Sync>(
    x: &[T],
    w: &[T],
    b: &[T],
    d: Dims,
    op: &DecoderLoss,
) -> (f64, [Vec<T>; 3]) {
    let Dims { n, h, v } = d;
    let (zero, one) = (T::zero(), T::one());
    let mut logits = vec![zero; CHUNK_ROWS.min(n) * v];
    let (mut gx, mut gw, mut gb) = (vec![zero; n * h], vec![zero; v * h], vec![zero; v]);
    let mut loss = 0.0;
    for r0 in (0..n).step_by(CHUNK_ROWS) {
        let c = CHUNK_ROWS.min(n - r0);
        let chunk = &mut logits[..c * v];
        let xc = &x[r0 * h..(r0 + c) * h];
        // SAFETY: every pointer addresses a buffer of the sizes and strides given (row-major
        // [c, v] chunk, [c, h] rows of x, [v, h] W, [c, h] rows of gx, [v, h] gw).
        unsafe {
            // chunk = xc · Wᵀ
            product(
                (c, v, h),
                chunk.as_mut_ptr(),
                v,
                (View::rows(xc.as_ptr(), h), View::transposed(w.as_ptr(), h)),
                one,
                false,
                threads_for(c * v * h),
            );
            // Row losses added in row order (a parallel sum's order would depend on the timing).
            let row_losses: Vec<f64> = chunk
                .par_chunks_mut(v)
                .with_min_len(MIN_ROWS_A_TASK / 8)
                .enumerate()
                .map(|(i, row)| {
                    let r = r0 + i;
                    row_loss_and_grad(row, b, op.labels[r] as usize, op.weights[r], op.total)
                })
                .collect();
            loss += row_losses.iter().sum::<f64>();
            // gx[rows] = chunk · W; gw += chunkᵀ · xc
            product(
                (c, h, v),
                gx[r0 * h..].as_mut_ptr(),
                h,
                (View::rows(chunk.as_ptr(), v), View::rows(w.as_ptr(), h)),
                one,
                false,
                threads_for(c * v * h),
            );
            product(
                (v, h, c),
                gw.as_mut_ptr(),
                h,
                (View::transposed(chunk.as_ptr(), v), View::rows(xc.as_ptr(), h)),
                one,
                r0 > 0,
                threads_for(c * v * h),
            );
        }
        let chunk = &logits[..c * v];
        gb.par_chunks_mut(COLUMNS_A_TASK).enumerate().for_each(|(k, cols)| {
            for row in chunk.chunks(v) {
                for (a, &g) in cols.iter_mut().zip(&row[k * COLUMNS_A_TASK..]) {
                    *a += g;
                }
            }
        });
    }
    (loss / op.total, [gx, gw, gb])
}

fn check(labels: &[u32], d: Dims) -> candle_core::Result<()> {
    if labels.len() != d.n {
        candle_core::bail!("{NAME}: {} labels for {} rows", labels.len(), d.n);
    }
    if let Some(bad) = labels.iter().find(|&&l| l as usize >= d.v) {
        candle_core::bail!("{NAME}: label {bad} out of range for {} classes", d.v);
    }
    Ok(())
}

impl CustomOp3 for DecoderLoss {
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
        let (n, h) = l1.shape().dims2()?;
        let (v, h2) = l2.shape().dims2()?;
        if h2 != h || l3.shape().dims1()? != v {
            candle_core::bail!("{NAME}: x {:?}, W {:?}, b {:?} do not fit", l1.dims(), l2.dims(), l3.dims());
        }
        let d = Dims { n, h, v };
        check(&self.labels, d)?;
        let (loss, grads) = match s1.dtype() {
            DType::F32 => {
                let (loss, g) = fused::<f32>(
                    contiguous_values(s1, l1, NAME)?,
                    contiguous_values(s2, l2, NAME)?,
                    contiguous_values(s3, l3, NAME)?,
                    d,
                    self,
                );
                (CpuStorage::F32(vec![loss as f32]), Grads::F32(g))
            }
            DType::F64 => {
                let (loss, g) = fused::<f64>(
                    contiguous_values(s1, l1, NAME)?,
                    contiguous_values(s2, l2, NAME)?,
                    contiguous_values(s3, l3, NAME)?,
                    d,
                    self,
                );
                (CpuStorage::F64(vec![loss]), Grads::F64(g))
            }
            other => candle_core::bail!("{NAME}: unsupported dtype {other:?}"),
        };
        *self.grads.lock().expect("not poisoned") = Some(grads);
        Ok((loss, Shape::from(())))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Some(grads) = self.grads.lock().expect("not poisoned").take() else {
            candle_core::bail!("{NAME}: backward ran twice")
        };
        let scale = grad_res.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let cpu = Device::Cpu;
        let [gx, gw, gb] = match grads {
            Grads::F32([gx, gw, gb]) => [
                Tensor::from_vec(gx, x.shape(), &cpu)?,
                Tensor::from_vec(gw, w.shape(), &cpu)?,
                Tensor::from_vec(gb, b.shape(), &cpu)?,
            ],
            Grads::F64([gx, gw, gb]) => [
                Tensor::from_vec(gx, x.shape(), &cpu)?,
                Tensor::from_vec(gw, w.shape(), &cpu)?,
                Tensor::from_vec(gb, b.shape(), &cpu)?,
            ],
        };
        let scaled = |t: Tensor| if scale == 1.0 { Ok(t) } else { t.affine(scale, 0.0) };
        Ok((Some(scaled(gx)?), Some(scaled(gw)?), Some(scaled(gb)?)))
    }
}
