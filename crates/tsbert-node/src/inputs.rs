//! The JavaScript-facing input and output objects, and their conversion to core types.

use std::ops::Deref;

use napi::bindgen_prelude::{Float32Array, FromNapiValue, Int32Array, Object, Unknown};
use napi::{Either, ValueType};
use napi_derive::napi;
use tsbert_core::batch::Sequences;
use tsbert_core::error::InputError;
use tsbert_core::{Batch, BertConfig};

/// Model sizes. Only `vocabSize` is required; the rest default to the textbook
/// configuration (hidden 128, ffnHidden 256, heads 2, layers 2, dropout 0.2,
/// maxPositions 1000).
#[napi(object)]
pub struct BertConfigInput {
    /// Number of token ids, reserved tokens included.
    pub vocab_size: u32,
    /// Hidden width.
    pub hidden: Option<u32>,
    /// Inner width of the feed-forward network.
    pub ffn_hidden: Option<u32>,
    /// Attention heads (must divide `hidden`).
    pub heads: Option<u32>,
    /// Encoder blocks.
    pub layers: Option<u32>,
    /// Dropout probability in training steps.
    pub dropout: Option<f64>,
    /// Length of the learned position table.
    pub max_positions: Option<u32>,
}

/// A model's full configuration, as reported back.
#[napi(object)]
pub struct BertConfigOutput {
    /// Number of token ids.
    pub vocab_size: u32,
    /// Hidden width.
    pub hidden: u32,
    /// Inner width of the feed-forward network.
    pub ffn_hidden: u32,
    /// Attention heads.
    pub heads: u32,
    /// Encoder blocks.
    pub layers: u32,
    /// Dropout probability in training steps.
    pub dropout: f64,
    /// Length of the learned position table.
    pub max_positions: u32,
}

/// How the model is initialised and trained.
#[napi(object)]
pub struct TrainerOptionsInput {
    /// Seeds the initial weights and dropout (an integer in [0, 2^53)); default 0.
    pub seed: Option<f64>,
    /// Adam's learning rate; default 0.01.
    pub lr: Option<f64>,
    /// L2 weight decay added to gradients; default 0.
    pub weight_decay: Option<f64>,
    /// `'cpu'` (default), `'cuda'`, `'cuda:N'`, or a list of them: one replica each,
    /// trained data-parallel.
    pub device: Option<Either<String, Vec<String>>>,
}

/// One pretraining batch: row-major typed arrays and their sizes B, L, P.
// Declares the TypeScript type only: values are read field by field by [`read_batch`], so
// that each bad field gets its own named `TypeError` / `RangeError`.
#[allow(dead_code)]
#[napi(object, object_from_js = false, object_to_js = false)]
pub struct BatchInput {
    /// B.
    pub batch_size: u32,
    /// L.
    pub seq_len: u32,
    /// P.
    pub num_preds: u32,
    /// `[B·L]` token ids.
    pub tokens: Int32Array,
    /// `[B·L]` segment ids (0 or 1).
    pub segments: Int32Array,
    /// `[B]` valid lengths, in `1..=L`.
    pub valid_lens: Int32Array,
    /// `[B·P]` positions to predict.
    pub pred_positions: Int32Array,
    /// `[B·P]` prediction weights (0 marks padding).
    pub mlm_weights: Float32Array,
    /// `[B·P]` original token ids at the predicted positions.
    pub mlm_labels: Int32Array,
    /// `[B]` 1 = isNext, 0 = notNext.
    pub nsp_labels: Int32Array,
}

/// The losses of one training step, computed before its update.
#[napi(object)]
pub struct StepLossesOutput {
    /// Weighted masked-language-model cross-entropy.
    pub mlm_loss: f64,
    /// Mean next-sentence-prediction cross-entropy.
    pub nsp_loss: f64,
}

/// Everything an evaluation (dropout off) computes for a batch.
#[napi(object)]
pub struct EvaluationOutput {
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

impl BertConfigInput {
    /// The full config: given fields over the textbook defaults.
    pub fn resolve(&self) -> BertConfig {
        let d = BertConfig::textbook(self.vocab_size as usize);
        let size = |v: Option<u32>, default: usize| v.map_or(default, |v| v as usize);
        BertConfig {
            vocab_size: self.vocab_size as usize,
            hidden: size(self.hidden, d.hidden),
            ffn_hidden: size(self.ffn_hidden, d.ffn_hidden),
            heads: size(self.heads, d.heads),
            layers: size(self.layers, d.layers),
            dropout: self.dropout.unwrap_or(d.dropout),
            max_positions: size(self.max_positions, d.max_positions),
        }
    }
}

impl From<&BertConfig> for BertConfigOutput {
    fn from(c: &BertConfig) -> Self {
        Self {
            vocab_size: c.vocab_size as u32,
            hidden: c.hidden as u32,
            ffn_hidden: c.ffn_hidden as u32,
            heads: c.heads as u32,
            layers: c.layers as u32,
            dropout: c.dropout,
            max_positions: c.max_positions as u32,
        }
    }
}

/// Largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// The seed as an integer; fractional, negative or unsafe numbers are a `RangeError`.
pub fn seed_of(seed: Option<f64>) -> Result<u64, InputError> {
    match seed {
        None => Ok(0),
        Some(s) if s.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER).contains(&s) => Ok(s as u64),
        Some(s) => Err(InputError::range("seed", format!("{s} is not an integer in [0, 2^53)"))),
    }
}

/// Reads a typed array of kind `T` (named `kind`, with its article, in messages); anything else, or nothing, is
/// a `TypeError` naming `field`.
pub fn typed_array<T: FromNapiValue + Deref<Target = [E]>, E: Copy>(
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
pub fn size(value: Option<Unknown>, field: &str) -> Result<usize, InputError> {
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

/// The sequences of an encode call, from its positional arguments.
pub fn read_sequences(
    tokens: Unknown,
    segments: Unknown,
    valid_lens: Unknown,
    batch_size: Unknown,
    seq_len: Unknown,
) -> Result<Sequences, InputError> {
    Ok(Sequences {
        batch_size: size(Some(batch_size), "batchSize")?,
        seq_len: size(Some(seq_len), "seqLen")?,
        tokens: typed_array::<Int32Array, _>(Some(tokens), "tokens", "an Int32Array")?,
        segments: typed_array::<Int32Array, _>(Some(segments), "segments", "an Int32Array")?,
        valid_lens: typed_array::<Int32Array, _>(Some(valid_lens), "validLens", "an Int32Array")?,
    })
}

/// An owned copy of a JS batch object, safe to move to a worker thread (its values are
/// validated there by the core).
pub fn read_batch(obj: &Object) -> Result<Batch, InputError> {
    let ints = |field: &str| typed_array::<Int32Array, _>(get(obj, field)?, field, "an Int32Array");
    Ok(Batch {
        sequences: Sequences {
            batch_size: size(get(obj, "batchSize")?, "batchSize")?,
            seq_len: size(get(obj, "seqLen")?, "seqLen")?,
            tokens: ints("tokens")?,
            segments: ints("segments")?,
            valid_lens: ints("validLens")?,
        },
        num_preds: size(get(obj, "numPreds")?, "numPreds")?,
        pred_positions: ints("predPositions")?,
        mlm_weights: typed_array::<Float32Array, _>(get(obj, "mlmWeights")?, "mlmWeights", "a Float32Array")?,
        mlm_labels: ints("mlmLabels")?,
        nsp_labels: ints("nspLabels")?,
    })
}
