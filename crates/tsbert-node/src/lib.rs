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

/// Whether this addon was built with candle's CUDA backend.
#[napi_derive::napi]
pub fn built_with_cuda() -> bool {
    cfg!(feature = "cuda")
}

/// Number of CUDA GPUs this addon can use (0 in a CPU build); throws if the driver fails.
#[napi_derive::napi]
pub fn cuda_device_count(env: napi::Env) -> napi::Result<u32> {
    tsbert_core::device::cuda_device_count().map(|n| n as u32).map_err(|e| errors::js_error(&env, e))
}

/// Runs once when Node loads the addon: keep freed activation memory for reuse (see
/// `tsbert_core::allocator`).
#[napi_derive::module_init]
fn init() {
    tsbert_core::allocator::keep_freed_memory();
}

/// mimalloc, keeping freed memory for reuse (see `tsbert_core::allocator`).
#[global_allocator]
static GLOBAL: tsbert_core::allocator::Allocator = tsbert_core::allocator::Allocator;
