//! One Adam update of one parameter: the fused CPU kernel, a single pass over the parameter,
//! its gradient and both moments, written in place (the moments held as plain host values);
//! and the composed candle version (a dozen element-wise ops, each a pass over the parameter
//! into a fresh tensor, then a copy into the parameter), what other devices run.

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, InplaceOp2, Layout, Tensor, Var, WithDType};
use num_traits::Float;
use rayon::prelude::*;

use crate::params::note_weights_written;

/// Values a rayon task updates at least: each is a handful of flops over four streams.
const VALUES_A_TASK: usize = 1 << 14;

const NAME: &str = "tsbert-adam-update";

/// The coefficients of one update, the same for every parameter of a step.
#[derive(Debug, Clone, Copy)]
pub struct AdamCoefficients {
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// `lr / (1 - β1ᵗ)`: the step size with the first moment's bias correction.
    pub step_size: f64,
    /// `1 / (1 - β2ᵗ)`: the second moment's bias correction.
    pub v_scale: f64,
    /// Added to the denominator's square root.
    pub eps: f64,
    /// L2 weight decay, added to the gradient as `l2 · θ` (0 for none).
    pub l2: f64,
    /// The factor θ is scaled by before the update (`1 - lr · wd` for decoupled weight decay,
    /// else 1).
    pub shrink: f64,
}

/// The update in place on `theta` (contiguous, on the CPU), whose moments `m` and `v` are
/// host values of its dtype and size: for each value, `g ← g + l2·θ`,
/// `m ← β1 m + (1-β1) g`, `v ← β2 v + (1-β2) g²`,
/// `θ ← shrink·θ - step_size · m / (√(v · v_scale) + ε)`.
pub fn fused_adam_update(
    theta: &Var,
    grad: &Tensor,
    m: &mut CpuStorage,
    v: &mut CpuStorage,
    c: &AdamCoefficients,
) -> candle_core::Result<()> {
    let op = FusedUpdate { moments: Mutex::new((m, v)), c: *c };
    theta.as_tensor().inplace_op2(&grad.contiguous()?, &op)?;
    note_weights_written();
    Ok(())
}

/// The same update from candle's element-wise ops, `m` and `v` replaced by new tensors and
/// θ set from a new one (any device; the reference for the fused kernel).
pub fn composed_adam_update(
    theta: &Var,
    grad: &Tensor,
    m: &mut Tensor,
    v: &mut Tensor,
    c: &AdamCoefficients,
) -> candle_core::Result<()> {
    let AdamCoefficients { beta1, beta2, step_size, v_scale, eps, l2, shrink } = *c;
    let grad = if l2 > 0.0 { (grad + (theta.as_tensor() * l2)?)? } else { grad.clone() };
    *m = ((&*m * beta1)? + (&grad * (1.0 - beta1))?)?;
    *v = ((&*v * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
    let denom = ((&*v * v_scale)?.sqrt()? + eps)?;
    let update = ((&*m * step_size)? / denom)?;
    let theta_now = if shrink == 1.0 { theta.as_tensor().clone() } else { (theta.as_tensor() * shrink)? };
    theta.set(&(theta_now - update)?)?;
    note_weights_written();
    Ok(())
}

/// The fused update as an in-place op on θ, its gradient the other operand; the moments are
/// reached through the op (a lock taken once, by the single call).
struct FusedUpdate<'a> {
    moments: Mutex<(&'a mut CpuStorage, &'a mut CpuStorage)>,
    c: AdamCoefficients,
}

impl InplaceOp2 for FusedUpdate<'_> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<()> {
        let (Some(theta_at), Some(grad_at)) = (l1.contiguous_offsets(), l2.contiguous_offsets()) else {
            candle_core::bail!("{NAME}: expects contiguous tensors")
        };
        let mut moments = self.moments.lock().map_err(|_| candle_core::Error::Msg(format!("{NAME}: poisoned")))?;
        let (m, v) = &mut *moments;
        match (s1, s2, &mut **m, &mut **v) {
            (CpuStorage::F32(t), CpuStorage::F32(g), CpuStorage::F32(m), CpuStorage::F32(v)) => {
                update(&mut t[theta_at.0..theta_at.1], &g[grad_at.0..grad_at.1], m, v, &self.c)
            }
            (CpuStorage::F64(t), CpuStorage::F64(g), CpuStorage::F64(m), CpuStorage::F64(v)) => {
                update(&mut t[theta_at.0..theta_at.1], &g[grad_at.0..grad_at.1], m, v, &self.c)
            }
            (t, ..) => candle_core::bail!("{NAME}: unsupported dtype {:?} or moments of another", t.dtype()),
        }
    }
}

/// The update over slices of one size, in tasks of [`VALUES_A_TASK`] values.
fn update<T: WithDType + Float + Send + Sync>(
    theta: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
    c: &AdamCoefficients,
) -> candle_core::Result<()> {
    let n = theta.len();
    if grad.len() != n || m.len() != n || v.len() != n {
        candle_core::bail!("{NAME}: {n} values, a gradient of {}, moments of {} and {}", grad.len(), m.len(), v.len())
    }
    let at = |x: f64| T::from(x).expect("a float converts");
    let (b1, b2, step, vs, eps, l2, shrink) =
        (at(c.beta1), at(c.beta2), at(c.step_size), at(c.v_scale), at(c.eps), at(c.l2), at(c.shrink));
    let (one_b1, one_b2) = (at(1.0 - c.beta1), at(1.0 - c.beta2));
    theta
        .par_chunks_mut(VALUES_A_TASK)
        .zip(grad.par_chunks(VALUES_A_TASK))
        .zip(m.par_chunks_mut(VALUES_A_TASK))
        .zip(v.par_chunks_mut(VALUES_A_TASK))
        .for_each(|(((theta, grad), m), v)| {
            for (((t, &g), m), v) in theta.iter_mut().zip(grad).zip(m).zip(v) {
                let g = g + l2 * *t;
                *m = b1 * *m + one_b1 * g;
                *v = b2 * *v + one_b2 * g * g;
                *t = shrink * *t - step * *m / ((*v * vs).sqrt() + eps);
            }
        });
    Ok(())
}
