//! `tsbert-core`: the pure-Rust half of tsbert.
//!
//! A BERT encoder with the masked-language-model (MLM) and next-sentence-prediction (NSP)
//! heads of Dive into Deep Learning's "pretraining BERT" chapter, its losses, and Adam, on
//! [candle](https://github.com/huggingface/candle). Everything here is differentiable with
//! candle's own autograd; layer norm and softmax are built from differentiable ops because
//! candle's fused versions have no backward pass.
//!
//! Follow one training step: [`batch::Batch`] (validated input) →
//! [`trainer::Trainer::train_step`] → [`model::BertModel::forward`] →
//! [`loss::pretraining_loss`] → `backward` → [`adam::Adam::step`].

pub mod adam;
pub mod allocator;
pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod error;
pub mod gradient_sum;
pub mod loss;
pub mod model;
pub mod ops;
pub mod parallel;
pub mod params;
pub mod rng;
pub mod synthetic;
pub mod tensor_ops;
pub mod trainer;

pub use batch::Batch;
pub use config::BertConfig;
pub use error::{Error, InputError, Result};
pub use trainer::{StepLosses, Trainer, TrainerOptions};
