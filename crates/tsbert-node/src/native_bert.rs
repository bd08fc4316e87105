//! `NativeBert`: one model and its optimizer state, owned by a JavaScript object.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::Device;
use napi::bindgen_prelude::{AsyncTask, Buffer, Float32Array, Int32Array, Object, ObjectFinalize, Unknown};
use napi::Env;
use napi_derive::napi;
use tsbert_core::batch::Sequences;
use tsbert_core::checkpoint::{self, Naming};
use tsbert_core::device::cuda_device;
use tsbert_core::error::InputError;
use tsbert_core::hf::{self, HfNames};
use tsbert_core::pooling::Pooling;
use tsbert_core::{memory, BertConfig, Trainer};

use crate::errors::OrThrow;
use crate::inputs::{read_batch, read_batches, read_config, read_options, read_sequences};
use crate::outputs::{EvalMetricsJs, EvaluationJs, F32Values, StepLossesJs};
use crate::tasks::{run_on_compute_threads, CoreTask};

/// A BERT model with its Adam state, on one device or data-parallel over several (one
/// replica each, gradients summed, one identical Adam step). Training, encoding and the
/// weights' (de)serialisation run off the JS thread; calls on one model are serialised.
/// V8 is told how much host memory the model holds, so that the garbage collector weighs it;
/// `dispose` frees it at once.
#[napi(custom_finalize)]
pub struct NativeBert {
    trainer: Arc<Mutex<Option<Trainer>>>,
    config: BertConfig,
    /// Bytes reported to V8 as held by this object (0 once disposed).
    accounted: AtomicI64,
}

/// The model behind its lock: the trainer, checked not to be disposed.
struct Locked<'a>(MutexGuard<'a, Option<Trainer>>);

impl Deref for Locked<'_> {
    type Target = Trainer;
    fn deref(&self) -> &Trainer {
        self.0.as_ref().expect("checked by lock")
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Trainer {
        self.0.as_mut().expect("checked by lock")
    }
}

fn lock(trainer: &Mutex<Option<Trainer>>) -> tsbert_core::Result<Locked<'_>> {
    let guard = trainer
        .lock()
        .map_err(|_| tsbert_core::Error::Internal("this model is unusable after an earlier internal error".into()))?;
    if guard.is_none() {
        return Err(tsbert_core::Error::Internal("this model was disposed".into()));
    }
    Ok(Locked(guard))
}

/// The encoder output of `sequences` (as read from JavaScript) as JavaScript values: what
/// `encode` and `encodeNow` compute.
fn encoded(
    trainer: &Mutex<Option<Trainer>>,
    sequences: Result<Sequences, InputError>,
) -> tsbert_core::Result<F32Values> {
    let encoded = lock(trainer)?.encode(&sequences?)?;
    Ok(F32Values(to_f32(&encoded)?))
}

impl ObjectFinalize for NativeBert {
    fn finalize(self, env: Env) -> napi::Result<()> {
        env.adjust_external_memory(-self.accounted.load(Ordering::Relaxed))?;
        Ok(())
    }
}

/// Row-major f32 values of a tensor.
pub(crate) fn to_f32(t: &candle_core::Tensor) -> tsbert_core::Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?)
}

#[napi]
impl NativeBert {
    /// Creates a freshly initialised model; the same config and seed give bit-identical
    /// weights. Throws a `TypeError` or `RangeError` naming a bad size or option (sizes whose
    /// model would not fit in `memoryLimit` included).
    #[napi(constructor, ts_args_type = "config: BertConfigJs, options: TrainerOptionsJs")]
    pub fn new(env: Env, config: Object, options: Object) -> napi::Result<Self> {
        let build = || -> tsbert_core::Result<Self> {
            let config = read_config(&config)?;
            let (mut options, ordinals) = read_options(&options)?;
            options.devices =
                ordinals.iter().map(|o| o.map_or(Ok(Device::Cpu), cuda_device)).collect::<tsbert_core::Result<_>>()?;
            let trainer = Trainer::new(config.clone(), options)?;
            let on_cpu = ordinals.iter().filter(|o| o.is_none()).count() as u128;
            let bytes = i64::try_from(on_cpu * memory::model_bytes(&config)?).unwrap_or(i64::MAX);
            Ok(Self { trainer: Arc::new(Mutex::new(Some(trainer))), config, accounted: AtomicI64::new(bytes) })
        };
        let model = build().or_throw(&env)?;
        env.adjust_external_memory(model.accounted.load(Ordering::Relaxed))?;
        Ok(model)
    }

    /// Frees the model's memory now instead of when the garbage collector gets to it; every
    /// later call fails. Throws while a call is in flight (await it first); disposing twice
    /// does nothing.
    #[napi]
    pub fn dispose(&self, env: Env) -> napi::Result<()> {
        let mut guard = match self.trainer.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                return Err(napi::Error::from_reason("dispose: a call on this model is in flight; await it first"))
            }
        };
        guard.take();
        env.adjust_external_memory(-self.accounted.swap(0, Ordering::Relaxed))?;
        Ok(())
    }

    /// The model's full configuration.
    #[napi(getter, ts_return_type = "BertConfigJs")]
    pub fn config(&self) -> serde_json::Value {
        crate::outputs::config_json(&self.config)
    }

    /// Adam updates taken so far.
    #[napi(getter)]
    pub fn steps_taken(&self, env: Env) -> napi::Result<f64> {
        Ok(lock(&self.trainer).or_throw(&env)?.steps_taken() as f64)
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
    #[napi(ts_return_type = "Float32Array")]
    pub fn param(&self, env: Env, name: String) -> napi::Result<F32Values> {
        let run = || to_f32(lock(&self.trainer)?.params().get(&name)?.as_tensor());
        run().map(F32Values).or_throw(&env)
    }

    /// Replaces the values of parameter `name` (same element count, finite).
    #[napi]
    pub fn set_param(&self, env: Env, name: String, values: Float32Array) -> napi::Result<()> {
        let run = || lock(&self.trainer)?.set_param(&name, &values);
        run().or_throw(&env)
    }

    /// The gradient of parameter `name` from the last training step, or `null` before any.
    #[napi(ts_return_type = "Float32Array | null")]
    pub fn grad(&self, env: Env, name: String) -> napi::Result<Option<F32Values>> {
        let run = || lock(&self.trainer)?.last_grad(&name)?.as_ref().map(to_f32).transpose();
        run().map(|g| g.map(F32Values)).or_throw(&env)
    }

    /// One training step (forward, MLM + NSP loss, backward, Adam) on a `Batch`, or on an
    /// array of them with their gradients accumulated. Resolves to the losses before the
    /// update; rejects with a `TypeError` or `RangeError` naming the first invalid field.
    #[napi(ts_args_type = "batch: object | object[]", ts_return_type = "Promise<StepLossesJs>")]
    pub fn train_step(&self, batch: Unknown) -> AsyncTask<CoreTask<StepLossesJs>> {
        let (trainer, batches) = (Arc::clone(&self.trainer), read_batches(batch));
        CoreTask::spawn(move || {
            let losses = lock(&trainer)?.train_step_accumulated(&batches?)?;
            Ok(StepLossesJs { mlm_loss: losses.mlm, nsp_loss: losses.nsp })
        })
    }

    /// The learning rate of the next steps (a schedule's value).
    #[napi]
    pub fn set_lr(&self, env: Env, lr: f64) -> napi::Result<()> {
        let run = || lock(&self.trainer)?.set_lr(lr);
        run().or_throw(&env)
    }

    /// Held-out losses and accuracies of a `Batch`, dropout off, as sums.
    #[napi(ts_args_type = "batch: object", ts_return_type = "Promise<EvalMetricsJs>")]
    pub fn evaluate_metrics(&self, batch: Object) -> AsyncTask<CoreTask<EvalMetricsJs>> {
        let (trainer, batch) = (Arc::clone(&self.trainer), read_batch(&batch));
        CoreTask::spawn(move || {
            let m = lock(&trainer)?.evaluate_metrics(&batch?)?;
            Ok(EvalMetricsJs {
                mlm_loss_sum: m.mlm_loss_sum,
                mlm_weight: m.mlm_weight,
                mlm_correct: m.mlm_correct,
                nsp_loss_sum: m.nsp_loss_sum,
                nsp_correct: m.nsp_correct,
                rows: m.rows,
            })
        })
    }

    /// The optimizer's state (both moments, the step count, the dropout streams) as a
    /// safetensors file's bytes: what resuming a run needs besides the weights.
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn save_state(&self) -> AsyncTask<CoreTask<Buffer>> {
        let trainer = Arc::clone(&self.trainer);
        CoreTask::spawn(move || Ok(Buffer::from(lock(&trainer)?.save_state()?)))
    }

    /// Takes back an optimizer state written by `saveState`; rejects (code `TSBERT_CHECKPOINT`),
    /// leaving the model unchanged, if it is not one of this model.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn load_state(&self, bytes: Buffer) -> AsyncTask<CoreTask<()>> {
        let (trainer, bytes) = (Arc::clone(&self.trainer), bytes.to_vec());
        CoreTask::spawn(move || lock(&trainer)?.load_state(&bytes))
    }

    /// Encoder output, all MLM and NSP logits and both losses of a `Batch`, dropout off, no
    /// update.
    #[napi(ts_args_type = "batch: object", ts_return_type = "Promise<EvaluationJs>")]
    pub fn evaluate(&self, batch: Object) -> AsyncTask<CoreTask<EvaluationJs>> {
        let (trainer, batch) = (Arc::clone(&self.trainer), read_batch(&batch));
        CoreTask::spawn(move || {
            let out = lock(&trainer)?.evaluate(&batch?)?;
            Ok(EvaluationJs {
                encoded: F32Values(to_f32(&out.encoded)?),
                mlm_logits: F32Values(to_f32(&out.mlm_logits)?),
                nsp_logits: F32Values(to_f32(&out.nsp_logits)?),
                mlm_loss: out.losses.mlm,
                nsp_loss: out.losses.nsp,
            })
        })
    }

    /// The contextual embedding of every token of a `Sequences` object (`batchSize`,
    /// `seqLen`, `tokens`, `segments`, `validLens`), dropout off: `batchSize × seqLen × hidden`
    /// values.
    #[napi(ts_args_type = "sequences: object", ts_return_type = "Promise<Float32Array>")]
    pub fn encode(&self, sequences: Object) -> AsyncTask<CoreTask<F32Values>> {
        let (trainer, sequences) = (Arc::clone(&self.trainer), read_sequences(&sequences));
        CoreTask::spawn(move || encoded(&trainer, sequences))
    }

    /// `encode` run now, the JS thread waiting: for inputs so small that handing them to a
    /// worker thread and back costs more than the pass itself.
    #[napi(ts_args_type = "sequences: object", ts_return_type = "Float32Array")]
    pub fn encode_now(&self, env: Env, sequences: Object) -> napi::Result<F32Values> {
        let sequences = read_sequences(&sequences);
        run_on_compute_threads(|| encoded(&self.trainer, sequences)).or_throw(&env)
    }

    /// The weights as the bytes of a safetensors file, named as `naming` says (`'tsbert'`, or
    /// `'huggingface'`: a `BertForPreTraining`'s names, a `BertModel`'s without heads).
    #[napi(ts_args_type = "naming: 'tsbert' | 'huggingface'", ts_return_type = "Promise<Buffer>")]
    pub fn save_weights(&self, naming: String) -> AsyncTask<CoreTask<Buffer>> {
        let trainer = Arc::clone(&self.trainer);
        let config = self.config.clone();
        CoreTask::spawn(move || {
            let naming = naming_of(&naming, &config, None)?;
            Ok(Buffer::from(lock(&trainer)?.save_weights(&naming)?))
        })
    }

    /// Replaces the weights with those of a safetensors file's bytes, named as `naming` says.
    /// Rejects, leaving the model unchanged, if they are corrupt or not this model's parameters.
    #[napi(ts_args_type = "bytes: Buffer, naming: 'tsbert' | 'huggingface'", ts_return_type = "Promise<void>")]
    pub fn load_weights(&self, bytes: Buffer, naming: String) -> AsyncTask<CoreTask<()>> {
        let (trainer, bytes, config) = (Arc::clone(&self.trainer), bytes.to_vec(), self.config.clone());
        CoreTask::spawn(move || {
            let naming = naming_of(&naming, &config, Some(&bytes))?;
            lock(&trainer)?.load_weights(&bytes, &naming)
        })
    }

    /// One vector a sequence of a `Sequences` object, dropout off: `batchSize × hidden` values,
    /// the mean over each sequence's real tokens (`'mean'`) or its first token's (`'cls'`),
    /// L2-normalised when `normalize`.
    #[napi(
        ts_args_type = "sequences: object, pooling: 'mean' | 'cls', normalize: boolean",
        ts_return_type = "Promise<Float32Array>"
    )]
    pub fn encode_pooled(&self, sequences: Object, pooling: String, normalize: bool) -> AsyncTask<CoreTask<F32Values>> {
        let (trainer, sequences) = (Arc::clone(&self.trainer), read_sequences(&sequences));
        CoreTask::spawn(move || {
            let pooling = match pooling.as_str() {
                "mean" => Pooling::Mean,
                "cls" => Pooling::Cls,
                other => return Err(InputError::range("pooling", format!("'{other}' is not 'mean' or 'cls'")).into()),
            };
            let pooled = lock(&trainer)?.encode_pooled(&sequences?, pooling, normalize)?;
            Ok(F32Values(to_f32(&pooled)?))
        })
    }

    /// The MLM logits, dropout off, at `positions` (pairs of row and position, flat) of a
    /// `Sequences` object: `positions.length / 2 × vocabSize` values.
    #[napi(ts_args_type = "sequences: object, positions: Int32Array", ts_return_type = "Promise<Float32Array>")]
    pub fn masked_logits(&self, sequences: Object, positions: Int32Array) -> AsyncTask<CoreTask<F32Values>> {
        let (trainer, sequences) = (Arc::clone(&self.trainer), read_sequences(&sequences));
        let pairs: Result<Vec<(usize, usize)>, InputError> = positions
            .chunks(2)
            .enumerate()
            .map(|(i, pair)| match pair {
                &[r, p] if r >= 0 && p >= 0 => Ok((r as usize, p as usize)),
                _ => Err(InputError::range(format!("positions[{i}]"), "expected a pair of non-negative integers")),
            })
            .collect();
        CoreTask::spawn(move || {
            let logits = lock(&trainer)?.masked_logits(&sequences?, &pairs?)?;
            Ok(F32Values(to_f32(&logits)?))
        })
    }
}

/// The naming of a weights file: `'tsbert'`; or `'huggingface'`, as the names in `bytes` say
/// when reading one, as the config's heads say when writing one.
pub(crate) fn naming_of(kind: &str, config: &BertConfig, bytes: Option<&[u8]>) -> tsbert_core::Result<Naming> {
    match (kind, bytes) {
        ("tsbert", _) => Ok(Naming::Tsbert),
        ("huggingface", Some(bytes)) => {
            let stored = checkpoint::stored_names(bytes)?;
            Ok(Naming::HuggingFace(HfNames::detect(stored.iter().map(String::as_str), config)))
        }
        ("huggingface", None) => Ok(Naming::HuggingFace(hf::config_to_hf(config)?.1)),
        (other, _) => Err(InputError::range("naming", format!("'{other}' is not 'tsbert' or 'huggingface'")).into()),
    }
}
