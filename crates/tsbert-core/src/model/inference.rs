//! The encoder's inference pass on the CPU in f32, outside candle's graph: what encoding,
//! sentence embeddings, mask filling and evaluation run. It computes what
//! [`BertModel::encode`] computes in eval mode (the tests compare the two), but reads the
//! weights in place, writes every matrix product's bias before the product (`gemm` adds onto
//! it), computes a block's queries, keys and values as one product, adds residuals inside the
//! layer norms, applies the activation in place, and attends to each row's valid keys only, a
//! (row, head) pair a task, with the training op's kernel ([`crate::ops::attention`]): no
//! autograd bookkeeping and no temporaries besides a few buffers of the batch's size.

use candle_core::DType;
use rayon::prelude::*;

use crate::config::Activation;
use crate::error::Result;
use crate::model::bert::{BertModel, EncoderBlock};
use crate::model::layers::{LayerNorm, Linear};
use crate::ops::attention::{self, forward_block, Shared};
use crate::ops::layer_norm::normalize_row;
use crate::ops::linear::activation_and_slope;
use crate::ops::matmul::{product, threads_for, View};
use crate::ops::rows::{TensorValues, MIN_ROWS_A_TASK};

/// Values an element-wise task takes at least.
const VALUES_A_TASK: usize = 1 << 14;

const NAME: &str = "inference";

/// Whether `model`'s parameters can take the inference pass (f32 on the CPU).
pub fn runs_inference_pass(model: &BertModel) -> bool {
    let t = &model.embeddings.token;
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// A row-major `[rows, out]` product `x · Wᵀ + b` for `[rows, in]` `x` and a [`Linear`]'s
/// `[out, in]` weight, written into `out`.
fn linear(out: &mut [f32], x: &[f32], layer: &Linear, rows: usize) -> Result<()> {
    let (weight, bias) = layer.weight_and_bias();
    let (w, b) = (TensorValues::of(weight), TensorValues::of(bias));
    biased_product(out, x, (w.slice::<f32>(NAME)?, b.slice::<f32>(NAME)?), rows);
    Ok(())
}

/// The queries, keys and values of `x` as one product, `[rows, 3H]`, each row's side by side
/// (`x` is read once, and one larger product runs faster than three).
fn queries_keys_values(out: &mut [f32], x: &[f32], layers: [&Linear; 3], rows: usize) -> Result<()> {
    let (mut w, mut b) = (Vec::new(), Vec::new());
    for layer in layers {
        let (weight, bias) = layer.weight_and_bias();
        w.extend_from_slice(TensorValues::of(weight).slice::<f32>(NAME)?);
        b.extend_from_slice(TensorValues::of(bias).slice::<f32>(NAME)?);
    }
    biased_product(out, x, (&w, &b), rows);
    Ok(())
}

/// `out = x · Wᵀ + b` for `[rows, in]` `x`, `[out, in]` `W` and `[out]` `b`, row-major.
fn biased_product(out: &mut [f32], x: &[f32], (w, b): (&[f32], &[f32]), rows: usize) {
    let (n_out, n_in) = (b.len(), w.len() / b.len());
    for row in out.chunks_mut(n_out) {
        row.copy_from_slice(b);
    }
    // SAFETY: `out` holds rows × n_out values, `x` rows × n_in, `w` n_out × n_in (row-major).
    unsafe {
        product(
            (rows, n_out, n_in),
            out.as_mut_ptr(),
            n_out,
            (View::rows(x.as_ptr(), n_in), View::transposed(w.as_ptr(), n_in)),
            1.0,
            true,
            threads_for(rows * n_in * n_out),
        );
    }
}

/// `x ← LayerNorm(x + residual)` row by row (`residual` absent: `LayerNorm(x)`).
fn add_and_norm(x: &mut [f32], residual: Option<&[f32]>, norm: &LayerNorm) -> Result<()> {
    let (w, b) = (TensorValues::of(norm.weight()), TensorValues::of(norm.bias()));
    let (w, b) = (w.slice::<f32>(NAME)?, b.slice::<f32>(NAME)?);
    let (h, eps) = (w.len(), norm.eps() as f32);
    x.par_chunks_mut(h).enumerate().with_min_len(MIN_ROWS_A_TASK).for_each_init(
        || vec![0f32; h],
        |t, (r, row)| {
            match residual {
                Some(res) => {
                    for ((o, &a), &c) in t.iter_mut().zip(row.iter()).zip(&res[r * h..(r + 1) * h]) {
                        *o = a + c;
                    }
                }
                None => t.copy_from_slice(row),
            }
            normalize_row(t, row, eps);
            for ((o, &g), &s) in row.iter_mut().zip(w).zip(b) {
                *o = *o * g + s;
            }
        },
    );
    Ok(())
}

/// The activation in place.
fn activate(x: &mut [f32], activation: Activation) {
    x.par_iter_mut()
        .with_min_len(VALUES_A_TASK)
        .for_each(|v| *v = activation_and_slope(activation, f64::from(*v)).0 as f32);
}

/// Scaled dot-product attention of every (row, head) over the row's valid keys: `context`
/// `[B·L, H]` from `qkv` `[B·L, 3H]` (each row's queries, keys and values side by side).
fn attend(context: &mut [f32], qkv: &[f32], dims: Dims, valid_lens: &[usize], heads: usize) {
    let Dims { l, h, .. } = dims;
    let out = Shared(context.as_mut_ptr());
    let qkv = Shared(qkv.as_ptr() as *mut f32);
    (0..valid_lens.len() * heads).into_par_iter().for_each_init(
        || (Vec::new(), Vec::new()),
        |(weights, scratch), task| {
            let (row, head) = (task / heads, task % heads);
            let keys = valid_lens[row];
            weights.resize(l * keys, 0.0);
            let at = row * l * 3 * h + head * (h / heads);
            // SAFETY: qkv holds B·L rows of 3h values and context B·L rows of h; each task
            // writes only its own (row, head) block of `context`.
            unsafe {
                let q = qkv.get().add(at) as *const f32;
                forward_block(
                    &mut weights[..l * keys],
                    out.get().add(row * l * h + head * (h / heads)),
                    (q, q.add(h), q.add(2 * h)),
                    3 * h,
                    keys,
                    attention::Dims { l, h, heads },
                    None,
                    scratch,
                );
            }
        },
    );
}

/// Sizes of a pass.
#[derive(Clone, Copy)]
struct Dims {
    /// B·L rows.
    n: usize,
    /// L.
    l: usize,
    /// H.
    h: usize,
}

/// One encoder block in place on `x` `[B·L, H]` (eval mode: no dropout).
fn block(x: &mut [f32], block: &EncoderBlock, dims: Dims, valid_lens: &[usize], buffers: &mut Buffers) -> Result<()> {
    let Dims { n, .. } = dims;
    let attention = &block.attention;
    queries_keys_values(&mut buffers.qkv, x, [&attention.w_q, &attention.w_k, &attention.w_v], n)?;
    attend(&mut buffers.context, &buffers.qkv, dims, valid_lens, attention.heads);
    // y = LayerNorm(context · W_oᵀ + b_o + x)
    linear(&mut buffers.y, &buffers.context, &attention.w_o, n)?;
    add_and_norm(&mut buffers.y, Some(x), &block.norm1)?;
    linear(&mut buffers.inner, &buffers.y, &block.dense1, n)?;
    activate(&mut buffers.inner, block.activation);
    // x = LayerNorm(inner · W2ᵀ + b2 + y)
    linear(x, &buffers.inner, &block.dense2, n)?;
    add_and_norm(x, Some(&buffers.y), &block.norm2)
}

/// Scratch buffers of one pass.
struct Buffers {
    qkv: Vec<f32>,
    y: Vec<f32>,
    context: Vec<f32>,
    inner: Vec<f32>,
}

/// The contextual embedding of every token, `[B·L, H]` row-major, of `tokens` and
/// `segments` (`B·L` ids, already checked against the model's sizes) with `valid_lens` (B
/// values in `1..=L`): what [`BertModel::encode`] gives in eval mode.
pub fn encode(model: &BertModel, tokens: &[u32], segments: &[u32], valid_lens: &[usize]) -> Result<Vec<f32>> {
    let b = valid_lens.len();
    let n = tokens.len();
    let l = n / b.max(1);
    let emb = &model.embeddings;
    let (tok, seg, pos) =
        (TensorValues::of(&emb.token), TensorValues::of(&emb.segment), TensorValues::of(&emb.position));
    let (tok, seg, pos) = (tok.slice::<f32>(NAME)?, seg.slice::<f32>(NAME)?, pos.slice::<f32>(NAME)?);
    let h = pos.len() / emb.position.dim(0)?;
    let mut x = vec![0f32; n * h];
    x.par_chunks_mut(h).enumerate().with_min_len(MIN_ROWS_A_TASK).for_each(|(r, row)| {
        let (t, s, p) = (tokens[r] as usize * h, segments[r] as usize * h, (r % l) * h);
        for (j, o) in row.iter_mut().enumerate() {
            *o = (tok[t + j] + seg[s + j]) + pos[p + j];
        }
    });
    if let Some(norm) = &emb.norm {
        add_and_norm(&mut x, None, norm)?;
    }
    let ffn = model.blocks.first().map_or(h, |blk| blk.dense1.weight_and_bias().1.dim(0).unwrap_or(h));
    let mut buffers = Buffers {
        qkv: vec![0f32; n * 3 * h],
        y: vec![0f32; n * h],
        context: vec![0f32; n * h],
        inner: vec![0f32; n * ffn],
    };
    let dims = Dims { n, l, h };
    for blk in &model.blocks {
        block(&mut x, blk, dims, valid_lens, &mut buffers)?;
    }
    Ok(x)
}
