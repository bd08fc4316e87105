//! The encoder's inference pass on the CPU in f32, outside candle's graph: what encoding,
//! sentence embeddings, mask filling and evaluation run. It computes what
//! [`BertModel::encode`] computes in eval mode (the tests compare the two), but multiplies by
//! the dense layers' own weights with a dot kernel ([`crate::ops::dots`]; on a CPU without one,
//! by a copy made once in the layout `gemm` reads without repacking), or by an int8 copy in q8
//! ([`PackedWeights`], re-made after any weight changes; for a model loaded in q8, made as its
//! file is read and the only copy, [`HeldWeights`]; for a model loaded to infer only in f32,
//! packed as read into the panels the AVX-512 or AVX2 product reads, [`HeldForm::Panels`]).
//! The dot kernel starts its sums from the bias and applies the activation to the blocks it
//! has summed (the q8 product applies it to the values it has scaled; `gemm` on a copy gets
//! the bias first and the activation after, [`crate::ops::dots::by_gemm`]).
//! The pass computes a block's queries, keys and values as one product (one parallel
//! section), adds residuals inside the layer norms, attends to each row's valid keys only, a
//! (sequence, head) pair a task, with the training op's kernel (and, for callers that read
//! valid rows only, skips the padding rows: [`Padding::Zeros`]) ([`crate::ops::attention`]):
//! no autograd bookkeeping and no temporaries besides a few buffers of a chunk's size: a large
//! batch goes through the blocks a chunk of sequences at a time (`ROWS_A_CHUNK` rows at most).

use std::collections::HashMap;

use candle_core::{DType, Tensor};
use rayon::prelude::*;

use crate::config::{Activation, BertConfig};
use crate::error::Result;
use crate::model::bert::{BertModel, EncoderBlock, TOKEN_TABLE};
use crate::model::layers::{LayerNorm, Linear};
use crate::ops::attention::{self, forward_block, Shared};
use crate::ops::cpu_kernel::CpuKernel;
use crate::ops::dots::{by_gemm, dots, DotKernel, Epilogue};
use crate::ops::layer_norm::normalize_row;
use crate::ops::matmul::View;
#[cfg(target_arch = "x86_64")]
use crate::ops::panel_matrix::PanelMatrix;
use crate::ops::quantized::{quantized_product, Kernel, QuantizedMatrix, QuantizedRows, QuantizedTable};
use crate::ops::rows::{TensorValues, MIN_ROWS_A_TASK};
use crate::params::weights_written;
use crate::weights::StoredTensor;

const NAME: &str = "inference";

/// Rows a chunk: the pass runs a batch through all its blocks a chunk of whole sequences at a
/// time, chunks of at most this many rows (a longer sequence alone), so that a block's
/// activations stay in the caches between its steps and its buffers are a chunk's, not the
/// batch's. BERT-base at a batch of 32 × 128 tokens on 2 Zen 4 cores, in chunks of 768 rows
/// instead of the whole batch: 8.2–8.7 → 9.1–9.3 sequences/s and 40–48 MiB less at the peak in
/// f32, the same speed and 51 MiB less in q8 (1536 rows: 9.1 and +28 MiB; 512: 9.0–9.2).
/// A fixed number, not one a thread: which rows share a chunk decides which product kernel
/// runs, and so the bits, which must not depend on the thread count.
const ROWS_A_CHUNK: usize = 768;

/// Rows of a weight read from a file at a time when it is quantised as it is read.
const ROWS_A_READ: usize = 256;

/// Whether `model`'s parameters can take the inference pass (f32 on the CPU).
pub fn runs_inference_pass(model: &BertModel) -> bool {
    let t = &model.embeddings.token;
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// How the inference pass multiplies by the dense layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// f32 products.
    F32,
    /// int8 weights (per output channel) and activations (per row), int32 sums, by `kernel`
    /// ([`crate::ops::quantized`]).
    Q8(Kernel),
}

/// A dense layer's weight as the inference pass multiplies by it.
enum Weight {
    /// The layers' own `[out, in]` weights — their tensors, sharing the model's storage: no copy
    /// — each multiplied into its columns of the output by a dot kernel ([`crate::ops::dots`]).
    InPlace(Vec<Tensor>, DotKernel),
    /// Transposed to `[in, out]` row-major, the layout `gemm`'s kernel reads in place (read
    /// `[out, in]`, `gemm` repacks the whole weight at every product, which at a sequence or two
    /// a batch took longer than the product itself): on a CPU with no dot kernel
    /// ([`DotKernel::Packed`]).
    Packed(Vec<f32>),
    /// Quantised, laid out for the kernel that multiplies by it.
    Q8(QuantizedMatrix),
    /// f32 in the panels of the CPU's product, the only copy ([`HeldForm::Panels`]).
    #[cfg(target_arch = "x86_64")]
    Panels(PanelMatrix),
}

/// A dense layer as the inference pass multiplies by it.
struct Dense {
    weight: Weight,
    /// `[out]`.
    bias: Vec<f32>,
    /// Input values a row.
    n_in: usize,
}

/// The biases of `layers` side by side.
fn biases(layers: &[&Linear]) -> Result<Vec<f32>> {
    let mut bias = Vec::new();
    for layer in layers {
        let values = TensorValues::of(layer.weight_and_bias().1);
        bias.extend_from_slice(values.slice::<f32>(NAME)?);
    }
    Ok(bias)
}

impl Dense {
    /// The layers of `layers` side by side as one (their outputs concatenated).
    fn of(layers: &[&Linear], precision: Precision) -> Result<Self> {
        let bias = biases(layers)?;
        let guards: Vec<_> = layers.iter().map(|layer| TensorValues::of(layer.weight_and_bias().0)).collect();
        let parts = guards.iter().map(|w| w.slice::<f32>(NAME)).collect::<candle_core::Result<Vec<_>>>()?;
        let (n_out, n_in) = (bias.len(), layers[0].weight_and_bias().0.dim(1)?);
        let weight = match precision {
            Precision::Q8(kernel) => Weight::Q8(QuantizedMatrix::of(&parts, n_in, kernel)),
            Precision::F32 => match DotKernel::detect() {
                DotKernel::Packed => {
                    let mut weight = vec![0f32; n_in * n_out];
                    for (o, row) in parts.iter().flat_map(|w| w.chunks_exact(n_in)).enumerate() {
                        for (k, &v) in row.iter().enumerate() {
                            weight[k * n_out + o] = v;
                        }
                    }
                    Weight::Packed(weight)
                }
                kernel => {
                    Weight::InPlace(layers.iter().map(|layer| layer.weight_and_bias().0.clone()).collect(), kernel)
                }
            },
        };
        Ok(Self { weight, bias, n_in })
    }

    /// The layers of `layers` side by side, multiplied by `weight`, the only copy of their
    /// weights (the layers' own weight tensors are not read).
    fn held(layers: &[&Linear], weight: HeldMatrix) -> Result<Self> {
        let bias = biases(layers)?;
        if bias.len() != weight.n_out() {
            return Err(crate::Error::Internal(format!(
                "{NAME}: a held weight of {} channels for {} biases",
                weight.n_out(),
                bias.len()
            )));
        }
        let n_in = weight.n_in();
        let weight = match weight {
            HeldMatrix::Q8(weight) => Weight::Q8(weight),
            #[cfg(target_arch = "x86_64")]
            HeldMatrix::Panels(weight) => Weight::Panels(weight),
        };
        Ok(Self { n_in, weight, bias })
    }

    /// Bytes it holds besides the model's tensors (a weight read in place counts nothing).
    fn bytes(&self) -> usize {
        let weight = match &self.weight {
            Weight::InPlace(..) => 0,
            Weight::Packed(weight) => 4 * weight.len(),
            Weight::Q8(weight) => weight.bytes(),
            #[cfg(target_arch = "x86_64")]
            Weight::Panels(weight) => weight.bytes(),
        };
        weight + 4 * self.bias.len()
    }

    /// `out = activation(x · Wᵀ + b)` for `[rows, in]` `x`, row-major.
    fn apply(&self, out: &mut [f32], x: &[f32], rows: usize, activation: Option<Activation>) -> Result<()> {
        let (n_in, n_out) = (self.n_in, self.bias.len());
        let (out, x) = (&mut out[..rows * n_out], &x[..rows * n_in]);
        match &self.weight {
            Weight::InPlace(weights, kernel) => {
                let values: Vec<_> = weights.iter().map(TensorValues::of).collect();
                let weights = values.iter().map(|w| w.slice::<f32>(NAME)).collect::<candle_core::Result<Vec<_>>>()?;
                let epilogue = Epilogue { bias: Some(&self.bias), activation };
                dots(out, n_out, x, (&weights, n_in), epilogue, *kernel);
            }
            Weight::Packed(weight) => {
                let epilogue = Epilogue { bias: Some(&self.bias), activation };
                // SAFETY: the copy holds n_in × n_out values, row-major.
                unsafe { by_gemm(out, n_out, (x, n_in), &[(View::rows(weight.as_ptr(), n_out), n_out)], epilogue) };
            }
            Weight::Q8(weight) => quantized_product(out, &QuantizedRows::of(x, n_in), weight, &self.bias, activation),
            #[cfg(target_arch = "x86_64")]
            Weight::Panels(weight) => weight.product(out, n_out, x, Epilogue { bias: Some(&self.bias), activation }),
        }
        Ok(())
    }
}

/// An encoder block's dense layers, [`Dense`]: the queries, keys and values as one product
/// (`x` read once; one larger product runs faster than three).
struct PackedBlock {
    queries_keys_values: Dense,
    output: Dense,
    dense1: Dense,
    dense2: Dense,
}

/// The encoder's dense layers as the inference pass multiplies by them (the weights themselves,
/// a copy where the CPU has no dot kernel, or an int8 copy), made from the model's weights and
/// valid while they stay unchanged ([`PackedWeights::is_current`]) — or, made by [`HeldWeights`]
/// as a file was read, the only copy of those weights there is.
pub struct PackedWeights {
    blocks: Vec<PackedBlock>,
    /// The token embedding table in int8, when the model holds it so only ([`HeldWeights`]).
    tokens: Option<QuantizedTable>,
    precision: Precision,
    written: u64,
    /// Whether the model holds no other copy of these weights (they never go stale).
    only_copy: bool,
}

impl std::fmt::Debug for PackedWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedWeights")
            .field("blocks", &self.blocks.len())
            .field("precision", &self.precision)
            .field("written", &self.written)
            .field("only_copy", &self.only_copy)
            .finish()
    }
}

impl PackedWeights {
    /// `model`'s dense layers (f32 on the CPU: see [`runs_inference_pass`]) at `precision`.
    pub fn of(model: &BertModel, precision: Precision) -> Result<Self> {
        let written = weights_written();
        let blocks = model
            .blocks
            .iter()
            .map(|blk| {
                let a = &blk.attention;
                Ok(PackedBlock {
                    queries_keys_values: Dense::of(&[&a.w_q, &a.w_k, &a.w_v], precision)?,
                    output: Dense::of(&[&a.w_o], precision)?,
                    dense1: Dense::of(&[&blk.dense1], precision)?,
                    dense2: Dense::of(&[&blk.dense2], precision)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { blocks, tokens: None, precision, written, only_copy: false })
    }

    /// Bytes they hold besides the model's tensors: the copies of the dense layers (int8, or
    /// transposed on a CPU without a dot kernel), their biases, the int8 token table.
    pub fn bytes(&self) -> usize {
        let blocks = self.blocks.iter().flat_map(|b| [&b.queries_keys_values, &b.output, &b.dense1, &b.dense2]);
        blocks.map(Dense::bytes).sum::<usize>() + self.tokens.as_ref().map_or(0, QuantizedTable::bytes)
    }

    /// How the pass multiplies by them.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Whether these are at `precision` and no weight anywhere has been written since they
    /// were made (or they are the model's only copy of its dense weights).
    pub fn is_current(&self, precision: Precision) -> bool {
        self.precision == precision && (self.only_copy || self.written == weights_written())
    }
}

/// The form a model loaded to infer only holds its encoder's dense weights in, instead of its
/// f32 parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldForm {
    /// int8 for `kernel` (q8), the token embedding table too unless the MLM head's decoder
    /// reads it: about a quarter of their f32 memory.
    Q8(Kernel),
    /// f32, packed once at load into the panels of `width` output channels that the CPU's
    /// product reads (32 for AVX-512, which otherwise copies a panel at a time at every
    /// product; 16 for AVX2): the same memory, the same values (BERT-base on 2 Zen 4 cores with
    /// AVX-512: 7% faster at a batch of one sequence, 3.6% at 32).
    Panels {
        /// Output channels a panel.
        width: usize,
    },
}

impl HeldForm {
    /// [`HeldForm::Panels`] where this CPU has a product by packed panels (x86-64 with AVX-512F
    /// or AVX2 and FMA, unless `TSBERT_F32_KERNEL` forces the `gemm` copy); else none.
    pub fn panels() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        return PanelMatrix::width_for(DotKernel::detect()).map(|width| Self::Panels { width });
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// How the inference pass of a model holding its weights so computes.
    fn precision(self) -> Precision {
        match self {
            Self::Q8(kernel) => Precision::Q8(kernel),
            Self::Panels { .. } => Precision::F32,
        }
    }
}

/// A dense product's weight in a [`HeldForm`].
enum HeldMatrix {
    Q8(QuantizedMatrix),
    #[cfg(target_arch = "x86_64")]
    Panels(PanelMatrix),
}

impl HeldMatrix {
    /// All zeros, `n_out` channels of `n_in` inputs, in `form`.
    fn zeros(n_out: usize, n_in: usize, form: HeldForm) -> Self {
        match form {
            HeldForm::Q8(kernel) => Self::Q8(QuantizedMatrix::zeros(n_out, n_in, kernel)),
            #[cfg(target_arch = "x86_64")]
            HeldForm::Panels { width } => Self::Panels(PanelMatrix::zeros(n_out, n_in, width)),
            #[cfg(not(target_arch = "x86_64"))]
            HeldForm::Panels { .. } => unreachable!("HeldForm::panels() is none off x86-64"),
        }
    }

    /// Channels `first..` from `rows` (`[n, n_in]` row-major f32).
    fn set_rows(&mut self, first: usize, rows: &[f32]) {
        match self {
            Self::Q8(matrix) => matrix.set_rows(first, rows),
            #[cfg(target_arch = "x86_64")]
            Self::Panels(matrix) => matrix.set_rows(first, rows),
        }
    }

    fn n_out(&self) -> usize {
        match self {
            Self::Q8(matrix) => matrix.n_out(),
            #[cfg(target_arch = "x86_64")]
            Self::Panels(matrix) => matrix.n_out(),
        }
    }

    fn n_in(&self) -> usize {
        match self {
            Self::Q8(matrix) => matrix.n_in(),
            #[cfg(target_arch = "x86_64")]
            Self::Panels(matrix) => matrix.n_in(),
        }
    }
}

/// The weights a model loaded to infer only holds in a [`HeldForm`] only, each converted as a
/// weights file hands it over ([`HeldWeights::take`]), a block of rows at a time as it is read:
/// the encoder's dense layers, and in q8 the token embedding table unless the MLM head's
/// decoder reads it. The model's parameters hold none of them
/// ([`crate::params::ParamStore::held_elsewhere`]), and their f32 parameters are never whole in
/// memory; [`HeldWeights::into_packed`] makes the model's [`PackedWeights`] of them once the
/// model is built.
pub struct HeldWeights {
    form: HeldForm,
    /// Where each dense weight it takes goes, by name.
    places: HashMap<String, Place>,
    /// Whether the token embedding table is taken.
    takes_tokens: bool,
    /// The products being filled, by (block, product), with the weights they still lack.
    filling: HashMap<(usize, usize), (HeldMatrix, usize)>,
    /// The products filled.
    done: HashMap<(usize, usize), HeldMatrix>,
    /// The token embedding table, quantised.
    tokens: Option<QuantizedTable>,
}

/// Where a dense weight goes in the inference pass's products.
#[derive(Debug, Clone, Copy)]
struct Place {
    /// (block, product) ([`EncoderBlock::dense_weight_names`]).
    product: (usize, usize),
    /// Its first row in the product.
    first: usize,
    /// The product's rows and columns.
    size: (usize, usize),
    /// The weights the product has.
    weights: usize,
}

impl std::fmt::Debug for HeldWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldWeights").field("form", &self.form).field("done", &self.done.len()).finish()
    }
}

impl HeldWeights {
    /// Ready to take the weights of a model of `config`, to hold them in `form`.
    pub fn new(config: &BertConfig, form: HeldForm) -> Result<Self> {
        let shapes: HashMap<String, Vec<usize>> = BertModel::param_shapes(config)?.into_iter().collect();
        let mut places = HashMap::new();
        for b in 0..config.layers {
            for (p, names) in EncoderBlock::dense_weight_names(b).into_iter().enumerate() {
                let dims: Vec<&Vec<usize>> = names.iter().filter_map(|n| shapes.get(n)).collect();
                let size = (dims.iter().map(|d| d[0]).sum(), dims.first().map_or(0, |d| d[1]));
                let mut first = 0;
                for (name, dims) in names.iter().zip(&dims) {
                    places.insert(name.clone(), Place { product: (b, p), first, size, weights: names.len() });
                    first += dims[0];
                }
            }
        }
        let takes_tokens = matches!(form, HeldForm::Q8(_)) && !(config.mlm_head && config.tie_word_embeddings);
        Ok(Self { form, places, takes_tokens, filling: HashMap::new(), done: HashMap::new(), tokens: None })
    }

    /// The names and shapes of the weights it takes, of a model of `config`: what the model's
    /// parameters do not hold.
    pub fn shapes(&self, config: &BertConfig) -> Result<HashMap<String, Vec<usize>>> {
        let taken = |name: &str| (self.takes_tokens && name == TOKEN_TABLE) || self.places.contains_key(name);
        Ok(BertModel::param_shapes(config)?.into_iter().filter(|(name, _)| taken(name)).collect())
    }

    /// Takes `tensor`, parameter `name`'s, if it is one it holds (`None`), converting it a
    /// block of rows at a time as it is read; reads any other (`Some`).
    pub fn take(&mut self, name: &str, tensor: StoredTensor) -> Result<Option<Tensor>> {
        if self.takes_tokens && name == TOKEN_TABLE {
            let (rows, width) = (tensor.shape()[0], tensor.shape()[1]);
            let mut table = QuantizedTable::new(width, rows);
            tensor.read_rows(ROWS_A_READ, |block| {
                table.push(block);
                Ok(())
            })?;
            self.tokens = Some(table);
            return Ok(None);
        }
        let Some(&Place { product, first, size: (n_out, n_in), weights }) = self.places.get(name) else {
            return Ok(Some(tensor.read()?));
        };
        let form = self.form;
        let (matrix, left) =
            self.filling.entry(product).or_insert_with(|| (HeldMatrix::zeros(n_out, n_in, form), weights));
        let mut row = first;
        tensor.read_rows(ROWS_A_READ, |block| {
            matrix.set_rows(row, block);
            row += block.len() / n_in;
            Ok(())
        })?;
        *left -= 1;
        if *left == 0 {
            let (matrix, _) = self.filling.remove(&product).expect("filled above");
            self.done.insert(product, matrix);
        }
        Ok(None)
    }

    /// The [`PackedWeights`] of `model` (built with these weights held elsewhere): the held
    /// weights with the model's biases, its only copy of them.
    pub fn into_packed(mut self, model: &BertModel) -> Result<PackedWeights> {
        let missing = |what: String| crate::Error::Internal(format!("{NAME}: {what} not read"));
        if self.takes_tokens && self.tokens.is_none() {
            return Err(missing(TOKEN_TABLE.to_string()));
        }
        let mut take = |b: usize, p: usize| {
            self.done.remove(&(b, p)).ok_or_else(|| missing(format!("the weights of block {b}'s product {p}")))
        };
        let blocks = model
            .blocks
            .iter()
            .enumerate()
            .map(|(i, blk)| {
                let a = &blk.attention;
                Ok(PackedBlock {
                    queries_keys_values: Dense::held(&[&a.w_q, &a.w_k, &a.w_v], take(i, 0)?)?,
                    output: Dense::held(&[&a.w_o], take(i, 1)?)?,
                    dense1: Dense::held(&[&blk.dense1], take(i, 2)?)?,
                    dense2: Dense::held(&[&blk.dense2], take(i, 3)?)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(PackedWeights {
            blocks,
            tokens: self.tokens,
            precision: self.form.precision(),
            written: weights_written(),
            only_copy: true,
        })
    }
}

/// `x ← LayerNorm(x + residual)` row by row (`residual` absent: `LayerNorm(x)`).
fn add_and_norm(x: &mut [f32], residual: Option<&[f32]>, norm: &LayerNorm) -> Result<()> {
    let (w, b) = (TensorValues::of(norm.weight()), TensorValues::of(norm.bias()));
    let (w, b) = (w.slice::<f32>(NAME)?, b.slice::<f32>(NAME)?);
    let (h, eps) = (w.len(), norm.eps() as f32);
    x.par_chunks_mut(h).enumerate().with_min_len(MIN_ROWS_A_TASK).for_each_init(
        || vec![0f32; h],
        |t, (r, row)| add_and_norm_row(row, residual.map(|res| &res[r * h..(r + 1) * h]), (w, b, eps), t),
    );
    Ok(())
}

widest_vectors! {
    /// One row of [`add_and_norm`] (`t` scratch of its length), compiled for the widest vectors
    /// the CPU has (the same arithmetic, so the same bits, on every CPU).
    fn add_and_norm_row(row: &mut [f32], residual: Option<&[f32]>, (w, b, eps): (&[f32], &[f32], f32), t: &mut [f32]) {
        match residual {
            Some(res) => {
                for ((o, &a), &c) in t.iter_mut().zip(row.iter()).zip(res) {
                    *o = a + c;
                }
            }
            None => t.copy_from_slice(row),
        }
        normalize_row(t, row, eps);
        for ((o, &g), &s) in row.iter_mut().zip(w).zip(b) {
            *o = *o * g + s;
        }
    }
}

/// Scaled dot-product attention of every (sequence, head) over the sequence's valid keys:
/// `context` `[rows, H]` from `qkv` `[rows, 3H]` (each row's queries, keys and values side by
/// side), sequence `s`'s `layout.rows[s]` rows back to back, its first `layout.valid[s]` the
/// valid ones.
fn attend(context: &mut [f32], qkv: &[f32], h: usize, layout: &Layout, heads: usize) {
    let out = Shared(context.as_mut_ptr());
    let qkv = Shared(qkv.as_ptr() as *mut f32);
    (0..layout.valid.len() * heads).into_par_iter().for_each_init(
        || (Vec::new(), Vec::new()),
        |(weights, scratch), task| {
            let (sequence, head) = (task / heads, task % heads);
            let (first, rows, keys) = (layout.firsts[sequence], layout.rows[sequence], layout.valid[sequence]);
            weights.resize(rows * keys, 0.0);
            let at = first * 3 * h + head * (h / heads);
            // SAFETY: qkv holds the sequences' rows of 3h values and context as many rows of h;
            // each task writes only its own (sequence, head) block of `context`.
            unsafe {
                let q = qkv.get().add(at) as *const f32;
                forward_block(
                    &mut weights[..rows * keys],
                    out.get().add(first * h + head * (h / heads)),
                    (q, q.add(h), q.add(2 * h)),
                    3 * h,
                    keys,
                    attention::Dims { l: rows, h, heads },
                    None,
                    scratch,
                );
            }
        },
    );
}

/// The rows a pass computes, sequence by sequence.
struct Layout {
    /// Rows of each sequence (its valid ones first).
    rows: Vec<usize>,
    /// Valid rows (keys) of each sequence.
    valid: Vec<usize>,
    /// Each sequence's first row (the sums of `rows` before it, kept for the attention tasks).
    firsts: Vec<usize>,
}

impl Layout {
    /// The rows of sequences of `l` positions with `valid_lens` valid ones: all `l` of each, or
    /// the valid ones only, as `padding` says.
    fn new(valid_lens: &[usize], l: usize, padding: Padding) -> Self {
        let valid: Vec<usize> = valid_lens.iter().map(|&len| len.min(l)).collect();
        let rows = match padding {
            Padding::Computed => vec![l; valid.len()],
            Padding::Zeros => valid.clone(),
        };
        let firsts = rows
            .iter()
            .scan(0, |next, &r| {
                *next += r;
                Some(*next - r)
            })
            .collect();
        Self { rows, valid, firsts }
    }

    /// Consecutive sequences in groups of at most `max_rows` rows (a longer sequence alone):
    /// each group's rows and its layout.
    fn chunks(&self, max_rows: usize) -> Vec<(std::ops::Range<usize>, Layout)> {
        let mut chunks = Vec::new();
        let mut s = 0;
        while s < self.rows.len() {
            let (first, mut end, mut rows) = (self.firsts[s], s, 0);
            while end < self.rows.len() && (end == s || rows + self.rows[end] <= max_rows) {
                rows += self.rows[end];
                end += 1;
            }
            let layout = Layout {
                rows: self.rows[s..end].to_vec(),
                valid: self.valid[s..end].to_vec(),
                firsts: self.firsts[s..end].iter().map(|f| f - first).collect(),
            };
            chunks.push((first..first + rows, layout));
            s = end;
        }
        chunks
    }

    /// Each row computed, by its index in the padded batch of sequences of `l` positions.
    fn padded_indices(&self, l: usize) -> Vec<usize> {
        self.rows.iter().enumerate().flat_map(|(b, &r)| b * l..b * l + r).collect()
    }
}

/// One encoder block in place on `x` `[rows, H]`, the rows of `layout` (eval mode: no
/// dropout).
fn block(
    x: &mut [f32],
    (block, packed): (&EncoderBlock, &PackedBlock),
    h: usize,
    layout: &Layout,
    buffers: &mut Buffers,
) -> Result<()> {
    let n = x.len() / h;
    let (qkv, context) = buffers.shared.split_at_mut(n * 3 * h);
    packed.queries_keys_values.apply(qkv, x, n, None)?;
    attend(context, qkv, h, layout, block.attention.heads);
    // y = LayerNorm(context · W_oᵀ + b_o + x)
    let y = &mut buffers.y[..n * h];
    packed.output.apply(y, context, n, None)?;
    add_and_norm(y, Some(x), &block.norm1)?;
    // the queries, keys, values and context are spent: the feed-forward layer's values take
    // their place
    let inner = &mut buffers.shared[..];
    packed.dense1.apply(inner, y, n, Some(block.activation))?;
    // x = LayerNorm(inner · W2ᵀ + b2 + y)
    packed.dense2.apply(x, inner, n, None)?;
    add_and_norm(x, Some(y), &block.norm2)
}

/// Scratch buffers of one pass.
struct Buffers {
    /// A block's second residual input (the first norm's output).
    y: Vec<f32>,
    /// A block's queries, keys and values `[rows, 3H]` then its attention context `[rows, H]`,
    /// and, once those are spent, its feed-forward values `[rows, F]` in the same memory: the
    /// pass holds `max(4H, F)` values a row of them instead of `4H + F` (BERT-base at a batch of
    /// 32 × 128 tokens: 50 MB less).
    shared: Vec<f32>,
}

/// What the inference pass gives at the rows past a sequence's valid length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// What [`BertModel::encode`] gives there (each row's queries over the valid keys), as
    /// transformers does.
    Computed,
    /// Zeros, the rows skipped by every product: for callers that read valid rows only
    /// (pooling, masked positions, a sequence's `<cls>`). In a batch of sentences of different
    /// lengths the padding costs as much as real tokens.
    Zeros,
}

/// The contextual embedding of every token, `[B·L, H]` row-major, of `tokens` and
/// `segments` (`B·L` ids, already checked against the model's sizes) with `valid_lens` (B
/// values in `1..=L`): what [`BertModel::encode`] gives in eval mode, at the rows past each
/// valid length as `padding` says. `packed` is [`PackedWeights::of`] `model`, current.
pub fn encode(
    model: &BertModel,
    packed: &PackedWeights,
    (tokens, segments): (&[u32], &[u32]),
    valid_lens: &[usize],
    padding: Padding,
) -> Result<Vec<f32>> {
    let n = tokens.len();
    let l = n / valid_lens.len().max(1);
    let layout = Layout::new(valid_lens, l, padding);
    let at = layout.padded_indices(l);
    let emb = &model.embeddings;
    let (seg, pos) = (TensorValues::of(&emb.segment), TensorValues::of(&emb.position));
    let (seg, pos) = (seg.slice::<f32>(NAME)?, pos.slice::<f32>(NAME)?);
    let h = pos.len() / emb.position.dim(0)?;
    let mut x = vec![0f32; at.len() * h];
    match &packed.tokens {
        Some(table) => {
            if let Some(&id) = tokens.iter().find(|&&id| id as usize >= table.rows()) {
                return Err(crate::Error::Internal(format!("{NAME}: token {id} outside the table")));
            }
            x.par_chunks_mut(h).zip(&at).with_min_len(MIN_ROWS_A_TASK).for_each(|(row, &r)| {
                let ((t, scale), s, p) = (table.row(tokens[r] as usize), segments[r] as usize * h, (r % l) * h);
                for (j, o) in row.iter_mut().enumerate() {
                    *o = (f32::from(t[j]) * scale + seg[s + j]) + pos[p + j];
                }
            });
        }
        None => {
            let tok = TensorValues::of(&emb.token);
            let tok = tok.slice::<f32>(NAME)?;
            x.par_chunks_mut(h).zip(&at).with_min_len(MIN_ROWS_A_TASK).for_each(|(row, &r)| {
                let (t, s, p) = (tokens[r] as usize * h, segments[r] as usize * h, (r % l) * h);
                for (j, o) in row.iter_mut().enumerate() {
                    *o = (tok[t + j] + seg[s + j]) + pos[p + j];
                }
            });
        }
    }
    if let Some(norm) = &emb.norm {
        add_and_norm(&mut x, None, norm)?;
    }
    let ffn = packed.blocks.first().map_or(h, |blk| blk.dense1.bias.len());
    let m = at.len();
    let chunks = layout.chunks(ROWS_A_CHUNK);
    let most = chunks.iter().map(|(rows, _)| rows.len()).max().unwrap_or(0);
    let mut buffers = Buffers { y: vec![0f32; most * h], shared: vec![0f32; most * (4 * h).max(ffn)] };
    for (rows, chunk) in &chunks {
        let x = &mut x[rows.start * h..rows.end * h];
        for pair in model.blocks.iter().zip(&packed.blocks) {
            block(x, pair, h, chunk, &mut buffers)?;
        }
    }
    if m == n {
        return Ok(x);
    }
    drop(buffers);
    let mut states = vec![0f32; n * h];
    for (row, &r) in x.chunks_exact(h).zip(&at) {
        states[r * h..(r + 1) * h].copy_from_slice(row);
    }
    Ok(states)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_whole_consecutive_sequences_up_to_their_rows_and_a_longer_one_alone() {
        // rows of each sequence, the padding skipped: 3, 5, 2, 9, 1, 4
        let layout = Layout::new(&[3, 5, 2, 9, 1, 4], 9, Padding::Zeros);
        let chunks = layout.chunks(8);
        let got: Vec<_> = chunks.iter().map(|(rows, c)| (rows.clone(), c.rows.clone(), c.firsts.clone())).collect();
        assert_eq!(
            got,
            vec![
                (0..8, vec![3, 5], vec![0, 3]),
                (8..10, vec![2], vec![0]),
                (10..19, vec![9], vec![0]),
                (19..24, vec![1, 4], vec![0, 1])
            ]
        );
        // each chunk's keys are its sequences' own
        let valid: Vec<usize> = chunks.iter().flat_map(|(_, c)| c.valid.clone()).collect();
        assert_eq!(valid, layout.valid);
        // every position computed: 4 sequences of 9 rows, two a chunk of 20 rows
        let computed = Layout::new(&[3, 9, 1, 4], 9, Padding::Computed).chunks(20);
        assert_eq!(computed.iter().map(|(rows, _)| rows.clone()).collect::<Vec<_>>(), vec![0..18, 18..36]);
    }
}
