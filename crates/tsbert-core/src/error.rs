//! Errors: bad input (named field and value) apart from failures inside candle.

/// What kind of JavaScript error an [`InputError`] maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputErrorKind {
    /// A value outside its allowed range (JS `RangeError`).
    Range,
    /// A value of the wrong kind (JS `TypeError`).
    Type,
}

/// Invalid input, caught before it reaches candle. The message names the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InputError {
    /// Which error class the binding raises.
    pub kind: InputErrorKind,
    /// The offending field, as the JavaScript API names it (e.g. `tokens[17]`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl InputError {
    /// A value out of its range.
    pub fn range(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { kind: InputErrorKind::Range, field: field.into(), message: message.into() }
    }

    /// A value of the wrong type.
    pub fn type_error(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { kind: InputErrorKind::Type, field: field.into(), message: message.into() }
    }
}

/// Every error of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's input is invalid.
    #[error(transparent)]
    Input(#[from] InputError),
    /// candle failed (out of memory, a device error, ...).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// A weights file that cannot be written or read back as this model's parameters.
    #[error("{0}")]
    Checkpoint(String),
    /// Training produced a non-finite loss or gradient; the weights were left as they were.
    #[error("{0}")]
    Diverged(String),
    /// A failure outside candle: a panic caught at a boundary, a state that forbids the call.
    #[error("{0}")]
    Internal(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
