//! The JavaScript-facing objects and their conversion to core types. Batches, sequences and
//! configs are read field by field (their layout is declared once on each side: by the
//! TypeScript `Batch` and `BertConfig`, and by the core's types), so that each bad field gets
//! its own named `TypeError` / `RangeError`.

use std::ops::Deref;

use candle_core::Device;
use napi::bindgen_prelude::{Float32Array, FromNapiValue, Int32Array, Object, Unknown};
use napi::{JsValue, ValueType};
use napi_derive::napi;
use tsbert_core::adam::AdamConfig;
use tsbert_core::batch::Sequences;
use tsbert_core::device::cuda_device;
use tsbert_core::error::InputError;
use tsbert_core::task_loss::TaskLabels;
use tsbert_core::TaskPart;
use tsbert_core::{Batch, BertConfig, ModelOptions, TrainerOptions};

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
// Declares the TypeScript type only: [`read_options`] reads it.
#[allow(dead_code)]
#[napi(object, object_from_js = false, object_to_js = false)]
pub struct DeviceJs {
    /// The GPU's ordinal; absent for the CPU.
    pub cuda: Option<u32>,
}

/// How the model is initialised, where it runs and how it trains.
// Declares the TypeScript type only: [`read_options`] reads it field by field.
#[allow(dead_code)]
#[napi(object, object_from_js = false, object_to_js = false)]
pub struct TrainerOptionsJs {
    /// Seeds the initial weights and dropout: an integer in [0, 2^32).
    pub seed: u32,
    /// Adam's learning rate; default the core's.
    pub lr: Option<f64>,
    /// L2 weight decay added to gradients; default 0.
    pub weight_decay: Option<f64>,
    /// One replica a device, trained data-parallel.
    pub devices: Vec<DeviceJs>,
    /// Bytes of memory the model and a pass may take on the CPU; absent: no limit.
    pub memory_limit: Option<f64>,
    /// AdamW's decoupled weight decay (biases and layer norms spared) instead of L2.
    pub decoupled_weight_decay: Option<bool>,
    /// Clip each step's gradients to this global L2 norm.
    pub clip_norm: Option<f64>,
}

impl From<AdamConfig> for AdamConfigJs {
    fn from(c: AdamConfig) -> Self {
        Self { lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weight_decay: c.weight_decay }
    }
}

/// Largest integer a JavaScript number holds exactly.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

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

/// Reads a size: an integer in `[0, 2^32)`; other numbers are a `RangeError`, other values a
/// `TypeError`, naming `field`.
fn size(value: Option<Unknown>, field: &str) -> Result<usize, InputError> {
    Ok(integer(number(value, field)?, field, f64::from(u32::MAX))? as usize)
}

fn get<'env>(obj: &Object<'env>, field: &str) -> Result<Option<Unknown<'env>>, InputError> {
    obj.get::<Unknown>(field).map_err(|e| InputError::type_error(field, e.reason.clone()))
}

fn ints(obj: &Object, field: &str) -> Result<Vec<i32>, InputError> {
    typed_array::<Int32Array, _>(get(obj, field)?, field, "an Int32Array")
}

/// Reads a number (a `TypeError` naming `field` for anything else); `None` when absent.
fn optional_number(value: Option<Unknown>, field: &str) -> Result<Option<f64>, InputError> {
    let Some(value) = value else { return Ok(None) };
    match value.get_type().map_err(|e| InputError::type_error(field, e.reason.clone()))? {
        ValueType::Undefined | ValueType::Null => Ok(None),
        ValueType::Number => {
            // SAFETY: checked above to be a number.
            Ok(Some(unsafe { value.cast::<f64>() }.map_err(|e| InputError::type_error(field, e.reason.clone()))?))
        }
        _ => Err(InputError::type_error(field, "expected a number")),
    }
}

/// Reads a required number.
fn number(value: Option<Unknown>, field: &str) -> Result<f64, InputError> {
    optional_number(value, field)?.ok_or_else(|| InputError::type_error(field, "expected a number"))
}

/// A number that must be an integer in `[0, limit]`: a `RangeError` naming `field` otherwise.
pub fn integer(n: f64, field: &str, limit: f64) -> Result<u64, InputError> {
    if n.is_nan() || n.fract() != 0.0 || n < 0.0 {
        return Err(InputError::range(field, format!("{n} is not a non-negative integer")));
    }
    if n > limit {
        return Err(InputError::range(field, format!("{n} is over the limit of {limit}")));
    }
    Ok(n as u64)
}

/// The values of a JS config object as JSON: numbers (finite), booleans, strings and objects of
/// those (one level deep: a task head); absent, `undefined` and `null` fields are left out.
/// Anything else is a `TypeError` naming the field (`task.numLabels` inside an object).
fn config_json(obj: &Object, path: &str, nested: bool) -> Result<serde_json::Value, InputError> {
    let mut map = serde_json::Map::new();
    let keys = Object::keys(obj).map_err(|e| InputError::type_error("config", e.reason.clone()))?;
    for key in keys {
        let Some(value) = get(obj, &key)? else { continue };
        let field = format!("{path}{key}");
        let wrong = |what: &str| InputError::type_error(&field, format!("expected {what}"));
        // SAFETY (each cast): the value's type was checked just before.
        let json = match value.get_type().map_err(|e| InputError::type_error(&field, e.reason.clone()))? {
            ValueType::Undefined | ValueType::Null => continue,
            ValueType::Boolean => {
                serde_json::Value::Bool(unsafe { value.cast::<bool>() }.map_err(|_| wrong("a boolean"))?)
            }
            ValueType::String => {
                serde_json::Value::String(unsafe { value.cast::<String>() }.map_err(|_| wrong("a string"))?)
            }
            ValueType::Number => {
                let n = unsafe { value.cast::<f64>() }.map_err(|_| wrong("a number"))?;
                if !n.is_finite() {
                    return Err(InputError::range(&field, format!("{n} is not a finite number")));
                }
                if n.fract() == 0.0 && n.abs() < 9e15 {
                    serde_json::Value::from(n as i64)
                } else {
                    serde_json::Value::from(n)
                }
            }
            ValueType::Object if !nested && !value.is_array().unwrap_or(true) => {
                let inner = unsafe { value.cast::<Object>() }.map_err(|_| wrong("an object"))?;
                config_json(&inner, &format!("{field}."), true)?
            }
            _ => return Err(wrong("a number, a boolean or a string")),
        };
        map.insert(key, json);
    }
    Ok(serde_json::Value::Object(map))
}

/// A model's config from a JS object of the TypeScript `BertConfig`'s shape: every field read
/// into the core's `BertConfig` (an unknown field, a missing size, a fraction where an integer
/// belongs is a `RangeError` naming the field); ranges are the core's check.
pub fn read_config(obj: &Object) -> Result<BertConfig, InputError> {
    serde_path_to_error::deserialize(config_json(obj, "", false)?).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "config".to_string() } else { path };
        // serde's words for Rust types, in JavaScript's
        let message = e.into_inner().to_string().replace("usize", "a non-negative integer").replace("f64", "a number");
        if message.starts_with("invalid type") || message.starts_with("missing field") {
            InputError::type_error(field, message)
        } else {
            InputError::range(field, message)
        }
    })
}

/// A JS `TrainerOptionsJs` object: how the model is built and placed (its devices opened) and
/// how it trains (checked now, though the training state is made when it first trains).
pub fn read_options(obj: &Object) -> tsbert_core::Result<(ModelOptions, TrainerOptions)> {
    let defaults = AdamConfig::default();
    let decoupled = match get(obj, "decoupledWeightDecay")? {
        None => false,
        Some(v) => match v.get_type().map_err(|e| InputError::type_error("decoupledWeightDecay", e.reason.clone()))? {
            ValueType::Undefined | ValueType::Null => false,
            // SAFETY: checked to be a boolean.
            ValueType::Boolean => unsafe { v.cast::<bool>() }
                .map_err(|e| InputError::type_error("decoupledWeightDecay", e.reason.clone()))?,
            _ => return Err(InputError::type_error("decoupledWeightDecay", "expected a boolean").into()),
        },
    };
    let adam = AdamConfig {
        lr: optional_number(get(obj, "lr")?, "lr")?.unwrap_or(defaults.lr),
        weight_decay: optional_number(get(obj, "weightDecay")?, "weightDecay")?.unwrap_or(defaults.weight_decay),
        decoupled,
        ..defaults
    };
    let clip_norm = optional_number(get(obj, "clipNorm")?, "clipNorm")?;
    let seed = integer(number(get(obj, "seed")?, "seed")?, "seed", f64::from(u32::MAX))?;
    let memory_limit = optional_number(get(obj, "memoryLimit")?, "memoryLimit")?
        .map(|n| integer(n, "memoryLimit", MAX_SAFE_INTEGER))
        .transpose()?;
    let devices: Vec<Object> = match get(obj, "devices")? {
        // SAFETY: a live handle of this call; the cast checks that it is an array of objects.
        Some(value) => unsafe { value.cast() }.map_err(|_| InputError::type_error("devices", "expected an array"))?,
        None => return Err(InputError::type_error("devices", "expected an array").into()),
    };
    let ordinals = devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let field = format!("devices[{i}].cuda");
            optional_number(get(d, "cuda")?, &field)?
                .map(|n| integer(n, &field, 1024.0).map(|o| o as usize))
                .transpose()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let devices =
        ordinals.iter().map(|o| o.map_or(Ok(Device::Cpu), cuda_device)).collect::<tsbert_core::Result<_>>()?;
    let model = ModelOptions { seed, dtype: candle_core::DType::F32, devices, memory_limit };
    let training = TrainerOptions { seed, adam, clip_norm };
    training.validate()?;
    Ok((model, training))
}

/// A JS `TensorJs` object: its values and shape, the shape checked against the values.
pub fn read_tensor(obj: &Object, name: &str) -> Result<(Vec<f32>, Vec<usize>), InputError> {
    let data = typed_array::<Float32Array, _>(get(obj, "data")?, &format!("{name}.data"), "a Float32Array")?;
    let field = format!("{name}.shape");
    let dims: Vec<Unknown> = match get(obj, "shape")? {
        // SAFETY: a live handle of this call; the cast checks that it is an array.
        Some(value) => unsafe { value.cast() }.map_err(|_| InputError::type_error(&field, "expected an array"))?,
        None => return Err(InputError::type_error(&field, "expected an array")),
    };
    let shape = dims
        .into_iter()
        .enumerate()
        .map(|(i, d)| size(Some(d), &format!("{field}[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if count != Some(data.len()) {
        return Err(InputError::range(&field, format!("{shape:?} does not hold the {} values given", data.len())));
    }
    Ok((data, shape))
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

/// A `Batch` object or an array of them (a step's batches, their gradients accumulated).
pub fn read_batches(value: Unknown) -> Result<Vec<Batch>, InputError> {
    if value.is_array().map_err(|e| InputError::type_error("batch", e.reason.clone()))? {
        // SAFETY: checked to be an array; each element is read as an object below.
        let items: Vec<Object> =
            unsafe { value.cast() }.map_err(|_| InputError::type_error("batch", "expected an array of batches"))?;
        if items.is_empty() {
            return Err(InputError::range("batch", "no batch given"));
        }
        return items.iter().map(read_batch).collect();
    }
    // SAFETY: a live handle of this call; the cast checks that it is an object.
    let obj: Object =
        unsafe { value.cast() }.map_err(|_| InputError::type_error("batch", "expected a batch object"))?;
    Ok(vec![read_batch(&obj)?])
}

/// A task step's batches: a `Sequences` object and its labels (see [`read_task_labels`]), or
/// arrays of each, of one length (their gradients accumulated).
pub fn read_task_parts(sequences: Unknown, kind: &str, labels: Unknown) -> Result<Vec<TaskPart>, InputError> {
    let many = |v: &Unknown, field: &str| v.is_array().map_err(|e| InputError::type_error(field, e.reason.clone()));
    if !many(&sequences, "sequences")? {
        // SAFETY: a live handle of this call; the cast checks that it is an object.
        let obj: Object = unsafe { sequences.cast() }
            .map_err(|_| InputError::type_error("sequences", "expected a Sequences object"))?;
        return Ok(vec![(read_sequences(&obj)?, read_task_labels(kind, &labels)?)]);
    }
    // SAFETY (both casts): checked to be arrays; each element is read and checked below.
    let items: Vec<Object> = unsafe { sequences.cast() }
        .map_err(|_| InputError::type_error("sequences", "expected an array of Sequences objects"))?;
    if !many(&labels, "labels")? {
        return Err(InputError::type_error("labels", "expected an array of labels, one a batch"));
    }
    let all: Vec<Unknown> =
        unsafe { labels.cast() }.map_err(|_| InputError::type_error("labels", "expected an array of labels"))?;
    if items.is_empty() || items.len() != all.len() {
        return Err(InputError::range(
            "labels",
            format!("{} batches and {} label arrays: one of each a batch, at least one", items.len(), all.len()),
        ));
    }
    items.iter().zip(&all).map(|(s, l)| Ok((read_sequences(s)?, read_task_labels(kind, l)?))).collect()
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

/// A task head's labels from their `kind` and a typed array (see `NativeBert.trainTaskStep`):
/// classes as an `Int32Array` of non-negative ids, token classes as one with -100 where
/// unscored, multi-labels and values as a `Float32Array`. A wrong kind or array is a
/// `TypeError` naming `labels`; whether they fit the head is the core's check.
pub fn read_task_labels(kind: &str, labels: &Unknown) -> Result<TaskLabels, InputError> {
    let ints = || typed_array::<Int32Array, _>(Some(*labels), "labels", "an Int32Array");
    let floats = || typed_array::<Float32Array, _>(Some(*labels), "labels", "a Float32Array");
    Ok(match kind {
        "classes" => {
            let ids = ints()?;
            match ids.iter().position(|&x| x < 0) {
                Some(i) => return Err(InputError::range(format!("labels[{i}]"), format!("{} is not a class", ids[i]))),
                None => TaskLabels::Classes(ids.into_iter().map(|x| x as u32).collect()),
            }
        }
        "tokens" => TaskLabels::Tokens(ints()?),
        "multi" => TaskLabels::Multi(floats()?),
        "values" => TaskLabels::Values(floats()?),
        other => {
            return Err(InputError::range("kind", format!("'{other}' is not 'classes', 'multi', 'values' or 'tokens'")))
        }
    })
}
