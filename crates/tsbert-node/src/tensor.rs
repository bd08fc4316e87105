//! Tensor operations for the TypeScript `Tensor`: each takes and returns row-major values with
//! their shape, computed on the CPU by the core's shape-checked ops.

use napi::bindgen_prelude::Float32Array;
use napi::Env;
use napi_derive::napi;
use tsbert_core::tensor_ops;

use crate::errors::OrThrow;
use crate::native_bert::to_f32;

/// Row-major f32 values and their shape.
#[napi(object)]
pub struct TensorJs {
    /// The values, row-major.
    pub data: Float32Array,
    /// The dimensions.
    pub shape: Vec<u32>,
}

/// The TypeScript `Tensor` checked its shape and values when it was made.
fn to_core(t: &TensorJs) -> tsbert_core::Result<candle_core::Tensor> {
    let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
    Ok(candle_core::Tensor::from_vec(t.data.to_vec(), shape, &candle_core::Device::Cpu)?)
}

fn to_js(t: candle_core::Tensor) -> tsbert_core::Result<TensorJs> {
    Ok(TensorJs { shape: t.dims().iter().map(|&d| d as u32).collect(), data: Float32Array::new(to_f32(&t)?) })
}

fn binary(
    env: &Env,
    a: &TensorJs,
    b: &TensorJs,
    op: fn(&candle_core::Tensor, &candle_core::Tensor) -> tsbert_core::Result<candle_core::Tensor>,
) -> napi::Result<TensorJs> {
    let run = || to_js(op(&to_core(a)?, &to_core(b)?)?);
    run().or_throw(env)
}

/// Matrix product over the last two dimensions.
#[napi]
pub fn tensor_matmul(env: Env, a: TensorJs, b: TensorJs) -> napi::Result<TensorJs> {
    binary(&env, &a, &b, tensor_ops::matmul)
}

/// Element-wise sum, with broadcasting.
#[napi]
pub fn tensor_add(env: Env, a: TensorJs, b: TensorJs) -> napi::Result<TensorJs> {
    binary(&env, &a, &b, tensor_ops::add)
}

/// Element-wise product, with broadcasting.
#[napi]
pub fn tensor_mul(env: Env, a: TensorJs, b: TensorJs) -> napi::Result<TensorJs> {
    binary(&env, &a, &b, tensor_ops::mul)
}

/// Cosine similarity of every row of `a` (`[n, d]` or `[d]`) with every row of `b`: `[n, m]`.
#[napi]
pub fn tensor_cosine_similarity(env: Env, a: TensorJs, b: TensorJs) -> napi::Result<TensorJs> {
    binary(&env, &a, &b, tensor_ops::cosine_similarity)
}

/// Softmax over the last dimension.
#[napi]
pub fn tensor_softmax(env: Env, a: TensorJs) -> napi::Result<TensorJs> {
    let run = || to_js(tensor_ops::softmax(&to_core(&a)?)?);
    run().or_throw(&env)
}
