//! `NativeBert`: one model and its optimizer state, owned by a JavaScript object.

use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::Device;
use napi::bindgen_prelude::{AsyncTask, Float32Array, Object, Unknown};
use napi::{Either, Env};
use napi_derive::napi;
use tsbert_core::adam::AdamConfig;
use tsbert_core::device::cuda_device;
use tsbert_core::{BertConfig, Trainer, TrainerOptions};

use crate::errors::js_error;
use crate::inputs::{
    read_batch, read_sequences, seed_of, BertConfigInput, BertConfigOutput, EvaluationOutput, StepLossesOutput,
    TrainerOptionsInput,
};
use crate::tasks::CoreTask;

/// A BERT model with its Adam state, on one device or data-parallel over several (one
/// replica each, gradients summed, one identical Adam step). Training and encoding run off
/// the JS thread; calls on one model are serialised.
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
    /// weights. Throws a `RangeError` naming a bad option.
    #[napi(constructor)]
    pub fn new(env: Env, config: BertConfigInput, options: Option<TrainerOptionsInput>) -> napi::Result<Self> {
        let build = || -> tsbert_core::Result<Self> {
            let config = config.resolve();
            let o = options.unwrap_or(TrainerOptionsInput { seed: None, lr: None, weight_decay: None, device: None });
            let defaults = AdamConfig::default();
            let adam = AdamConfig {
                lr: o.lr.unwrap_or(defaults.lr),
                weight_decay: o.weight_decay.unwrap_or(defaults.weight_decay),
                ..defaults
            };
            let names = match o.device {
                None => vec!["cpu".to_string()],
                Some(Either::A(one)) => vec![one],
                Some(Either::B(list)) => list,
            };
            let devices = names.iter().map(|n| parse_device(n)).collect::<tsbert_core::Result<Vec<_>>>()?;
            let options = TrainerOptions { seed: seed_of(o.seed)?, adam, dtype: candle_core::DType::F32, devices };
            let trainer = Trainer::new(config.clone(), options)?;
            Ok(Self { trainer: Arc::new(Mutex::new(trainer)), config })
        };
        build().map_err(|e| js_error(&env, e))
    }

    /// The model's full configuration.
    #[napi(getter)]
    pub fn config(&self) -> BertConfigOutput {
        BertConfigOutput::from(&self.config)
    }

    /// Number of trainable scalars.
    #[napi(getter)]
    pub fn param_count(&self, env: Env) -> napi::Result<f64> {
        Ok(lock(&self.trainer).map_err(|e| js_error(&env, e))?.params().count() as f64)
    }

    /// Parameter names in creation order (`encoder.token_embedding.weight`, ...).
    #[napi]
    pub fn param_names(&self, env: Env) -> napi::Result<Vec<String>> {
        let t = lock(&self.trainer).map_err(|e| js_error(&env, e))?;
        Ok(t.params().iter().map(|(n, _)| n.to_string()).collect())
    }

    /// The shape of parameter `name`.
    #[napi]
    pub fn param_shape(&self, env: Env, name: String) -> napi::Result<Vec<u32>> {
        let run = || -> tsbert_core::Result<Vec<u32>> {
            let t = lock(&self.trainer)?;
            Ok(t.params().get(&name)?.dims().iter().map(|&d| d as u32).collect())
        };
        run().map_err(|e| js_error(&env, e))
    }

    /// The current values of parameter `name`, row-major.
    #[napi]
    pub fn param(&self, env: Env, name: String) -> napi::Result<Float32Array> {
        let run = || -> tsbert_core::Result<Vec<f32>> { to_f32(lock(&self.trainer)?.params().get(&name)?.as_tensor()) };
        run().map(Float32Array::new).map_err(|e| js_error(&env, e))
    }

    /// Replaces the values of parameter `name` (same element count, finite).
    #[napi]
    pub fn set_param(&self, env: Env, name: String, values: Float32Array) -> napi::Result<()> {
        let run = || -> tsbert_core::Result<()> { lock(&self.trainer)?.set_param(&name, &values) };
        run().map_err(|e| js_error(&env, e))
    }

    /// The gradient of parameter `name` from the last training step, or `null` before any.
    #[napi]
    pub fn grad(&self, env: Env, name: String) -> napi::Result<Option<Float32Array>> {
        let run = || -> tsbert_core::Result<Option<Vec<f32>>> {
            lock(&self.trainer)?.last_grad(&name)?.as_ref().map(to_f32).transpose()
        };
        run().map(|g| g.map(Float32Array::new)).map_err(|e| js_error(&env, e))
    }

    /// One training step (forward, MLM + NSP loss, backward, Adam) off the JS thread.
    /// Resolves to the losses before the update; rejects with a `TypeError` or `RangeError`
    /// naming the first invalid field of `batch`.
    #[napi(ts_args_type = "batch: BatchInput", ts_return_type = "Promise<StepLossesOutput>")]
    pub fn train_step(&self, batch: Object) -> AsyncTask<CoreTask<StepLossesOutput>> {
        let (trainer, batch) = (Arc::clone(&self.trainer), read_batch(&batch));
        AsyncTask::new(CoreTask::new(Box::new(move || {
            let batch = batch?;
            let losses = lock(&trainer)?.train_step(&batch)?;
            Ok(StepLossesOutput { mlm_loss: losses.mlm, nsp_loss: losses.nsp })
        })))
    }

    /// Encoder output, all MLM and NSP logits and both losses of `batch`, dropout off, no
    /// update.
    #[napi(ts_args_type = "batch: BatchInput", ts_return_type = "Promise<EvaluationOutput>")]
    pub fn evaluate(&self, batch: Object) -> AsyncTask<CoreTask<EvaluationOutput>> {
        let (trainer, batch) = (Arc::clone(&self.trainer), read_batch(&batch));
        AsyncTask::new(CoreTask::new(Box::new(move || {
            let batch = batch?;
            let out = lock(&trainer)?.evaluate(&batch)?;
            Ok(EvaluationOutput {
                encoded: Float32Array::new(to_f32(&out.encoded)?),
                mlm_logits: Float32Array::new(to_f32(&out.mlm_logits)?),
                nsp_logits: Float32Array::new(to_f32(&out.nsp_logits)?),
                mlm_loss: out.losses.mlm,
                nsp_loss: out.losses.nsp,
            })
        })))
    }

    /// Writes the weights to `path` as safetensors (the caller renames it into place).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn save_weights(&self, path: String) -> AsyncTask<CoreTask<()>> {
        let trainer = Arc::clone(&self.trainer);
        AsyncTask::new(CoreTask::new(Box::new(move || {
            let bytes = lock(&trainer)?.save_weights()?;
            std::fs::write(&path, bytes).map_err(|e| tsbert_core::Error::Checkpoint(format!("'{path}': {e}")))
        })))
    }

    /// Replaces the weights with those of the safetensors file at `path`. Rejects, leaving
    /// the model unchanged, if the file is missing, corrupt, or not this model's shape.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn load_weights(&self, path: String) -> AsyncTask<CoreTask<()>> {
        let trainer = Arc::clone(&self.trainer);
        AsyncTask::new(CoreTask::new(Box::new(move || {
            let bytes = std::fs::read(&path).map_err(|e| tsbert_core::Error::Checkpoint(format!("'{path}': {e}")))?;
            lock(&trainer)?.load_weights(&bytes)
        })))
    }

    /// The contextual embedding of every token, dropout off: a `Float32Array` of
    /// `batchSize × seqLen × hidden`.
    #[napi(
        ts_args_type = "tokens: Int32Array, segments: Int32Array, validLens: Int32Array, batchSize: number, seqLen: number",
        ts_return_type = "Promise<Float32Array>"
    )]
    pub fn encode(
        &self,
        tokens: Unknown,
        segments: Unknown,
        valid_lens: Unknown,
        batch_size: Unknown,
        seq_len: Unknown,
    ) -> AsyncTask<CoreTask<Float32Array>> {
        let seqs = read_sequences(tokens, segments, valid_lens, batch_size, seq_len);
        let trainer = Arc::clone(&self.trainer);
        AsyncTask::new(CoreTask::new(Box::new(move || {
            let encoded = lock(&trainer)?.encode(&seqs?)?;
            Ok(Float32Array::new(to_f32(&encoded)?))
        })))
    }
}

/// `"cpu"`, `"cuda"` or `"cuda:N"` as a device.
fn parse_device(name: &str) -> tsbert_core::Result<Device> {
    let unknown = || tsbert_core::InputError::range("device", format!("unknown device '{name}'"));
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda_device(0),
        _ => cuda_device(name.strip_prefix("cuda:").and_then(|n| n.parse().ok()).ok_or_else(unknown)?),
    }
}
