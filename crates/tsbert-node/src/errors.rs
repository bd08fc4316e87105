//! Core errors as JavaScript error objects: invalid input becomes a `RangeError` or a
//! `TypeError` naming the field; anything else an `Error`.

use napi::{Env, JsError, JsRangeError, JsTypeError, Status};
use tsbert_core::error::InputErrorKind;

/// The JavaScript error for `err`, retained so that a sync throw and a promise rejection
/// both deliver it with its class intact.
pub fn js_error(env: &Env, err: tsbert_core::Error) -> napi::Error {
    let (kind, status) = match &err {
        tsbert_core::Error::Input(e) => (Some(e.kind), Status::InvalidArg),
        tsbert_core::Error::Checkpoint(_) => (None, Status::InvalidArg),
        tsbert_core::Error::Candle(_) | tsbert_core::Error::Internal(_) => (None, Status::GenericFailure),
    };
    let base = napi::Error::new(status, err.to_string());
    let value = match kind {
        Some(InputErrorKind::Range) => JsRangeError::from(base).into_unknown(*env),
        Some(InputErrorKind::Type) => JsTypeError::from(base).into_unknown(*env),
        None => JsError::from(base).into_unknown(*env),
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
