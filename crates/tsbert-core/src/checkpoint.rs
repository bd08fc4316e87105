//! Model weights as safetensors bytes: every parameter by name, f32. Files, checksums and
//! atomic writes are the caller's (the TypeScript layer owns the model folder).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::model::BertModel;
use crate::params::ParamStore;
use safetensors::Dtype;

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Checkpoint(what.to_string())
}

/// Whether every value of `t` is finite.
fn all_finite(t: &Tensor) -> Result<bool> {
    Ok(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?.iter().all(|v| v.is_finite()))
}

/// Every parameter of `params` as the bytes of a safetensors file (f32, names as in
/// [`ParamStore`]). Non-finite weights are never saved: they are an error naming the
/// parameter.
pub fn save_weights(params: &ParamStore) -> Result<Vec<u8>> {
    let tensors = params
        .iter()
        .map(|(name, var)| {
            let t = var.as_tensor().to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
            if !all_finite(&t)? {
                return Err(corrupt(format!("'{name}' holds NaN or infinite values; not saved")));
            }
            Ok((name.to_string(), t))
        })
        .collect::<Result<HashMap<String, Tensor>>>()?;
    safetensors::serialize(&tensors, None).map_err(|e| corrupt(format!("cannot serialise: {e}")))
}

/// Checks a safetensors file's header against the parameters a model of `config` has (names,
/// shapes, float dtypes), reading no tensor data and allocating nothing of the model's size:
/// a weights file that cannot fit the config is refused before the model is built.
pub fn check_header(config: &BertConfig, bytes: &[u8]) -> Result<()> {
    config.validate()?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| corrupt(format!("not a readable safetensors file ({e})")))?;
    let mut stored = metadata.tensors();
    for (name, shape) in BertModel::param_shapes(config)? {
        let info = stored.remove(&name).ok_or_else(|| corrupt(format!("parameter '{name}' is missing")))?;
        if info.shape != shape {
            return Err(corrupt(format!("'{name}' has shape {:?}, the config says {shape:?}", info.shape)));
        }
        if !matches!(info.dtype, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64) {
            return Err(corrupt(format!("'{name}' holds {:?}, not floats", info.dtype)));
        }
    }
    if let Some(extra) = stored.keys().next() {
        return Err(corrupt(format!("unexpected tensor '{extra}' (not a parameter of this model)")));
    }
    Ok(())
}

/// The tensors of a safetensors file's `bytes`, checked to be exactly the parameters of
/// `params` with their shapes, as finite floats; converted to the parameters' dtype, on the
/// CPU. Nothing is changed: the caller sets them once every one has passed.
pub fn read_weights(params: &ParamStore, bytes: &[u8]) -> Result<HashMap<String, Tensor>> {
    let mut tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
        .map_err(|e| corrupt(format!("not a readable safetensors file ({e})")))?;
    let mut checked = HashMap::new();
    for (name, var) in params.iter() {
        let t = tensors.remove(name).ok_or_else(|| corrupt(format!("parameter '{name}' is missing")))?;
        if t.dims() != var.dims() {
            return Err(corrupt(format!("'{name}' has shape {:?}, the model expects {:?}", t.dims(), var.dims())));
        }
        if !t.dtype().is_float() {
            return Err(corrupt(format!("'{name}' holds {:?}, not floats", t.dtype())));
        }
        let t = t.to_dtype(params.dtype())?;
        if !all_finite(&t)? {
            return Err(corrupt(format!("'{name}' holds NaN or infinite values")));
        }
        checked.insert(name.to_string(), t);
    }
    if let Some(extra) = tensors.keys().next() {
        return Err(corrupt(format!("unexpected tensor '{extra}' (not a parameter of this model)")));
    }
    Ok(checked)
}
