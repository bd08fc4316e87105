//! Shared helpers of the core's integration tests: a tiny config, models with their trainers
//! and random valid batches.

use std::path::Path;

use candle_core::{DType, Tensor};
use tsbert_core::adam::AdamConfig;
use tsbert_core::hf::{config_from_hf, HfNames};
use tsbert_core::weights::{Naming, WeightsFile};
use tsbert_core::{Batch, BertConfig, ModelHandle, ModelOptions, Trainer, TrainerOptions};

use crate::synthetic::synthetic_batch;

/// A model small enough for finite differences (the textbook's architecture).
pub fn tiny_config(dropout: f64) -> BertConfig {
    BertConfig { hidden: 8, ffn_hidden: 12, dropout, max_positions: 10, ..BertConfig::textbook(13) }
}

/// [`tiny_config`] with every variant of Hugging Face's BERT turned on: GELU, a layer norm
/// after the embeddings, BERT's epsilon, three segment types, a tied MLM decoder.
pub fn tiny_hf_config(dropout: f64) -> BertConfig {
    BertConfig {
        activation: tsbert_core::config::Activation::Gelu,
        embedding_norm: true,
        layer_norm_eps: 1e-12,
        type_vocab_size: 3,
        tie_word_embeddings: true,
        ..tiny_config(dropout)
    }
}

/// A model on the CPU in `dtype`.
pub fn model(config: BertConfig, seed: u64, dtype: DType) -> ModelHandle {
    ModelHandle::new(config, &ModelOptions { seed, dtype, ..ModelOptions::default() }).unwrap()
}

/// A model on the CPU in `dtype` and its trainer (Adam at `lr`).
pub fn trainer(config: BertConfig, seed: u64, lr: f64, dtype: DType) -> (ModelHandle, Trainer) {
    let model = model(config, seed, dtype);
    let adam = AdamConfig { lr, ..AdamConfig::default() };
    let trainer = Trainer::new(&model, &TrainerOptions { seed, adam, ..TrainerOptions::default() }).unwrap();
    (model, trainer)
}

/// A random valid batch (see [`synthetic_batch`]).
pub fn random_batch(config: &BertConfig, b: usize, l: usize, p: usize, seed: u64) -> Batch {
    synthetic_batch(config.vocab_size, b, l, p, seed)
}

/// All values of a tensor as f64.
pub fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
}

/// A model of the Hugging Face folder `dir` (config.json, model.safetensors) in f32 on the CPU,
/// its tensors named as Hugging Face names them, and its config.
pub fn hf_model(dir: &Path) -> (ModelHandle, BertConfig) {
    let file = WeightsFile::open(&dir.join("model.safetensors")).unwrap();
    let json = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let config = config_from_hf(&json, &file.names()).unwrap();
    let names = HfNames::detect(file.names().iter().map(String::as_str), &config);
    let options = ModelOptions { dtype: DType::F32, ..ModelOptions::default() };
    let t = ModelHandle::from_weights(config.clone(), &options, &file, &config, &Naming::HuggingFace(names)).unwrap();
    (t, config)
}
