//! Model weights as safetensors bytes: every parameter by name, f32. Files, checksums and
//! atomic writes are the caller's (the TypeScript layer owns the model folder).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::params::ParamStore;

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Checkpoint(what.to_string())
}

/// Every parameter of `params` as the bytes of a safetensors file (f32, names as in
/// [`ParamStore`]).
pub fn save_weights(params: &ParamStore) -> Result<Vec<u8>> {
    let tensors = params
        .iter()
        .map(|(name, var)| Ok((name.to_string(), var.as_tensor().to_dtype(DType::F32)?.to_device(&Device::Cpu)?)))
        .collect::<Result<HashMap<String, Tensor>>>()?;
    safetensors::serialize(&tensors, None).map_err(|e| corrupt(format!("cannot serialise: {e}")))
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
        let finite = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?.iter().all(|v| v.is_finite());
        if !finite {
            return Err(corrupt(format!("'{name}' holds NaN or infinite values")));
        }
        checked.insert(name.to_string(), t);
    }
    if let Some(extra) = tensors.keys().next() {
        return Err(corrupt(format!("unexpected tensor '{extra}' (not a parameter of this model)")));
    }
    Ok(checked)
}
