//! `tsbert-node`: the napi-rs binding of `tsbert-core`. A thin layer: it copies JavaScript
//! typed arrays into owned buffers, runs the core off the JS thread (libuv's pool), and turns
//! the core's errors into `RangeError` / `TypeError` / `Error` objects.

mod errors;
mod inputs;
mod native_bert;
mod tasks;
mod tensor;

pub use native_bert::NativeBert;
pub use tensor::Tensor;

/// Runs once when Node loads the addon: keep freed activation memory for reuse (see
/// `tsbert_core::allocator`).
#[napi_derive::module_init]
fn init() {
    tsbert_core::allocator::keep_freed_memory();
}
