//! Model weights as safetensors bytes, f32, named as tsbert names its parameters or as Hugging
//! Face does. Files, checksums and atomic writes are the caller's (the TypeScript layer owns
//! the model folder).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use safetensors::Dtype;

use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::hf::HfNames;
use crate::model::BertModel;
use crate::ops::rows::TensorValues;
use crate::params::ParamStore;

/// How the tensors of a weights file are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Naming {
    /// tsbert's own names (`encoder.blks.0.attention.W_q.weight`, …).
    Tsbert,
    /// Hugging Face's (`bert.encoder.layer.0.attention.self.query.weight`, …).
    HuggingFace(HfNames),
}

impl Naming {
    /// The names a file may give parameter `ours`, the one written first.
    fn stored_names(&self, ours: &str) -> Vec<String> {
        match self {
            Naming::Tsbert => vec![ours.to_string()],
            Naming::HuggingFace(names) => names.stored_names(ours),
        }
    }

    /// The names a saved file holds parameter `ours` under (see [`HfNames::written_names`]).
    fn written_names(&self, ours: &str) -> Vec<String> {
        match self {
            Naming::Tsbert => vec![ours.to_string()],
            Naming::HuggingFace(names) => names.written_names(ours),
        }
    }

    /// Whether a stored tensor that is no parameter may be left unread.
    fn ignorable(&self, stored: &str, config: &BertConfig) -> bool {
        match self {
            Naming::Tsbert => false,
            Naming::HuggingFace(names) => names.ignorable(stored, config),
        }
    }
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Checkpoint(what.to_string())
}

/// Whether every value of `t` is finite.
fn all_finite(t: &Tensor) -> Result<bool> {
    let t = t.contiguous()?;
    let values = TensorValues::of(&t);
    // read in place (a copy in f64 of the largest embedding table took twice its size again)
    Ok(match t.dtype() {
        DType::F32 => values.slice::<f32>("weights")?.iter().all(|v| v.is_finite()),
        DType::F64 => values.slice::<f64>("weights")?.iter().all(|v| v.is_finite()),
        _ => t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?.iter().all(|v| v.is_finite()),
    })
}

/// Every parameter of `params` as the bytes of a safetensors file (f32, named by `naming`,
/// under each name the naming writes). Non-finite weights are never saved: they are an error
/// naming the parameter.
pub fn save_weights(params: &ParamStore, naming: &Naming) -> Result<Vec<u8>> {
    let mut tensors = HashMap::new();
    for (name, var) in params.iter() {
        let t = var.as_tensor().to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
        if !all_finite(&t)? {
            return Err(corrupt(format!("'{name}' holds NaN or infinite values; not saved")));
        }
        for stored in naming.written_names(name) {
            tensors.insert(stored, t.clone());
        }
    }
    safetensors::serialize(&tensors, None).map_err(|e| corrupt(format!("cannot serialise: {e}")))
}

/// The names of the tensors a safetensors file's `bytes` holds, from its header.
pub fn stored_names(bytes: &[u8]) -> Result<Vec<String>> {
    let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| corrupt(format!("not a readable safetensors file ({e})")))?;
    Ok(metadata.tensors().into_keys().collect())
}

/// For each parameter of a model of `config`, the stored name it has in `stored` (by
/// `naming`), and the stored tensors no parameter takes that may not be ignored.
fn match_names<'a>(
    config: &BertConfig,
    shapes: &'a [(String, Vec<usize>)],
    stored: &[String],
    naming: &Naming,
) -> Result<Vec<(&'a str, &'a [usize], String)>> {
    let mut left: Vec<&String> = stored.iter().collect();
    let mut matched = Vec::new();
    for (name, shape) in shapes {
        let candidates = naming.stored_names(name);
        let found = candidates
            .iter()
            .find(|c| left.iter().any(|s| s == c))
            .ok_or_else(|| corrupt(format!("parameter '{}' is missing", candidates[0])))?;
        left.retain(|s| *s != found);
        matched.push((name.as_str(), shape.as_slice(), found.clone()));
    }
    if let Some(extra) = left.iter().find(|s| !naming.ignorable(s, config)) {
        return Err(corrupt(format!("unexpected tensor '{extra}' (not a parameter of this model)")));
    }
    Ok(matched)
}

/// Checks a safetensors file's header against the parameters a model of `config` has (names by
/// `naming`, shapes, float dtypes), reading no tensor data and allocating nothing of the model's
/// size: a weights file that cannot fit the config is refused before the model is built.
pub fn check_header(config: &BertConfig, bytes: &[u8], naming: &Naming) -> Result<()> {
    config.validate()?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| corrupt(format!("not a readable safetensors file ({e})")))?;
    let stored: Vec<String> = metadata.tensors().into_keys().collect();
    let shapes = BertModel::param_shapes(config)?;
    for (_, shape, found) in match_names(config, &shapes, &stored, naming)? {
        let info = metadata.info(&found).expect("matched from the header");
        if info.shape != shape {
            return Err(corrupt(format!("'{found}' has shape {:?}, the config says {shape:?}", info.shape)));
        }
        if !matches!(info.dtype, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64) {
            return Err(corrupt(format!("'{found}' holds {:?}, not floats", info.dtype)));
        }
    }
    Ok(())
}

/// The tensors of a safetensors file's `bytes` by parameter name, for the parameters of a
/// model of `config` the file has. The file is checked to hold exactly the parameters of a
/// model of `stored` (the config it was written with; stored names by `naming`) with their
/// shapes, as finite floats; those the model lacks (the heads a model under a new head drops)
/// are not read. Converted to `dtype`, on the CPU. Nothing is changed: the caller sets them
/// once every one has passed.
pub fn read_weights(
    (config, dtype): (&BertConfig, DType),
    stored: &BertConfig,
    bytes: &[u8],
    naming: &Naming,
) -> Result<HashMap<String, Tensor>> {
    let model: HashMap<String, Vec<usize>> = BertModel::param_shapes(config)?.into_iter().collect();
    let mut tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
        .map_err(|e| corrupt(format!("not a readable safetensors file ({e})")))?;
    let shapes = BertModel::param_shapes(stored)?;
    let names: Vec<String> = tensors.keys().cloned().collect();
    let mut checked = HashMap::new();
    for (name, shape, found) in match_names(stored, &shapes, &names, naming)? {
        let t = tensors.remove(&found).expect("matched from the file");
        if t.dims() != shape {
            return Err(corrupt(format!("'{found}' has shape {:?}, the model expects {shape:?}", t.dims())));
        }
        if !t.dtype().is_float() {
            return Err(corrupt(format!("'{found}' holds {:?}, not floats", t.dtype())));
        }
        let Some(dims) = model.get(name) else { continue };
        if *dims != shape {
            return Err(corrupt(format!("'{found}' has shape {shape:?}, the model's '{name}' is {dims:?}")));
        }
        let t = t.to_dtype(dtype)?;
        if !all_finite(&t)? {
            return Err(corrupt(format!("'{found}' holds NaN or infinite values")));
        }
        checked.insert(name.to_string(), t);
    }
    Ok(checked)
}
