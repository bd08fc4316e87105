//! Model weights as safetensors: every parameter by name, f32.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::params::ParamStore;

fn corrupt(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Checkpoint(format!("weights file '{}': {what}", path.display()))
}

/// Writes every parameter of `params` to `path` (safetensors, f32, names as in
/// [`ParamStore`]). The caller makes the write atomic (temp file + rename).
pub fn save_weights(params: &ParamStore, path: &Path) -> Result<()> {
    let tensors = params
        .iter()
        .map(|(name, var)| Ok((name.to_string(), var.as_tensor().to_dtype(DType::F32)?.to_device(&Device::Cpu)?)))
        .collect::<Result<HashMap<String, Tensor>>>()?;
    candle_core::safetensors::save(&tensors, path).map_err(|e| corrupt(path, format!("cannot write: {e}")))
}

/// Replaces every parameter of `params` with the tensors of the safetensors file at `path`.
/// The file must hold exactly the model's parameters, with their shapes, as finite floats;
/// everything is checked before anything is replaced, so a bad file leaves the model as it
/// was.
pub fn load_weights(params: &ParamStore, path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| corrupt(path, e))?;
    let mut tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| corrupt(path, format!("not a readable safetensors file ({e})")))?;
    let mut checked = Vec::new();
    for (name, var) in params.iter() {
        let t = tensors.remove(name).ok_or_else(|| corrupt(path, format!("parameter '{name}' is missing")))?;
        if t.dims() != var.dims() {
            return Err(corrupt(
                path,
                format!("'{name}' has shape {:?}, the model expects {:?}", t.dims(), var.dims()),
            ));
        }
        if !t.dtype().is_float() {
            return Err(corrupt(path, format!("'{name}' holds {:?}, not floats", t.dtype())));
        }
        let t = t.to_dtype(params.dtype())?;
        let finite = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?.iter().all(|v| v.is_finite());
        if !finite {
            return Err(corrupt(path, format!("'{name}' holds NaN or infinite values")));
        }
        checked.push((var, t.to_device(params.device())?));
    }
    if let Some(extra) = tensors.keys().next() {
        return Err(corrupt(path, format!("unexpected tensor '{extra}' (not a parameter of this model)")));
    }
    for (var, t) in checked {
        var.set(&t)?;
    }
    Ok(())
}
