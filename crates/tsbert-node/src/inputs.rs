//! The JavaScript-facing objects and their conversion to core types. Batches and sequences
//! are read field by field (their layout is declared once, by the TypeScript `Batch`), so
//! that each bad field gets its own named `TypeError` / `RangeError`.

use std::ops::Deref;

use napi::bindgen_prelude::{Float32Array, FromNapiValue, Int32Array, Object, Unknown};
use napi::ValueType;
use napi_derive::napi;
use tsbert_core::adam::AdamConfig;
use tsbert_core::batch::Sequences;
use tsbert_core::error::InputError;
use tsbert_core::{Batch, BertConfig};

/// A model's sizes, every field given (the TypeScript layer fills in the defaults).
#[napi(object)]
pub struct BertConfigJs {
    /// Number of token ids, reserved tokens included.
    pub vocab_size: u32,
    /// Hidden width.
    pub hidden: u32,
    /// Inner width of the feed-forward network.
    pub ffn_hidden: u32,
    /// Attention heads (must divide `hidden`).
    pub heads: u32,
    /// Encoder blocks.
    pub layers: u32,
    /// Dropout probability in training steps.
    pub dropout: f64,
    /// Length of the learned position table.
    pub max_positions: u32,
}

/// Adam's hyper-parameters.
#[napi(object)]
pub struct AdamConfigJs {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first-moment estimate.
    pub beta1: f64,
    /// Decay of the second-moment estimate.
    pub beta2: f64,
    /// Added to the denominator's square root.
    pub eps: f64,
    /// L2 weight decay added to gradients.
    pub weight_decay: f64,
}

/// One device: the CPU (`{}`) or a CUDA GPU (`{ cuda: ordinal }`).
#[napi(object)]
pub struct DeviceJs {
    /// The GPU's ordinal; absent for the CPU.
    pub cuda: Option<u32>,
}

/// How the model is initialised and trained.
#[napi(object)]
pub struct TrainerOptionsJs {
    /// Seeds the initial weights and dropout.
    pub seed: u32,
    /// Adam's learning rate; default 0.01.
    pub lr: Option<f64>,
    /// L2 weight decay added to gradients; default 0.
    pub weight_decay: Option<f64>,
    /// One replica a device, trained data-parallel.
    pub devices: Vec<DeviceJs>,
}

/// The losses of one training step, computed before its update.
#[napi(object)]
pub struct StepLossesJs {
    /// Weighted masked-language-model cross-entropy.
    pub mlm_loss: f64,
    /// Mean next-sentence-prediction cross-entropy.
    pub nsp_loss: f64,
}

/// Everything an evaluation (dropout off) computes for a batch.
#[napi(object)]
pub struct EvaluationJs {
    /// `[B·L·hidden]` encoder output.
    pub encoded: Float32Array,
    /// `[B·P·vocab]` MLM logits, padded predictions included.
    pub mlm_logits: Float32Array,
    /// `[B·2]` NSP logits.
    pub nsp_logits: Float32Array,
    /// Weighted MLM cross-entropy.
    pub mlm_loss: f64,
    /// Mean NSP cross-entropy.
    pub nsp_loss: f64,
}

impl From<&BertConfigJs> for BertConfig {
    fn from(c: &BertConfigJs) -> Self {
        Self {
            vocab_size: c.vocab_size as usize,
            hidden: c.hidden as usize,
            ffn_hidden: c.ffn_hidden as usize,
            heads: c.heads as usize,
            layers: c.layers as usize,
            dropout: c.dropout,
            max_positions: c.max_positions as usize,
        }
    }
}

/// Clamps a size to what a JS `u32` field carries.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl From<&BertConfig> for BertConfigJs {
    fn from(c: &BertConfig) -> Self {
        Self {
            vocab_size: to_u32(c.vocab_size),
            hidden: to_u32(c.hidden),
            ffn_hidden: to_u32(c.ffn_hidden),
            heads: to_u32(c.heads),
            layers: to_u32(c.layers),
            dropout: c.dropout,
            max_positions: to_u32(c.max_positions),
        }
    }
}

impl From<AdamConfig> for AdamConfigJs {
    fn from(c: AdamConfig) -> Self {
        Self { lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weight_decay: c.weight_decay }
    }
}

/// Reads a typed array of kind `T` (named `kind`, with its article, in messages); anything
/// else, or nothing, is a `TypeError` naming `field`.
fn typed_array<T: FromNapiValue + Deref<Target = [E]>, E: Copy>(
    value: Option<Unknown>,
    field: &str,
    kind: &str,
) -> Result<Vec<E>, InputError> {
    let wrong = || InputError::type_error(field, format!("expected {kind}"));
    let value = value.ok_or_else(wrong)?;
    // SAFETY: `value` is a live handle of the current call; `from_napi_value` checks the
    // value's type itself and fails on anything but a typed array of kind `T`.
    let array: T = unsafe { value.cast() }.map_err(|_| wrong())?;
    Ok(array.to_vec())
}

/// Reads a size: a non-negative integer number; other numbers are a `RangeError`, other
/// values a `TypeError`, naming `field`.
fn size(value: Option<Unknown>, field: &str) -> Result<usize, InputError> {
    let wrong = || InputError::type_error(field, "expected a number");
    let value = value.ok_or_else(wrong)?;
    if value.get_type().map_err(|_| wrong())? != ValueType::Number {
        return Err(wrong());
    }
    // SAFETY: checked above to be a number.
    let n: f64 = unsafe { value.cast() }.map_err(|_| wrong())?;
    if n.fract() != 0.0 || !(0.0..=f64::from(u32::MAX)).contains(&n) {
        return Err(InputError::range(field, format!("{n} is not a non-negative integer")));
    }
    Ok(n as usize)
}

fn get<'env>(obj: &Object<'env>, field: &str) -> Result<Option<Unknown<'env>>, InputError> {
    obj.get::<Unknown>(field).map_err(|e| InputError::type_error(field, e.reason.clone()))
}

fn ints(obj: &Object, field: &str) -> Result<Vec<i32>, InputError> {
    typed_array::<Int32Array, _>(get(obj, field)?, field, "an Int32Array")
}

/// An owned copy of a JS `Sequences` object (`batchSize`, `seqLen`, `tokens`, `segments`,
/// `validLens`), safe to move to a worker thread (its values are validated there by the core).
pub fn read_sequences(obj: &Object) -> Result<Sequences, InputError> {
    Ok(Sequences {
        batch_size: size(get(obj, "batchSize")?, "batchSize")?,
        seq_len: size(get(obj, "seqLen")?, "seqLen")?,
        tokens: ints(obj, "tokens")?,
        segments: ints(obj, "segments")?,
        valid_lens: ints(obj, "validLens")?,
    })
}

/// An owned copy of a JS `Batch` object: its sequences plus `numPreds`, `predPositions`,
/// `mlmWeights`, `mlmLabels` and `nspLabels`.
pub fn read_batch(obj: &Object) -> Result<Batch, InputError> {
    Ok(Batch {
        sequences: read_sequences(obj)?,
        num_preds: size(get(obj, "numPreds")?, "numPreds")?,
        pred_positions: ints(obj, "predPositions")?,
        mlm_weights: typed_array::<Float32Array, _>(get(obj, "mlmWeights")?, "mlmWeights", "a Float32Array")?,
        mlm_labels: ints(obj, "mlmLabels")?,
        nsp_labels: ints(obj, "nspLabels")?,
    })
}
