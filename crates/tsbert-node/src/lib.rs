//! `tsbert-node`: the napi-rs binding of `tsbert-core`. A thin layer: it copies JavaScript
//! typed arrays into owned buffers, runs the core off the JS thread (libuv's pool), and turns
//! the core's errors into `RangeError` / `TypeError` / `Error` objects. The TypeScript layer
//! (`src/`) is its only user; nothing here is public API.

pub mod diagnostics;
mod errors;
mod inputs;
mod native_bert;
mod outputs;
mod tasks;
pub mod tensor;
pub mod tokenizer;

use errors::OrThrow;
use inputs::AdamConfigJs;
pub use native_bert::NativeBert;
use tsbert_core::adam::AdamConfig;
use tsbert_core::{memory, BertConfig};

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
#[napi_derive::napi(ts_return_type = "object")]
pub fn textbook_config(vocab_size: u32) -> serde_json::Value {
    outputs::config_json(&BertConfig::textbook(vocab_size as usize))
}

/// Adam's default hyper-parameters (the textbook's learning rate).
#[napi_derive::napi]
pub fn default_adam() -> AdamConfigJs {
    AdamConfigJs::from(AdamConfig::default())
}

/// Why a training pass of a model of `config` over `rows` × `seq_len` tokens with
/// `predictions` MLM predictions would not fit in `memory_limit` bytes (the estimate against
/// the limit), or `null` when it fits (see `tsbert_core::memory`); a `RangeError` for a config
/// out of range. Checked before any data is read.
#[napi_derive::napi(
    ts_args_type = "config: object, rows: number, seqLen: number, predictions: number, memoryLimit: number"
)]
pub fn pass_exceeds(
    env: napi::Env,
    config: napi::bindgen_prelude::Object,
    rows: f64,
    seq_len: f64,
    predictions: f64,
    memory_limit: f64,
) -> napi::Result<Option<String>> {
    let run = || -> tsbert_core::Result<Option<String>> {
        let config = inputs::read_config(&config)?;
        config.validate()?;
        let count = |n: f64, name: &str| inputs::integer(n, name, inputs::MAX_SAFE_INTEGER).map(|n| n as usize);
        let (rows, seq_len) = (count(rows, "rows")?, count(seq_len, "seqLen")?);
        let bytes = memory::pass_bytes(&config, rows, seq_len, count(predictions, "predictions")?, true);
        let what = format!("a training pass over {rows} × {seq_len} tokens");
        let limit = inputs::integer(memory_limit, "memoryLimit", inputs::MAX_SAFE_INTEGER)?;
        Ok(memory::check_fits("pass", &what, bytes, Some(limit)).err().map(|e| e.message))
    };
    run().or_throw(&env)
}

/// Runs once when Node loads the addon: keep freed activation memory for reuse (see
/// `tsbert_core::allocator`), and let candle's idle workers park instead of spinning beside
/// rayon's (see `tsbert_core::worker_pools`).
#[napi_derive::module_init]
fn init() {
    tsbert_core::allocator::keep_freed_memory();
    tsbert_core::worker_pools::park_idle_candle_workers();
}

/// mimalloc, keeping freed memory for reuse (see `tsbert_core::allocator`).
#[global_allocator]
static GLOBAL: tsbert_core::allocator::Allocator = tsbert_core::allocator::Allocator;
