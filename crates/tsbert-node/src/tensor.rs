//! `Tensor`: a small CPU tensor for post-processing embeddings without leaving native code.

use napi::bindgen_prelude::Float32Array;
use napi::Env;
use napi_derive::napi;
use tsbert_core::tensor_ops;

use crate::errors::js_error;
use crate::native_bert::to_f32;

/// An immutable f32 tensor on the CPU. Every operation returns a new tensor; shape problems
/// throw a `RangeError` naming the operation and the shapes.
#[napi]
pub struct Tensor {
    inner: candle_core::Tensor,
}

fn wrap(env: &Env, result: tsbert_core::Result<candle_core::Tensor>) -> napi::Result<Tensor> {
    result.map(|inner| Tensor { inner }).map_err(|e| js_error(env, e))
}

#[napi]
impl Tensor {
    /// A tensor of `shape` holding `data` (row-major; as many values as the shape holds).
    #[napi(factory)]
    pub fn from_array(env: Env, data: Float32Array, shape: Vec<u32>) -> napi::Result<Tensor> {
        let shape: Vec<usize> = shape.into_iter().map(|d| d as usize).collect();
        wrap(&env, tensor_ops::from_values(data.to_vec(), &shape))
    }

    /// The dimensions.
    #[napi(getter)]
    pub fn shape(&self) -> Vec<u32> {
        self.inner.dims().iter().map(|&d| d as u32).collect()
    }

    /// The values, row-major.
    #[napi]
    pub fn to_array(&self, env: Env) -> napi::Result<Float32Array> {
        to_f32(&self.inner).map(Float32Array::new).map_err(|e| js_error(&env, e))
    }

    /// Matrix product over the last two dimensions.
    #[napi]
    pub fn matmul(&self, env: Env, other: &Tensor) -> napi::Result<Tensor> {
        wrap(&env, tensor_ops::matmul(&self.inner, &other.inner))
    }

    /// Element-wise sum, with broadcasting.
    #[napi]
    pub fn add(&self, env: Env, other: &Tensor) -> napi::Result<Tensor> {
        wrap(&env, tensor_ops::add(&self.inner, &other.inner))
    }

    /// Element-wise product, with broadcasting.
    #[napi]
    pub fn mul(&self, env: Env, other: &Tensor) -> napi::Result<Tensor> {
        wrap(&env, tensor_ops::mul(&self.inner, &other.inner))
    }

    /// Softmax over the last dimension.
    #[napi]
    pub fn softmax(&self, env: Env) -> napi::Result<Tensor> {
        wrap(&env, tensor_ops::softmax(&self.inner))
    }

    /// Cosine similarity of every row of this tensor (`[n, d]` or `[d]`) with every row of
    /// `other`: a `[n, m]` tensor.
    #[napi]
    pub fn cosine_similarity(&self, env: Env, other: &Tensor) -> napi::Result<Tensor> {
        wrap(&env, tensor_ops::cosine_similarity(&self.inner, &other.inner))
    }
}
