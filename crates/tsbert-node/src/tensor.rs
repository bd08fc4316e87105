//! Tensor operations for the TypeScript `Tensor`: each takes and returns row-major values with
//! their shape, computed on the CPU by the core's shape-checked ops.

use std::panic::{catch_unwind, AssertUnwindSafe};

use napi::bindgen_prelude::Object;
use napi::Env;
use napi_derive::napi;
use tsbert_core::tensor_ops;

use crate::errors::OrThrow;
use crate::inputs::read_tensor;
use crate::native_bert::to_f32;
use crate::outputs::{F32Values, TensorJs};

/// Core tensor operation on the CPU.
type Op = fn(&[candle_core::Tensor]) -> tsbert_core::Result<candle_core::Tensor>;

/// Runs `op` on `inputs` (named `a`, `b` in messages), a panic included among the errors.
fn apply(env: &Env, inputs: &[&Object], op: Op) -> napi::Result<TensorJs> {
    let run = || -> tsbert_core::Result<TensorJs> {
        let tensors = inputs
            .iter()
            .zip(["a", "b"])
            .map(|(t, name)| {
                let (data, shape) = read_tensor(t, name)?;
                Ok(candle_core::Tensor::from_vec(data, shape, &candle_core::Device::Cpu)?)
            })
            .collect::<tsbert_core::Result<Vec<_>>>()?;
        let out = catch_unwind(AssertUnwindSafe(|| op(&tensors)))
            .unwrap_or_else(|_| Err(tsbert_core::Error::Internal("internal error in a tensor operation".into())))?;
        Ok(TensorJs { shape: out.dims().iter().map(|&d| d as u32).collect(), data: F32Values(to_f32(&out)?) })
    };
    run().or_throw(env)
}

/// Matrix product over the last two dimensions.
#[napi(ts_args_type = "a: TensorJs, b: TensorJs")]
pub fn tensor_matmul(env: Env, a: Object, b: Object) -> napi::Result<TensorJs> {
    apply(&env, &[&a, &b], |t| tensor_ops::matmul(&t[0], &t[1]))
}

/// Element-wise sum, with broadcasting.
#[napi(ts_args_type = "a: TensorJs, b: TensorJs")]
pub fn tensor_add(env: Env, a: Object, b: Object) -> napi::Result<TensorJs> {
    apply(&env, &[&a, &b], |t| tensor_ops::add(&t[0], &t[1]))
}

/// Element-wise product, with broadcasting.
#[napi(ts_args_type = "a: TensorJs, b: TensorJs")]
pub fn tensor_mul(env: Env, a: Object, b: Object) -> napi::Result<TensorJs> {
    apply(&env, &[&a, &b], |t| tensor_ops::mul(&t[0], &t[1]))
}

/// Cosine similarity of every row of `a` (`[n, d]` or `[d]`) with every row of `b`: `[n, m]`.
#[napi(ts_args_type = "a: TensorJs, b: TensorJs")]
pub fn tensor_cosine_similarity(env: Env, a: Object, b: Object) -> napi::Result<TensorJs> {
    apply(&env, &[&a, &b], |t| tensor_ops::cosine_similarity(&t[0], &t[1]))
}

/// Softmax over the last dimension.
#[napi(ts_args_type = "a: TensorJs")]
pub fn tensor_softmax(env: Env, a: Object) -> napi::Result<TensorJs> {
    apply(&env, &[&a], |t| tensor_ops::softmax(&t[0]))
}
