//! Core errors as JavaScript error objects: invalid input becomes a `RangeError` or a
//! `TypeError` naming the field; anything else an `Error` whose `code` says what kind it is
//! (`TSBERT_CHECKPOINT`, `TSBERT_DIVERGED`, `TSBERT_INTERNAL`), for the TypeScript layer to
//! turn into its own error classes.

use napi::{Env, JsError, JsRangeError, JsTypeError, Status};
use tsbert_core::error::InputErrorKind;

/// The JavaScript error for `err`, retained so that a sync throw and a promise rejection
/// both deliver it with its class intact.
pub fn js_error(env: &Env, err: tsbert_core::Error) -> napi::Error {
    let message = err.to_string();
    let value = match &err {
        tsbert_core::Error::Input(e) => {
            let base = napi::Error::new(Status::InvalidArg, message);
            match e.kind {
                InputErrorKind::Range => JsRangeError::from(base).into_unknown(*env),
                InputErrorKind::Type => JsTypeError::from(base).into_unknown(*env),
            }
        }
        tsbert_core::Error::Checkpoint(_) => {
            JsError::from(napi::Error::new("TSBERT_CHECKPOINT", message)).into_unknown(*env)
        }
        tsbert_core::Error::Diverged(_) => {
            JsError::from(napi::Error::new("TSBERT_DIVERGED", message)).into_unknown(*env)
        }
        tsbert_core::Error::Candle(_) | tsbert_core::Error::Internal(_) => {
            JsError::from(napi::Error::new("TSBERT_INTERNAL", message)).into_unknown(*env)
        }
    };
    napi::Error::from_unknown_without_coercion(value)
}

/// A core result as a napi result: the error becomes its JavaScript error (see [`js_error`]).
pub trait OrThrow<T> {
    /// Converts the error, if any, in one call.
    fn or_throw(self, env: &Env) -> napi::Result<T>;
}

impl<T, E: Into<tsbert_core::Error>> OrThrow<T> for Result<T, E> {
    fn or_throw(self, env: &Env) -> napi::Result<T> {
        self.map_err(|e| js_error(env, e.into()))
    }
}
