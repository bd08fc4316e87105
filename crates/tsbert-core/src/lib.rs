//! `tsbert-core`: the pure-Rust half of tsbert.
//!
//! A BERT encoder with the masked-language-model (MLM) and next-sentence-prediction (NSP)
//! heads of Dive into Deep Learning's "pretraining BERT" chapter, its losses, and Adam, on
//! [candle](https://github.com/huggingface/candle). Gradients come from candle's autograd;
//! where composing candle ops costs too much (or candle's fused op has no backward), [`ops`]
//! has CPU kernels with their own backward pass.
//!
//! A [`ModelHandle`] is the model on its devices with the passes that run it (encode, pool,
//! MLM logits, evaluate); a [`Trainer`] holds what training adds (Adam, dropout streams,
//! gradients). Follow one training step: [`Batch`] (checked input) →
//! [`Trainer::train_step`] → [`model::BertModel::encode`] and the two heads → [`loss`] →
//! candle's `backward` → [`adam::Adam::step`].

/// Compiles the function it wraps for the widest vectors the CPU has, picked at run time:
/// AVX-512, AVX2 + FMA, SSE 4.2 or NEON (multiversion's `"simd"` list stops at AVX2). Each
/// clone does the same arithmetic, so gives the same bits, as long as the function's code does
/// not depend on the vector width.
macro_rules! widest_vectors {
    ($function:item) => {
        #[::multiversion::multiversion(targets(
            "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl",
            "x86_64+avx2+fma",
            "x86_64+sse4.2",
            "aarch64+neon"
        ))]
        $function
    };
}

pub mod adam;
pub mod allocator;
pub mod batch;
pub mod config;
pub mod device;
pub mod error;
pub mod gradient_sum;
pub mod hf;
pub mod loss;
pub mod memory;
pub mod model;
#[cfg(feature = "cuda")]
pub mod nccl;
pub mod on_demand_tokenizer;
pub mod ops;
pub mod params;
pub mod pooling;
pub mod rng;
#[cfg(any(feature = "cuda", test))]
pub mod shared_library;
pub mod task_loss;
pub mod tensor_ops;
pub mod tokenizer;
pub mod trainer;
pub mod weights;
pub mod worker_pools;

pub use batch::Batch;
pub use config::BertConfig;
pub use error::{Error, InputError, Result};
pub use model::{EvalMetrics, EvalSums, ModelHandle, ModelOptions, StepLosses};
pub use trainer::{TaskPart, Trainer, TrainerOptions};
