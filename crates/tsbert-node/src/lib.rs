//! `tsbert-node`: the napi-rs binding of `tsbert-core`. A thin layer: it copies JavaScript
//! typed arrays into owned buffers, runs the core off the JS thread (libuv's pool), and turns
//! the core's errors into `RangeError` / `TypeError` / `Error` objects. The TypeScript layer
//! (`src/`) is its only user; nothing here is public API.

mod errors;
mod inputs;
mod native_bert;
mod tasks;
pub mod tensor;

use errors::OrThrow;
use inputs::{AdamConfigJs, BertConfigJs};
pub use native_bert::NativeBert;
use tsbert_core::adam::AdamConfig;
use tsbert_core::BertConfig;

/// Whether this addon was built with candle's CUDA backend.
#[napi_derive::napi]
pub fn built_with_cuda() -> bool {
    cfg!(feature = "cuda")
}

/// Number of CUDA GPUs this addon can use (0 in a CPU build); throws if the driver fails.
#[napi_derive::napi]
pub fn cuda_device_count(env: napi::Env) -> napi::Result<u32> {
    tsbert_core::device::cuda_device_count().map(|n| n as u32).or_throw(&env)
}

/// Dive into Deep Learning's model sizes for a vocabulary of `vocab_size` ids.
#[napi_derive::napi]
pub fn textbook_config(vocab_size: u32) -> BertConfigJs {
    BertConfigJs::from(&BertConfig::textbook(vocab_size as usize))
}

/// Adam's default hyper-parameters (the textbook's learning rate).
#[napi_derive::napi]
pub fn default_adam() -> AdamConfigJs {
    AdamConfigJs::from(AdamConfig::default())
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
