//! `NativeBert`: one model and its optimizer state, owned by a JavaScript object.

use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::Device;
use napi::bindgen_prelude::{AsyncTask, Buffer, Float32Array, Object};
use napi::Env;
use napi_derive::napi;
use tsbert_core::adam::AdamConfig;
use tsbert_core::device::cuda_device;
use tsbert_core::{BertConfig, Trainer, TrainerOptions};

use crate::errors::OrThrow;
use crate::inputs::{read_batch, read_sequences, BertConfigJs, EvaluationJs, StepLossesJs, TrainerOptionsJs};
use crate::tasks::CoreTask;

/// A BERT model with its Adam state, on one device or data-parallel over several (one
/// replica each, gradients summed, one identical Adam step). Training, encoding and the
/// weights' (de)serialisation run off the JS thread; calls on one model are serialised.
#[napi]
pub struct NativeBert {
    trainer: Arc<Mutex<Trainer>>,
    config: BertConfig,
}

fn lock(trainer: &Mutex<Trainer>) -> tsbert_core::Result<MutexGuard<'_, Trainer>> {
    trainer
        .lock()
        .map_err(|_| tsbert_core::Error::Internal("this model is unusable after an earlier internal error".into()))
}

/// Row-major f32 values of a tensor.
pub(crate) fn to_f32(t: &candle_core::Tensor) -> tsbert_core::Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?)
}

#[napi]
impl NativeBert {
    /// Creates a freshly initialised model; the same config and seed give bit-identical
    /// weights. Throws a `RangeError` naming a bad size or option.
    #[napi(constructor)]
    pub fn new(env: Env, config: BertConfigJs, options: TrainerOptionsJs) -> napi::Result<Self> {
        let build = || -> tsbert_core::Result<Self> {
            let config = BertConfig::from(&config);
            let defaults = AdamConfig::default();
            let adam = AdamConfig {
                lr: options.lr.unwrap_or(defaults.lr),
                weight_decay: options.weight_decay.unwrap_or(defaults.weight_decay),
                ..defaults
            };
            let devices = options
                .devices
                .iter()
                .map(|d| d.cuda.map_or(Ok(Device::Cpu), |ordinal| cuda_device(ordinal as usize)))
                .collect::<tsbert_core::Result<Vec<_>>>()?;
            let options =
                TrainerOptions { seed: u64::from(options.seed), adam, dtype: candle_core::DType::F32, devices };
            let trainer = Trainer::new(config.clone(), options)?;
            Ok(Self { trainer: Arc::new(Mutex::new(trainer)), config })
        };
        build().or_throw(&env)
    }

    /// The model's full configuration.
    #[napi(getter)]
    pub fn config(&self) -> BertConfigJs {
        BertConfigJs::from(&self.config)
    }

    /// Number of trainable scalars.
    #[napi(getter)]
    pub fn param_count(&self, env: Env) -> napi::Result<f64> {
        Ok(lock(&self.trainer).or_throw(&env)?.params().count() as f64)
    }

    /// Parameter names in creation order (`encoder.token_embedding.weight`, ...).
    #[napi]
    pub fn param_names(&self, env: Env) -> napi::Result<Vec<String>> {
        Ok(lock(&self.trainer).or_throw(&env)?.params().iter().map(|(n, _)| n.to_string()).collect())
    }

    /// The shape of parameter `name`.
    #[napi]
    pub fn param_shape(&self, env: Env, name: String) -> napi::Result<Vec<u32>> {
        let run = || -> tsbert_core::Result<Vec<u32>> {
            Ok(lock(&self.trainer)?.params().get(&name)?.dims().iter().map(|&d| d as u32).collect())
        };
        run().or_throw(&env)
    }

    /// The current values of parameter `name`, row-major.
    #[napi]
    pub fn param(&self, env: Env, name: String) -> napi::Result<Float32Array> {
        let run = || to_f32(lock(&self.trainer)?.params().get(&name)?.as_tensor());
        run().map(Float32Array::new).or_throw(&env)
    }

    /// Replaces the values of parameter `name` (same element count, finite).
    #[napi]
    pub fn set_param(&self, env: Env, name: String, values: Float32Array) -> napi::Result<()> {
        let run = || lock(&self.trainer)?.set_param(&name, &values);
        run().or_throw(&env)
    }

    /// The gradient of parameter `name` from the last training step, or `null` before any.
    #[napi]
    pub fn grad(&self, env: Env, name: String) -> napi::Result<Option<Float32Array>> {
        let run = || lock(&self.trainer)?.last_grad(&name)?.as_ref().map(to_f32).transpose();
        run().map(|g| g.map(Float32Array::new)).or_throw(&env)
    }

    /// One training step (forward, MLM + NSP loss, backward, Adam) on a `Batch`. Resolves to
    /// the losses before the update; rejects with a `TypeError` or `RangeError` naming the
    /// first invalid field.
    #[napi(ts_args_type = "batch: object", ts_return_type = "Promise<StepLossesJs>")]
    pub fn train_step(&self, batch: Object) -> AsyncTask<CoreTask<StepLossesJs>> {
        let (trainer, batch) = (Arc::clone(&self.trainer), read_batch(&batch));
        CoreTask::spawn(move || {
            let losses = lock(&trainer)?.train_step(&batch?)?;
            Ok(StepLossesJs { mlm_loss: losses.mlm, nsp_loss: losses.nsp })
        })
    }

    /// Encoder output, all MLM and NSP logits and both losses of a `Batch`, dropout off, no
    /// update.
    #[napi(ts_args_type = "batch: object", ts_return_type = "Promise<EvaluationJs>")]
    pub fn evaluate(&self, batch: Object) -> AsyncTask<CoreTask<EvaluationJs>> {
        let (trainer, batch) = (Arc::clone(&self.trainer), read_batch(&batch));
        CoreTask::spawn(move || {
            let out = lock(&trainer)?.evaluate(&batch?)?;
            Ok(EvaluationJs {
                encoded: Float32Array::new(to_f32(&out.encoded)?),
                mlm_logits: Float32Array::new(to_f32(&out.mlm_logits)?),
                nsp_logits: Float32Array::new(to_f32(&out.nsp_logits)?),
                mlm_loss: out.losses.mlm,
                nsp_loss: out.losses.nsp,
            })
        })
    }

    /// The contextual embedding of every token of a `Sequences` object (`batchSize`,
    /// `seqLen`, `tokens`, `segments`, `validLens`), dropout off: `batchSize × seqLen × hidden`
    /// values.
    #[napi(ts_args_type = "sequences: object", ts_return_type = "Promise<Float32Array>")]
    pub fn encode(&self, sequences: Object) -> AsyncTask<CoreTask<Float32Array>> {
        let (trainer, sequences) = (Arc::clone(&self.trainer), read_sequences(&sequences));
        CoreTask::spawn(move || {
            let encoded = lock(&trainer)?.encode(&sequences?)?;
            Ok(Float32Array::new(to_f32(&encoded)?))
        })
    }

    /// The weights as the bytes of a safetensors file.
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn save_weights(&self) -> AsyncTask<CoreTask<Buffer>> {
        let trainer = Arc::clone(&self.trainer);
        CoreTask::spawn(move || Ok(Buffer::from(lock(&trainer)?.save_weights()?)))
    }

    /// Replaces the weights with those of a safetensors file's bytes. Rejects, leaving the
    /// model unchanged, if they are corrupt or not this model's parameters.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn load_weights(&self, bytes: Buffer) -> AsyncTask<CoreTask<()>> {
        let (trainer, bytes) = (Arc::clone(&self.trainer), bytes.to_vec());
        CoreTask::spawn(move || lock(&trainer)?.load_weights(&bytes))
    }
}
