//! Scaled dot-product attention with a key-padding mask and dropout on the weights, from the
//! `[B, L, H]` projections to the `[B, L, H]` context: one CPU op whose forward and backward
//! work a (row, head) pair a task, over the row's valid keys only, reading each head's columns
//! in place; beside the composed candle version (heads split into copies, scores, mask, softmax,
//! dropout and the products as a dozen graph nodes of up to `[B, heads, L, L]`, each paying
//! candle's gradient bookkeeping), which other devices run.

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, WithDType};
use gemm::Parallelism;
use num_traits::Float;
use rayon::prelude::*;

use crate::ops::matmul::{product, View};
use crate::ops::rows::{dot, max, ExpShifted, TensorValues};
use crate::ops::runs_fused;
use crate::ops::softmax::composed_softmax_last_dim;

const NAME: &str = "tsbert-attention";

/// Large negative score the composed version gives keys beyond a row's valid length: after
/// softmax their weight is exactly zero.
const MASKED_SCORE: f32 = -1e9;

/// Which keys each row attends to: its first `valid_lens[row]` of `seq_len`; also as the
/// additive `[B, 1, 1, L]` score mask the composed version adds.
#[derive(Debug, Clone)]
pub struct KeyMask {
    valid_lens: Vec<usize>,
    scores: Tensor,
}

impl KeyMask {
    /// The mask of rows with `valid_lens` (each in `1..=seq_len`), its score tensor in the
    /// dtype and on the device of `like`.
    pub fn new(valid_lens: &[usize], seq_len: usize, like: &Tensor) -> candle_core::Result<Self> {
        let values: Vec<f32> = valid_lens
            .iter()
            .flat_map(|&v| (0..seq_len).map(move |j| if j < v { 0.0 } else { MASKED_SCORE }))
            .collect();
        let scores =
            Tensor::from_vec(values, (valid_lens.len(), 1, 1, seq_len), like.device())?.to_dtype(like.dtype())?;
        Ok(Self { valid_lens: valid_lens.to_vec(), scores })
    }

    /// Valid keys of each row.
    pub fn valid_lens(&self) -> &[usize] {
        &self.valid_lens
    }
}

/// `softmax(q kᵀ / √d + mask) ⊙ dropout · v` of each head (`d = H / heads` columns each) for
/// `q`, `k`, `v` `[B, L, H]`; `dropout`, if any, `[B, heads, L, L]` factors (0 or `1/(1-p)`).
/// The fused op on the CPU (f32, f64), the composed candle ops elsewhere.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    keys: &KeyMask,
    heads: usize,
    dropout: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    if runs_fused(q) {
        fused_attention(q, k, v, keys, heads, dropout)
    } else {
        composed_attention(q, k, v, keys, heads, dropout)
    }
}

/// The attention as one CPU op (f32, f64).
pub fn fused_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    keys: &KeyMask,
    heads: usize,
    dropout: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let (b, l, h) = q.dims3()?;
    if keys.valid_lens.len() != b || h % heads != 0 {
        candle_core::bail!("{NAME}: {b} rows of width {h}, {} valid lengths, {heads} heads", keys.valid_lens.len())
    }
    let op = Attention {
        valid_lens: keys.valid_lens.clone(),
        dims: Dims { l, h, heads },
        dropout: dropout.map(|m| m.contiguous()).transpose()?,
        weights: Mutex::new(None),
    };
    q.contiguous()?.apply_op3(&k.contiguous()?, &v.contiguous()?, op)
}

/// The attention from differentiable candle ops (any device; the reference for the fused op).
pub fn composed_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    keys: &KeyMask,
    heads: usize,
    dropout: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let (b, l, h) = q.dims3()?;
    let d = h / heads;
    let split = |x: &Tensor| x.reshape((b, l, heads, d))?.transpose(1, 2)?.contiguous();
    let (q, k, v) = (split(q)?, split(k)?, split(v)?);
    let scores = (q.matmul(&k.t()?)? * (1.0 / (d as f64).sqrt()))?.broadcast_add(&keys.scores)?;
    let weights = composed_softmax_last_dim(&scores)?;
    let weights = match dropout {
        Some(mask) => (weights * mask)?,
        None => weights,
    };
    weights.matmul(&v)?.transpose(1, 2)?.reshape((b, l, h))
}

/// Sizes of one pass.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    /// L, tokens a row.
    pub l: usize,
    /// H, the width of a token (all heads).
    pub h: usize,
    /// Heads.
    pub heads: usize,
}

/// The op: `(q, k, v)` → context; keeps the softmax weights of the forward pass (`[B·heads,
/// L, L]`, the first `valid_len` columns of each row used) for the backward pass.
struct Attention {
    valid_lens: Vec<usize>,
    dims: Dims,
    dropout: Option<Tensor>,
    weights: Mutex<Option<CpuStorage>>,
}

/// A pointer that tasks reading one buffer, or writing disjoint blocks of it, share.
#[derive(Clone, Copy)]
pub(crate) struct Shared<T>(pub(crate) *mut T);
// SAFETY: every task writes its own (row, head) block of the buffer and nothing else.
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// The pointer (a method, so that closures capture the whole `Shared`, not its field).
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

/// The forward pass of one (row, head) block over `keys` valid keys: the softmax weights into
/// `weights` (L × keys, rows `keys` apart), then the context block from them, each times its
/// `dropout` factor (L rows `l` apart) if any. `q`, `k`, `v` point at the block's first value
/// (L rows of `d` values, `stride` apart), `context` likewise (rows `h` apart).
///
/// # Safety
/// The pointers must address those blocks; nothing else may access the context block meanwhile.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn forward_block<T: ExpShifted + 'static>(
    weights: &mut [T],
    context: *mut T,
    (q, k, v): (*const T, *const T, *const T),
    stride: usize,
    keys: usize,
    dims: Dims,
    dropout: Option<&[T]>,
    scratch: &mut Vec<T>,
) {
    let Dims { l, h, heads } = dims;
    let d = h / heads;
    let scale = T::from(1.0 / (d as f64).sqrt()).unwrap_or_else(T::nan);
    // SAFETY: the block of each input is L × d with rows `stride` apart; `weights` is L × keys.
    unsafe {
        product(
            (l, keys, d),
            weights.as_mut_ptr(),
            keys,
            (View::rows(q, stride), View::transposed(k, stride)),
            scale,
            false,
            Parallelism::None,
        );
    }
    softmax_rows(weights, keys);
    let used = with_dropout(weights, dropout, (l, keys), scratch);
    // SAFETY: as above; the context block is L × d with rows h apart.
    unsafe {
        product(
            (l, d, keys),
            context,
            h,
            (View::rows(used.as_ptr(), keys), View::rows(v, stride)),
            T::one(),
            false,
            Parallelism::None,
        )
    }
}

widest_vectors! {
    /// Each row of `weights` (rows of `keys` values) replaced by its softmax, compiled for the
    /// widest vectors the CPU has (the same arithmetic, so the same bits, on every CPU).
    fn softmax_rows<T: ExpShifted>(weights: &mut [T], keys: usize) {
        for s in weights.chunks_mut(keys) {
            let m = max(s);
            let inv = T::one() / T::exp_shifted_sum(s, m);
            s.iter_mut().for_each(|x| *x = *x * inv);
        }
    }
}

/// The softmax weights of a block (L × keys) as the context uses them: times their dropout
/// `factors` (L rows `l` apart), written into `scratch`, if any; else the weights themselves.
fn with_dropout<'a, T: Float>(
    weights: &'a [T],
    factors: Option<&[T]>,
    (l, keys): (usize, usize),
    scratch: &'a mut Vec<T>,
) -> &'a [T] {
    let Some(factors) = factors else { return weights };
    scratch.clear();
    for (i, row) in weights.chunks(keys).enumerate() {
        scratch.extend(row.iter().zip(&factors[i * l..i * l + keys]).map(|(&w, &f)| w * f));
    }
    scratch
}

impl Attention {
    fn forward<T: WithDType + ExpShifted>(&self, q: &[T], k: &[T], v: &[T]) -> candle_core::Result<(Vec<T>, Vec<T>)> {
        let Dims { l, heads, .. } = self.dims;
        let mask = self.dropout.as_ref().map(TensorValues::of);
        let mask = mask.as_ref().map(|m| m.slice::<T>(NAME)).transpose()?;
        let mut context = vec![T::zero(); q.len()];
        let mut weights = vec![T::zero(); self.valid_lens.len() * heads * l * l];
        let out = Shared(context.as_mut_ptr());
        let read = |x: &[T]| Shared(x.as_ptr() as *mut T);
        let (q, k, v) = (read(q), read(k), read(v));
        weights.par_chunks_mut(l * l).enumerate().for_each_init(Vec::new, |scratch, (task, w)| {
            let (row, head) = (task / heads, task % heads);
            let keys = self.valid_lens[row];
            let base = row * l * self.dims.h + head * (self.dims.h / heads);
            let dropout = mask.map(|m| &m[task * l * l..(task + 1) * l * l]);
            // SAFETY: the inputs hold B·L rows of h values; each task writes only its block.
            unsafe {
                forward_block(
                    &mut w[..l * keys],
                    out.get().add(base),
                    (q.get().add(base), k.get().add(base), v.get().add(base)),
                    self.dims.h,
                    keys,
                    self.dims,
                    dropout,
                    scratch,
                )
            }
        });
        Ok((context, weights))
    }

    /// The gradients of q, k and v from that of the context, `grad`.
    fn backward<T: WithDType + Float>(
        &self,
        (q, k, v): (&[T], &[T], &[T]),
        weights: &[T],
        grad: &[T],
    ) -> candle_core::Result<[Vec<T>; 3]> {
        let Dims { l, h, heads } = self.dims;
        let d = h / heads;
        let scale = T::from(1.0 / (d as f64).sqrt()).unwrap_or_else(T::nan);
        let mask = self.dropout.as_ref().map(TensorValues::of);
        let mask = mask.as_ref().map(|m| m.slice::<T>(NAME)).transpose()?;
        let mut grads = [vec![T::zero(); q.len()], vec![T::zero(); q.len()], vec![T::zero(); q.len()]];
        let [dq, dk, dv] = &mut grads;
        let (dq, dk, dv) = (Shared(dq.as_mut_ptr()), Shared(dk.as_mut_ptr()), Shared(dv.as_mut_ptr()));
        let read = |x: &[T]| Shared(x.as_ptr() as *mut T);
        let (q, k, v, g) = (read(q), read(k), read(v), read(grad));
        weights.par_chunks(l * l).enumerate().for_each_init(
            || (Vec::new(), Vec::new()),
            |(used, dw), (task, w)| {
                let (row, head) = (task / heads, task % heads);
                let keys = self.valid_lens[row];
                let w = &w[..l * keys];
                let base = row * l * h + head * d;
                let factors = mask.map(|m| &m[task * l * l..(task + 1) * l * l]);
                let at = |p: Shared<T>| p.get().wrapping_add(base) as *const T;
                let used = with_dropout(w, factors, (l, keys), used);
                dw.clear();
                dw.resize(l * keys, T::zero());
                // SAFETY: each block is L × d at `base` with rows h apart, the weights L × keys;
                // the task writes its own blocks of dq, dk and dv only.
                unsafe {
                    // dv = usedᵀ · g
                    product(
                        (keys, d, l),
                        dv.get().add(base),
                        h,
                        (View::transposed(used.as_ptr(), keys), View::rows(at(g), h)),
                        T::one(),
                        false,
                        Parallelism::None,
                    );
                    // d(used) = g · vᵀ
                    product(
                        (l, keys, d),
                        dw.as_mut_ptr(),
                        keys,
                        (View::rows(at(g), h), View::transposed(at(v), h)),
                        T::one(),
                        false,
                        Parallelism::None,
                    );
                }
                // through dropout, then softmax: ds = w ⊙ (dw − Σ dw·w), times the score scale
                for (i, (dwr, wr)) in dw.chunks_mut(keys).zip(w.chunks(keys)).enumerate() {
                    if let Some(f) = factors {
                        dwr.iter_mut().zip(&f[i * l..i * l + keys]).for_each(|(x, &y)| *x *= y);
                    }
                    let s = dot(dwr, wr);
                    dwr.iter_mut().zip(wr).for_each(|(x, &y)| *x = y * (*x - s) * scale);
                }
                // SAFETY: as above.
                unsafe {
                    // dq = ds · k
                    product(
                        (l, d, keys),
                        dq.get().add(base),
                        h,
                        (View::rows(dw.as_ptr(), keys), View::rows(at(k), h)),
                        T::one(),
                        false,
                        Parallelism::None,
                    );
                    // dk = dsᵀ · q
                    product(
                        (keys, d, l),
                        dk.get().add(base),
                        h,
                        (View::transposed(dw.as_ptr(), keys), View::rows(at(q), h)),
                        T::one(),
                        false,
                        Parallelism::None,
                    );
                }
            },
        );
        Ok(grads)
    }
}

impl CustomOp3 for Attention {
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
        let offsets = |s: &CpuStorage, l: &Layout| match l.contiguous_offsets() {
            Some(o) if s.dtype() == s1.dtype() => Ok(o),
            _ => Err(candle_core::Error::Msg(format!("{NAME}: expects contiguous inputs of one dtype"))),
        };
        let (a, b, c) = (offsets(s1, l1)?, offsets(s2, l2)?, offsets(s3, l3)?);
        let (context, weights) = match (s1, s2, s3) {
            (CpuStorage::F32(q), CpuStorage::F32(k), CpuStorage::F32(v)) => {
                let (c, w) = self.forward(&q[a.0..a.1], &k[b.0..b.1], &v[c.0..c.1])?;
                (CpuStorage::F32(c), CpuStorage::F32(w))
            }
            (CpuStorage::F64(q), CpuStorage::F64(k), CpuStorage::F64(v)) => {
                let (c, w) = self.forward(&q[a.0..a.1], &k[b.0..b.1], &v[c.0..c.1])?;
                (CpuStorage::F64(c), CpuStorage::F64(w))
            }
            _ => candle_core::bail!("{NAME}: unsupported dtype {:?}", s1.dtype()),
        };
        *self.weights.lock().map_err(|_| candle_core::Error::Msg(format!("{NAME}: poisoned")))? = Some(weights);
        Ok((context, l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _context: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let weights = self.weights.lock().map_err(|_| candle_core::Error::Msg(format!("{NAME}: poisoned")))?;
        let Some(weights) = weights.as_ref() else { candle_core::bail!("{NAME}: backward before forward") };
        let grad = grad.contiguous()?;
        let (vq, vk, vv, vg) = (TensorValues::of(q), TensorValues::of(k), TensorValues::of(v), TensorValues::of(&grad));
        let grads = match weights {
            CpuStorage::F32(w) => self
                .backward((vq.slice(NAME)?, vk.slice(NAME)?, vv.slice(NAME)?), w, vg.slice(NAME)?)?
                .map(|g| Tensor::from_vec(g, q.shape(), q.device())),
            CpuStorage::F64(w) => self
                .backward((vq.slice(NAME)?, vk.slice(NAME)?, vv.slice(NAME)?), w, vg.slice(NAME)?)?
                .map(|g| Tensor::from_vec(g, q.shape(), q.device())),
            other => candle_core::bail!("{NAME}: unsupported dtype {:?}", other.dtype()),
        };
        let [dq, dk, dv] = grads;
        Ok((Some(dq?), Some(dk?), Some(dv?)))
    }
}
