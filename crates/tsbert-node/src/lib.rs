//! `tsbert-node`: the napi-rs binding of `tsbert-core`. A thin layer: it copies JavaScript
//! typed arrays into owned buffers, runs the core off the JS thread (libuv's pool), and turns
//! the core's errors into `RangeError` / `TypeError` / `Error` objects. The TypeScript layer
//! (`src/`) is its only user; nothing here is public API.

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
#[napi_derive::napi(ts_return_type = "BertConfigJs")]
pub fn textbook_config(vocab_size: u32) -> serde_json::Value {
    outputs::config_json(&BertConfig::textbook(vocab_size as usize))
}

/// Adam's default hyper-parameters (the textbook's learning rate).
#[napi_derive::napi]
pub fn default_adam() -> AdamConfigJs {
    AdamConfigJs::from(AdamConfig::default())
}

/// Checks, before anything is allocated, that a training pass of a model of `config` over
/// `rows` × `seq_len` tokens with `predictions` MLM predictions fits in `memory_limit` bytes:
/// a `RangeError` naming `field`, with the estimate, otherwise (see `tsbert_core::memory`).
#[napi_derive::napi(
    ts_args_type = "config: BertConfigJs, rows: number, seqLen: number, predictions: number, memoryLimit: number, field: string"
)]
pub fn check_pass_fits(
    env: napi::Env,
    config: napi::bindgen_prelude::Object,
    rows: f64,
    seq_len: f64,
    predictions: f64,
    memory_limit: f64,
    field: String,
) -> napi::Result<()> {
    let run = || -> tsbert_core::Result<()> {
        let config = inputs::read_config(&config)?;
        config.validate()?;
        let count = |n: f64, name: &str| inputs::integer(n, name, inputs::MAX_SAFE_INTEGER).map(|n| n as usize);
        let (rows, seq_len) = (count(rows, "rows")?, count(seq_len, "seqLen")?);
        let bytes = memory::pass_bytes(&config, rows, seq_len, count(predictions, "predictions")?, true);
        let what = format!("a training pass over {rows} × {seq_len} tokens");
        let limit = inputs::integer(memory_limit, "memoryLimit", inputs::MAX_SAFE_INTEGER)?;
        Ok(memory::check_fits(&field, &what, bytes, Some(limit))?)
    };
    run().or_throw(&env)
}

/// Checks a weights file's header (tensors named as `naming` says) against the parameters a
/// model of `config` has (names, shapes, float dtypes) before the model is built: sizes a
/// config claims but its weights do not have are never allocated. Throws the core's checkpoint
/// error (`code` `TSBERT_CHECKPOINT`), or a `RangeError` for sizes out of range.
#[napi_derive::napi(ts_args_type = "config: BertConfigJs, weights: Buffer, naming: 'tsbert' | 'huggingface'")]
pub fn check_weights(
    env: napi::Env,
    config: napi::bindgen_prelude::Object,
    weights: napi::bindgen_prelude::Buffer,
    naming: String,
) -> napi::Result<()> {
    let run = || -> tsbert_core::Result<()> {
        let config = inputs::read_config(&config)?;
        let naming = native_bert::naming_of(&naming, &config, Some(&weights))?;
        tsbert_core::checkpoint::check_header(&config, &weights, &naming)
    };
    run().or_throw(&env)
}

/// tsbert's config of a Hugging Face BERT checkpoint: its `config.json` text and its weights
/// (whose tensor names say which heads it has). Throws (code `TSBERT_CHECKPOINT`) naming what
/// tsbert cannot run.
#[napi_derive::napi(ts_args_type = "configJson: string, weights: Buffer", ts_return_type = "BertConfigJs")]
pub fn hf_config(
    env: napi::Env,
    config_json: String,
    weights: napi::bindgen_prelude::Buffer,
) -> napi::Result<serde_json::Value> {
    let run = || -> tsbert_core::Result<serde_json::Value> {
        let stored = tsbert_core::checkpoint::stored_names(&weights)?;
        Ok(outputs::config_json(&tsbert_core::hf::config_from_hf(&config_json, &stored)?))
    };
    run().or_throw(&env)
}

/// The Hugging Face `config.json` of a model of `config`, as a JSON object; throws (code
/// `TSBERT_CHECKPOINT`) saying what Hugging Face's BERT cannot express.
#[napi_derive::napi(ts_args_type = "config: BertConfigJs")]
pub fn hf_export_config(env: napi::Env, config: napi::bindgen_prelude::Object) -> napi::Result<serde_json::Value> {
    let run = || -> tsbert_core::Result<serde_json::Value> {
        Ok(tsbert_core::hf::config_to_hf(&inputs::read_config(&config)?)?.0)
    };
    run().or_throw(&env)
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
