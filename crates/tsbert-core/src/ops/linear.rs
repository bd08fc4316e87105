//! A dense layer, `x · Wᵀ + b` over the last dimension of `x`, optionally followed by its
//! activation, as one CPU op: the bias written before the product (which adds onto it), the
//! activation applied in the same op, and a backward of the activation's slope, two products
//! and a column sum. Composed, it is five graph nodes (two reshapes, a transpose, the product, the
//! bias), four of them the size of the activation, each paying candle's gradient bookkeeping
//! (a cleared tensor and an addition); the composed version stays for other devices.

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, WithDType};
use num_traits::Float;

use crate::config::Activation;
use crate::ops::activation::{activate_in_place, through_activation, Activated};
use crate::ops::gelu::{composed_gelu, Gelu};
use crate::ops::matmul::{product, threads_for, View};
use crate::ops::row_affine::{column_sums, composed_add_row_bias};
use crate::ops::rows::{by_dtype, contiguous_values};
use crate::ops::runs_fused;

const NAME: &str = "tsbert-linear";

/// `x · Wᵀ + b` for `x` `[.., in]`, `weight` `[out, in]`, `bias` `[out]`: `[.., out]`. The
/// fused op on the CPU (f32, f64), the composed candle ops elsewhere.
pub fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    if runs_fused(x) {
        fused_linear(x, weight, bias)
    } else {
        composed_linear(x, weight, bias)
    }
}

/// `activation(x · Wᵀ + b)`: the fused op on the CPU (f32, f64), the composed candle ops
/// elsewhere.
pub fn linear_activated(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    activation: Activation,
) -> candle_core::Result<Tensor> {
    if runs_fused(x) {
        fused_linear_activated(x, weight, bias, activation)
    } else {
        composed_activate(&composed_linear(x, weight, bias)?, activation)
    }
}

/// The dense layer as one CPU op (f32, f64).
pub fn fused_linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, Linear::new(None))
}

/// The dense layer and its activation as one CPU op (f32, f64).
pub fn fused_linear_activated(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    activation: Activation,
) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, Linear::new(Some(activation)))
}

/// `activation` from candle's ops (the reference for the fused op's).
pub fn composed_activate(x: &Tensor, activation: Activation) -> candle_core::Result<Tensor> {
    match activation {
        Activation::Relu => x.relu(),
        Activation::Gelu => composed_gelu(x, Gelu::Exact),
        Activation::GeluTanh => composed_gelu(x, Gelu::Tanh),
    }
}

/// The dense layer from candle's ops: leading dimensions flattened into one matrix product,
/// then the bias (any device; the reference for the fused op).
pub fn composed_linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    let dims = x.dims();
    let in_dim = dims[dims.len() - 1];
    let product = x.reshape((x.elem_count() / in_dim, in_dim))?.matmul(&weight.t()?)?;
    let mut out_dims = dims.to_vec();
    *out_dims.last_mut().expect("rank ≥ 1") = weight.dim(0)?;
    composed_add_row_bias(&product, bias)?.reshape(out_dims)
}

/// The op `(x, W, b)` → `x · Wᵀ + b`, or its activation, whose input it then keeps for the
/// backward pass.
struct Linear {
    activation: Option<Activation>,
    pre_activation: Mutex<Option<CpuStorage>>,
}

impl Linear {
    fn new(activation: Option<Activation>) -> Self {
        Self { activation, pre_activation: Mutex::new(None) }
    }
}

/// `activation` of every value of `z`, as a new vector (`z` stays for the backward pass).
fn activated<T: Activated>(z: &[T], activation: Activation) -> Vec<T> {
    let mut out = z.to_vec();
    activate_in_place(&mut out, activation);
    out
}

/// Sizes: rows, inputs and outputs of the product, checked against the weight and bias.
fn sizes(x: &Layout, w: &Layout, b: &Layout) -> candle_core::Result<(usize, usize, usize)> {
    let (n_in, (n_out, w_in)) = (x.dims().last().copied().unwrap_or(0), w.shape().dims2()?);
    if n_in == 0 || w_in != n_in || b.dims() != [n_out] {
        candle_core::bail!("{NAME}: input {:?}, weight {:?}, bias {:?}", x.dims(), w.dims(), b.dims())
    }
    Ok((x.shape().elem_count() / n_in, n_in, n_out))
}

fn forward<T: WithDType + Float>(
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    (s3, l3): (&CpuStorage, &Layout),
) -> candle_core::Result<Vec<T>> {
    let (rows, n_in, n_out) = sizes(l1, l2, l3)?;
    let (x, w, b) = (
        contiguous_values::<T>(s1, l1, NAME)?,
        contiguous_values::<T>(s2, l2, NAME)?,
        contiguous_values::<T>(s3, l3, NAME)?,
    );
    let mut out = Vec::with_capacity(rows * n_out);
    for _ in 0..rows {
        out.extend_from_slice(b);
    }
    // SAFETY: `out` holds rows × n_out values, `x` rows × n_in, `w` n_out × n_in (row-major).
    unsafe {
        product(
            (rows, n_out, n_in),
            out.as_mut_ptr(),
            n_out,
            (View::rows(x.as_ptr(), n_in), View::transposed(w.as_ptr(), n_in)),
            T::one(),
            true,
            threads_for(rows * n_in * n_out),
        );
    }
    Ok(out)
}

/// The gradients of x, W and b from that of the output, `g`.
fn backward<T: WithDType + Float + Send + Sync>(
    x: &[T],
    w: &[T],
    g: &[T],
    (rows, n_in, n_out): (usize, usize, usize),
) -> [Vec<T>; 3] {
    let (mut dx, mut dw) = (vec![T::zero(); rows * n_in], vec![T::zero(); n_out * n_in]);
    let parallelism = threads_for(rows * n_in * n_out);
    // SAFETY: `g` holds rows × n_out values, `x` and `dx` rows × n_in, `w` and `dw` n_out × n_in.
    unsafe {
        // dx = g · W
        product(
            (rows, n_in, n_out),
            dx.as_mut_ptr(),
            n_in,
            (View::rows(g.as_ptr(), n_out), View::rows(w.as_ptr(), n_in)),
            T::one(),
            false,
            parallelism,
        );
        // dW = gᵀ · x
        product(
            (n_out, n_in, rows),
            dw.as_mut_ptr(),
            n_in,
            (View::transposed(g.as_ptr(), n_out), View::rows(x.as_ptr(), n_in)),
            T::one(),
            false,
            parallelism,
        );
    }
    [dx, dw, column_sums(g, None, n_out)]
}

/// [`backward`] on the storages of x, W and the output gradient (taken back through the
/// activation at its kept input, if any), as tensors shaped like `like` (x, W, b).
fn gradients<T: WithDType + Activated>(
    (sx, lx): (&CpuStorage, &Layout),
    (sw, lw): (&CpuStorage, &Layout),
    (sg, lg): (&CpuStorage, &Layout),
    pre: Option<(&CpuStorage, Activation)>,
    dims: (usize, usize, usize),
    like: [&Tensor; 3],
) -> candle_core::Result<[Tensor; 3]> {
    let g = contiguous_values::<T>(sg, lg, NAME)?;
    let through;
    let g = match pre {
        Some((z, activation)) => {
            through = through_activation(g, T::cpu_storage_as_slice(z)?, activation);
            &through
        }
        None => g,
    };
    let grads = backward(contiguous_values::<T>(sx, lx, NAME)?, contiguous_values(sw, lw, NAME)?, g, dims);
    let [dx, dw, db] = grads;
    let [x, w, b] = like;
    Ok([
        Tensor::from_vec(dx, x.shape(), x.device())?,
        Tensor::from_vec(dw, w.shape(), x.device())?,
        Tensor::from_vec(db, b.shape(), x.device())?,
    ])
}

impl CustomOp3 for Linear {
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
        let n_out = l2.dims().first().copied().unwrap_or(0);
        let mut out_dims = l1.dims().to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = n_out;
        }
        let z = by_dtype!(NAME, s1, forward((s1, l1), (s2, l2), (s3, l3)));
        let Some(activation) = self.activation else { return Ok((z, Shape::from(out_dims))) };
        let out = match &z {
            CpuStorage::F32(z) => CpuStorage::F32(activated(z, activation)),
            CpuStorage::F64(z) => CpuStorage::F64(activated(z, activation)),
            other => candle_core::bail!("{NAME}: unsupported dtype {:?}", other.dtype()),
        };
        *self.pre_activation.lock().map_err(|_| candle_core::Error::Msg(format!("{NAME}: poisoned")))? = Some(z);
        Ok((out, Shape::from(out_dims)))
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
        let (sx, lx) = x.storage_and_layout();
        let (sw, lw) = w.storage_and_layout();
        let (sg, lg) = grad.storage_and_layout();
        let (candle_core::Storage::Cpu(sx), candle_core::Storage::Cpu(sw), candle_core::Storage::Cpu(sg)) =
            (&*sx, &*sw, &*sg)
        else {
            candle_core::bail!("{NAME}: expects tensors on the CPU")
        };
        let dims = sizes(lx, lw, b.layout())?;
        let pre = self.pre_activation.lock().map_err(|_| candle_core::Error::Msg(format!("{NAME}: poisoned")))?;
        let pre = match (self.activation, pre.as_ref()) {
            (Some(activation), Some(z)) => Some((z, activation)),
            (Some(_), None) => candle_core::bail!("{NAME}: backward before forward"),
            (None, _) => None,
        };
        let [dx, dw, db] = match sx.dtype() {
            candle_core::DType::F32 => gradients::<f32>((sx, lx), (sw, lw), (sg, lg), pre, dims, [x, w, b])?,
            candle_core::DType::F64 => gradients::<f64>((sx, lx), (sw, lw), (sg, lg), pre, dims, [x, w, b])?,
            other => candle_core::bail!("{NAME}: unsupported dtype {other:?}"),
        };
        Ok((Some(dx), Some(dw), Some(db)))
    }
}
