//! What the tests, the parity benchmarks and the GPU check read and set inside a model — its
//! parameters by name and the gradients of its last training step — kept off `NativeBert`,
//! whose methods are what the TypeScript API runs.

use napi::bindgen_prelude::Float32Array;
use napi::Env;
use napi_derive::napi;

use crate::errors::OrThrow;
use crate::native_bert::{to_f32, NativeBert};
use crate::outputs::F32Values;

/// Parameter names of `model` in creation order (`encoder.token_embedding.weight`, ...).
#[napi(namespace = "diagnostics")]
pub fn param_names(env: Env, model: &NativeBert) -> napi::Result<Vec<String>> {
    model.with(|m, _| Ok(m.params().iter().map(|(n, _)| n.to_string()).collect())).or_throw(&env)
}

/// The shape of parameter `name` of `model`.
#[napi(namespace = "diagnostics")]
pub fn param_shape(env: Env, model: &NativeBert, name: String) -> napi::Result<Vec<u32>> {
    model.with(|m, _| Ok(m.params().get(&name)?.dims().iter().map(|&d| d as u32).collect())).or_throw(&env)
}

/// The current values of parameter `name` of `model`, row-major.
#[napi(namespace = "diagnostics", ts_return_type = "Float32Array")]
pub fn param(env: Env, model: &NativeBert, name: String) -> napi::Result<F32Values> {
    model.with(|m, _| to_f32(m.params().get(&name)?.as_tensor())).map(F32Values).or_throw(&env)
}

/// Replaces the values of parameter `name` of `model` (same element count, finite).
#[napi(namespace = "diagnostics")]
pub fn set_param(env: Env, model: &NativeBert, name: String, values: Float32Array) -> napi::Result<()> {
    model.with(|m, _| m.set_param(&name, &values)).or_throw(&env)
}

/// The gradient of parameter `name` from `model`'s last training step, or `null` before any.
#[napi(namespace = "diagnostics", ts_return_type = "Float32Array | null")]
pub fn grad(env: Env, model: &NativeBert, name: String) -> napi::Result<Option<F32Values>> {
    let run = |m: &tsbert_core::ModelHandle, t: Option<&tsbert_core::Trainer>| -> tsbert_core::Result<_> {
        m.params().get(&name)?; // an unknown name is an error even before any step
        match t {
            Some(t) => Ok(t.last_grad(m, &name)?.as_ref().map(to_f32).transpose()?.map(F32Values)),
            None => Ok(None),
        }
    };
    model.with(run).or_throw(&env)
}
