//! The JavaScript-facing results. Values go back in `Float32Array`s over ArrayBuffers that V8
//! allocates and owns (the values copied in once): the garbage collector frees them on its
//! own, also in a loop that never yields to the event loop, where the finalizers of external
//! buffers (napi-rs's default for a `Vec`) would never run and native memory would pile up.

use std::ptr;

use napi::bindgen_prelude::{ToNapiValue, TypeName};
use napi::{check_status, sys, ValueType};
use napi_derive::napi;

/// Values handed to JavaScript as a typed array over an ArrayBuffer V8 owns.
macro_rules! v8_owned_array {
    ($name:ident, $element:ty, $kind:ident, $js:literal) => {
        #[doc = concat!("Values handed to JavaScript as a `", $js, "` V8 owns.")]
        pub struct $name(pub Vec<$element>);

        impl TypeName for $name {
            fn type_name() -> &'static str {
                $js
            }

            fn value_type() -> ValueType {
                ValueType::Object
            }
        }

        impl ToNapiValue for $name {
            unsafe fn to_napi_value(env: sys::napi_env, values: Self) -> napi::Result<sys::napi_value> {
                let bytes = std::mem::size_of_val(values.0.as_slice());
                let (mut data, mut buffer, mut array) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
                // SAFETY: `env` is the live environment of this call; `data` points to `bytes`
                // bytes V8 just allocated, which the copy fills from a slice of that length.
                unsafe {
                    check_status!(sys::napi_create_arraybuffer(env, bytes, &mut data, &mut buffer))?;
                    if bytes > 0 {
                        ptr::copy_nonoverlapping(values.0.as_ptr().cast::<u8>(), data.cast::<u8>(), bytes);
                    }
                    check_status!(sys::napi_create_typedarray(
                        env,
                        sys::TypedarrayType::$kind,
                        values.0.len(),
                        buffer,
                        0,
                        &mut array
                    ))?;
                }
                Ok(array)
            }
        }
    };
}

v8_owned_array!(F32Values, f32, float32_array, "Float32Array");
v8_owned_array!(I32Values, i32, int32_array, "Int32Array");

/// The losses of one training step, computed before its update.
#[napi(object)]
pub struct StepLossesJs {
    /// Weighted masked-language-model cross-entropy.
    pub mlm_loss: f64,
    /// Mean next-sentence-prediction cross-entropy.
    pub nsp_loss: f64,
}

/// Everything an evaluation (dropout off) computes for a batch.
#[napi(object, object_from_js = false)]
pub struct EvaluationJs {
    /// `[B·L·hidden]` encoder output.
    #[napi(ts_type = "Float32Array")]
    pub encoded: F32Values,
    /// `[B·P·vocab]` MLM logits, padded predictions included.
    #[napi(ts_type = "Float32Array")]
    pub mlm_logits: F32Values,
    /// `[B·2]` NSP logits.
    #[napi(ts_type = "Float32Array")]
    pub nsp_logits: F32Values,
    /// Weighted MLM cross-entropy.
    pub mlm_loss: f64,
    /// Mean NSP cross-entropy.
    pub nsp_loss: f64,
}

/// Row-major f32 values and their shape: a tensor's result.
#[napi(object, object_from_js = false)]
pub struct TensorJs {
    /// The values, row-major.
    #[napi(ts_type = "Float32Array")]
    pub data: F32Values,
    /// The dimensions.
    pub shape: Vec<u32>,
}

/// A value of the core's serialised as JSON (its serde names are the TypeScript type's), handed
/// to JavaScript as an object.
pub struct Json(pub serde_json::Value);

impl TypeName for Json {
    fn type_name() -> &'static str {
        "object"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for Json {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        // SAFETY: `env` is the live environment of the call that returns `value`.
        unsafe { serde_json::Value::to_napi_value(env, value.0) }
    }
}

/// A config as the JSON object the TypeScript `BertConfig` is (the core's serde names).
pub fn config_json(config: &tsbert_core::BertConfig) -> serde_json::Value {
    serde_json::to_value(config).expect("a config of numbers, booleans and strings serialises")
}
