//! `NativeBert`: one model — its weights on its devices — and, once it trains, its training
//! state, owned by a JavaScript object. Each user call crosses here once.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use napi::bindgen_prelude::{AsyncTask, Buffer, Int32Array, Object, ObjectFinalize, Unknown};
use napi::{Env, Status, Task, ValueType};
use napi_derive::napi;
use tsbert_core::adam::AdamConfig;
use tsbert_core::batch::Sequences;
use tsbert_core::config::{TaskHead, TaskKind};
use tsbert_core::error::InputError;
use tsbert_core::hf::{self, HfNames};
use tsbert_core::ops::quantized::CpuKernel;
use tsbert_core::pooling::{self, EmbedOptions, Pooling};
use tsbert_core::weights::{Naming, WeightsFile};
use tsbert_core::{memory, BertConfig, Error, ModelHandle, ModelOptions, Trainer, TrainerOptions};

use crate::errors::{js_error, OrThrow};
use crate::inputs::{read_batch, read_batches, read_config, read_options, read_sequences, read_task_parts};
use crate::outputs::{EvaluationJs, F32Values, Json, StepLossesJs};
use crate::tasks::{run_on_compute_threads, CoreTask, NowOrLater};
use crate::tokenizer::NativeTokenizer;

/// The largest encode run on the JS thread, in multiply-adds (~2 ms on one core; the textbook
/// model on one sequence of 64 tokens is 17 M): handing a smaller one to a worker thread and
/// back costs more than the pass.
const INLINE_PASS_MACS: u128 = 32_000_000;

/// The model and what training adds to it, made when first needed (a model loaded to encode
/// never holds an optimizer).
struct Loaded {
    model: ModelHandle,
    trainer: Option<Trainer>,
    /// How the trainer is made (its learning rate follows `setLr` until then).
    training: TrainerOptions,
}

impl Loaded {
    /// The model and its trainer, made now if it is not yet.
    fn training(&mut self) -> tsbert_core::Result<(&ModelHandle, &mut Trainer)> {
        if self.trainer.is_none() {
            self.trainer = Some(Trainer::new(&self.model, &self.training)?);
        }
        Ok((&self.model, self.trainer.as_mut().expect("made above")))
    }
}

/// A BERT model on one device or data-parallel over several (one replica each, gradients
/// summed, one identical Adam step). Training, encoding and the weights' (de)serialisation run
/// off the JS thread; calls on one model are serialised. V8 is told how much host memory the
/// model holds, so that the garbage collector weighs it; `dispose` frees it at once.
#[napi(custom_finalize)]
pub struct NativeBert {
    inner: Arc<Mutex<Option<Loaded>>>,
    config: BertConfig,
    /// Bytes reported to V8 as held by this object (0 once disposed).
    accounted: AtomicI64,
}

/// The model behind its lock, checked not to be disposed.
struct Locked<'a>(MutexGuard<'a, Option<Loaded>>);

impl Deref for Locked<'_> {
    type Target = Loaded;
    fn deref(&self) -> &Loaded {
        self.0.as_ref().expect("checked by lock")
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Loaded {
        self.0.as_mut().expect("checked by lock")
    }
}

fn lock(inner: &Mutex<Option<Loaded>>) -> tsbert_core::Result<Locked<'_>> {
    let guard =
        inner.lock().map_err(|_| Error::Internal("this model is unusable after an earlier internal error".into()))?;
    if guard.is_none() {
        return Err(Error::Internal("this model was disposed".into()));
    }
    Ok(Locked(guard))
}

/// Runs `work` on the model on the compute threads, its lock taken first, here: a compute thread
/// never waits for a model (see `tasks`).
fn with_model<T: Send>(
    inner: &Mutex<Option<Loaded>>,
    work: impl FnOnce(&mut Loaded) -> tsbert_core::Result<T> + Send,
) -> tsbert_core::Result<T> {
    let mut locked = lock(inner)?;
    let loaded: &mut Loaded = &mut locked;
    run_on_compute_threads(|| work(loaded))
}

/// The encoder output of `sequences` (as read from JavaScript) as JavaScript values.
fn encoded(inner: &Mutex<Option<Loaded>>, sequences: Result<Sequences, InputError>) -> tsbert_core::Result<F32Values> {
    let sequences = sequences?;
    with_model(inner, |loaded| Ok(F32Values(to_f32(&loaded.model.encode(&sequences)?)?)))
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

/// Bytes to report to V8 for `bytes` of host memory.
fn external(bytes: u128) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// The files a model folder's weights and config came from (the weights are read from there;
/// the config's path is for messages), and the size of its tokenizer's vocabulary.
#[napi(object)]
pub struct ModelFilesJs {
    /// The config's path.
    pub config_path: String,
    /// The weights' path: a safetensors file.
    pub weights_path: String,
    /// Token ids the folder's tokenizer makes: the embeddings must have as many rows.
    pub tokenizer_size: u32,
}

/// A task head to put on a loaded model (see `NativeBert.load`).
#[napi(object)]
pub struct TaskHeadJs {
    /// `'single_label_classification'`, `'multi_label_classification'`, `'regression'` or
    /// `'token_classification'`.
    pub kind: String,
    /// Its outputs.
    pub num_labels: u32,
}

impl TaskHeadJs {
    /// The core's task head; an unknown kind or no labels is a `RangeError` naming `task`.
    fn read(&self) -> Result<TaskHead, InputError> {
        let kind: TaskKind = serde_json::from_value(serde_json::Value::String(self.kind.clone())).map_err(|_| {
            InputError::range(
                "task.kind",
                format!(
                    "expected 'single_label_classification', 'multi_label_classification', 'regression' or 'token_classification', got '{}'",
                    self.kind
                ),
            )
        })?;
        if self.num_labels == 0 {
            return Err(InputError::range("task.numLabels", "a head needs at least one label"));
        }
        Ok(TaskHead { kind, num_labels: self.num_labels as usize })
    }
}

/// The config of a model of `stored` under the task head `task`: its pretraining heads
/// dropped, a pooler for a sequence's head (none for a token's, as Hugging Face's
/// `BertForTokenClassification` has none). A model that has another task head already is a
/// `RangeError` saying which.
fn under_head(stored: &BertConfig, task: &TaskHead) -> Result<BertConfig, InputError> {
    if let Some(have) = &stored.task {
        let name = |t: &TaskHead| {
            format!("a {} head with {} label(s)", serde_json::to_value(t.kind).unwrap_or_default(), t.num_labels)
        };
        return Err(InputError::range(
            "task",
            format!(
                "the model has {} already, not {}: fine-tune a model without a task head, or keep its head",
                name(have),
                name(task)
            ),
        ));
    }
    Ok(BertConfig {
        mlm_head: false,
        nsp_head: false,
        pooler: Some(task.kind.reads_pooler()),
        task: Some(task.clone()),
        ..stored.clone()
    })
}

/// Where a loaded model's config comes from.
enum ConfigSource {
    /// tsbert's manifest: the config itself.
    Tsbert(BertConfig),
    /// A Hugging Face `config.json`'s text (the weights' names say which heads there are).
    HuggingFace(String),
}

/// Loading a model folder off the JS thread: its config and weights checked against each
/// other, the model built and its weights set, every failure a checkpoint error naming the
/// file at fault.
pub struct LoadTask {
    config: ConfigSource,
    files: ModelFilesJs,
    options: ModelOptions,
    training: TrainerOptions,
    /// The task head to put on the model, when it has not that one.
    head: Option<TaskHead>,
    /// The dropout of every layer from now on, instead of the config's.
    dropout: Option<f64>,
    /// How the model holds its encoder's dense weights.
    hold: Hold,
    failure: Option<Error>,
}

/// How a loaded model holds its encoder's dense weights.
#[derive(Debug, Clone, Copy)]
enum Hold {
    /// As its f32 parameters.
    F32,
    /// In int8 only ([`ModelHandle::from_weights_q8`]).
    Q8,
    /// As its f32 inference pass reads them ([`ModelHandle::from_weights_to_infer`]).
    ToInfer,
}

impl LoadTask {
    fn load(&self) -> tsbert_core::Result<NativeBert> {
        let files = &self.files;
        let config_err = |e: Error| Error::Checkpoint(format!("'{}': {e}", files.config_path));
        let weights_err = |e: Error| Error::Checkpoint(format!("weights file '{}': {e}", files.weights_path));
        let file = WeightsFile::open(Path::new(&files.weights_path)).map_err(weights_err)?;
        let stored = file.names();
        let (config, naming) = match &self.config {
            ConfigSource::Tsbert(config) => (config.clone(), Naming::Tsbert),
            ConfigSource::HuggingFace(json) => {
                let config = hf::config_from_hf(json, &stored).map_err(config_err)?;
                if files.tokenizer_size as usize > config.vocab_size {
                    return Err(config_err(Error::Checkpoint(format!(
                        "the tokenizer has {} tokens but the embeddings only {} (vocab_size)",
                        files.tokenizer_size, config.vocab_size
                    ))));
                }
                let names = HfNames::detect(stored.iter().map(String::as_str), &config);
                (config, Naming::HuggingFace(names))
            }
        };
        // the weights' names and shapes against the config, before anything of that size exists
        file.check_fits(&config, &naming).map_err(|e| match e {
            Error::Input(_) => config_err(e),
            _ => weights_err(e),
        })?;
        let stored = config;
        let mut config = match &self.head {
            Some(head) if stored.task.as_ref() != Some(head) => under_head(&stored, head)?,
            _ => stored.clone(),
        };
        if let Some(p) = self.dropout {
            config = BertConfig { dropout: p, attention_dropout: None, classifier_dropout: None, ..config };
        }
        // the file's weights that the model has (all of them, but a new head's)
        let read = match self.hold {
            Hold::F32 => ModelHandle::from_weights,
            Hold::Q8 => ModelHandle::from_weights_q8,
            Hold::ToInfer => ModelHandle::from_weights_to_infer,
        };
        let model = read(config.clone(), &self.options, &file, &stored, &naming).map_err(|e| match e {
            Error::Input(ref input) if input.field == "dtype" => e, // q8 on a GPU: the option's fault
            Error::Input(_) => config_err(e),
            _ => weights_err(e),
        })?;
        // what it holds (in q8, the int8 weights instead of the f32 ones) and its first pass adds
        let bytes = model.footprint_bytes();
        let loaded = Loaded { model, trainer: None, training: self.training.clone() };
        Ok(NativeBert { inner: Arc::new(Mutex::new(Some(loaded))), config, accounted: AtomicI64::new(external(bytes)) })
    }
}

impl Task for LoadTask {
    type Output = NativeBert;
    type JsValue = NativeBert;

    fn compute(&mut self) -> napi::Result<NativeBert> {
        run_on_compute_threads(|| self.load()).map_err(|e| {
            let message = e.to_string();
            self.failure = Some(e);
            napi::Error::new(Status::GenericFailure, message)
        })
    }

    fn resolve(&mut self, env: Env, model: NativeBert) -> napi::Result<NativeBert> {
        env.adjust_external_memory(model.accounted.load(Ordering::Relaxed))?;
        Ok(model)
    }

    fn reject(&mut self, env: Env, err: napi::Error) -> napi::Result<NativeBert> {
        Err(self.failure.take().map_or(err, |f| js_error(&env, f)))
    }
}

/// A model's weights as a file's bytes, and, in Hugging Face's format, its `config.json`.
#[napi(object, object_from_js = false)]
pub struct SavedJs {
    /// The safetensors file's bytes.
    pub weights: Buffer,
    /// Hugging Face's `config.json` (as an object) when saved in that format.
    pub hf_config: Option<serde_json::Value>,
}

/// How `embed` makes one vector a text (see `tsbert_core::pooling::EmbedOptions`).
#[napi(object)]
pub struct EmbedOptionsJs {
    /// Tokens a text may have, special tokens included.
    pub max_length: u32,
    /// Cut longer texts, or refuse them.
    pub truncate: bool,
    /// sentence-transformers' pooling modes (`'mean'`, `'cls'`, `'max'`,
    /// `'mean_sqrt_len_tokens'`, `'weightedmean'`, `'lasttoken'`), their vectors side by side.
    pub pooling: Vec<String>,
    /// Divide each vector by its L2 norm.
    pub normalize: bool,
    /// Texts a pass.
    pub batch_size: u32,
}

#[napi]
impl NativeBert {
    /// Creates a freshly initialised model to train; the same config and seed give
    /// bit-identical weights. Throws a `TypeError` or `RangeError` naming a bad size or option
    /// (sizes whose model, with its gradients and Adam state, would not fit in `memoryLimit`
    /// included).
    #[napi(constructor, ts_args_type = "config: object, options: TrainerOptionsJs")]
    pub fn new(env: Env, config: Object, options: Object) -> napi::Result<Self> {
        let build = || -> tsbert_core::Result<Self> {
            let config = read_config(&config)?;
            let (options, training) = read_options(&options)?;
            config.validate()?;
            Trainer::check_fits(&config, options.replicas_on_cpu(), options.host_limit())?;
            let model = ModelHandle::new(config.clone(), &options)?;
            let bytes = external(model.replicas_on_cpu() as u128 * memory::trainable_bytes(&config)?);
            let loaded = Loaded { model, trainer: None, training };
            Ok(Self { inner: Arc::new(Mutex::new(Some(loaded))), config, accounted: AtomicI64::new(bytes) })
        };
        let model = build().or_throw(&env)?;
        env.adjust_external_memory(model.accounted.load(Ordering::Relaxed))?;
        Ok(model)
    }

    /// Loads a model from a folder's config — tsbert's (an object) or a Hugging Face
    /// `config.json`'s text — and its weights (the safetensors file at `files.weightsPath`, read
    /// a tensor at a time) in one call: checked against each other before anything of their
    /// size is allocated, built, filled. Rejects
    /// (code `TSBERT_CHECKPOINT`) naming the file at fault; throws a `TypeError` or `RangeError`
    /// for bad `options`. With `head`, a model without that task head gets it (seeded, Hugging
    /// Face's initialisation) and loses its pretraining heads: a pretrained encoder to fine-tune.
    /// With `dropout`, every dropout (hidden, attention, classifier) is that probability. With
    /// `hold` `'q8'`, the model runs in q8 from the start and holds its encoder's dense
    /// weights in int8 only, each quantised as it is read; `'infer'`, in f32 as its inference
    /// pass reads them, where that is not the parameters' layout (AVX-512, AVX2: packed in panels).
    /// Either cannot train or be saved.
    #[napi(
        ts_args_type = "config: object | string, files: ModelFilesJs, options: TrainerOptionsJs, head?: TaskHeadJs, dropout?: number, hold?: 'f32' | 'q8' | 'infer'",
        ts_return_type = "Promise<NativeBert>"
    )]
    pub fn load(
        env: Env,
        config: Unknown,
        files: ModelFilesJs,
        options: Object,
        head: Option<TaskHeadJs>,
        dropout: Option<f64>,
        hold: Option<String>,
    ) -> napi::Result<AsyncTask<LoadTask>> {
        let hold = match hold.as_deref() {
            None | Some("f32") => Hold::F32,
            Some("q8") => Hold::Q8,
            Some("infer") => Hold::ToInfer,
            Some(other) => {
                let message = format!("expected 'f32', 'q8' or 'infer', got '{other}'");
                return Err(tsbert_core::Error::from(InputError::range("hold", message))).or_throw(&env);
            }
        };
        let head = head.as_ref().map(TaskHeadJs::read).transpose().map_err(tsbert_core::Error::from).or_throw(&env)?;
        let read = || -> tsbert_core::Result<(ConfigSource, ModelOptions, TrainerOptions)> {
            let (options, training) = read_options(&options)?;
            let wrong = |e: napi::Error| InputError::type_error("config", e.reason.clone());
            let source = match config.get_type().map_err(wrong)? {
                // SAFETY (both casts): the value's type was checked just before.
                ValueType::String => ConfigSource::HuggingFace(unsafe { config.cast::<String>() }.map_err(wrong)?),
                ValueType::Object => {
                    let object: Object = unsafe { config.cast() }.map_err(wrong)?;
                    let config =
                        read_config(&object).map_err(|e| Error::Checkpoint(format!("'{}': {e}", files.config_path)))?;
                    ConfigSource::Tsbert(config)
                }
                _ => return Err(InputError::type_error("config", "expected a config object or JSON text").into()),
            };
            Ok((source, options, training))
        };
        let (config, options, training) = read().or_throw(&env)?;
        Ok(AsyncTask::new(LoadTask { config, files, options, training, head, dropout, hold, failure: None }))
    }

    /// Frees the model's memory now instead of when the garbage collector gets to it; every
    /// later call fails. Throws while a call is in flight (await it first); disposing twice
    /// does nothing.
    #[napi]
    pub fn dispose(&self, env: Env) -> napi::Result<()> {
        let mut guard = match self.inner.try_lock() {
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

    /// The model's full configuration (the TypeScript `BertConfig`).
    #[napi(getter, ts_return_type = "object")]
    pub fn config(&self) -> serde_json::Value {
        crate::outputs::config_json(&self.config)
    }

    /// Adam updates taken so far.
    #[napi(getter)]
    pub fn steps_taken(&self, env: Env) -> napi::Result<f64> {
        let steps = lock(&self.inner).or_throw(&env)?.trainer.as_ref().map_or(0, Trainer::steps_taken);
        Ok(steps as f64)
    }

    /// Number of trainable scalars.
    #[napi(getter)]
    pub fn param_count(&self, env: Env) -> napi::Result<f64> {
        Ok(lock(&self.inner).or_throw(&env)?.model.params().count() as f64)
    }

    /// Bytes of host memory the model's weights take, as V8 is told: its f32 parameters (every
    /// CPU replica's), or, loaded in q8, its int8 weights instead of the f32 ones they replace;
    /// and the copy of the dense layers its inference pass keeps (int8 after `quantize`; f32 on
    /// a CPU with no dot kernel). 0 once disposed.
    #[napi(getter)]
    pub fn memory_footprint(&self) -> f64 {
        self.accounted.load(Ordering::Relaxed) as f64
    }

    /// One training step (forward, MLM + NSP loss, backward, Adam) on a `Batch`, or on an
    /// array of them with their gradients accumulated. Resolves to the losses before the
    /// update; rejects with a `TypeError` or `RangeError` naming the first invalid field.
    #[napi(ts_args_type = "batch: object | object[]", ts_return_type = "Promise<StepLossesJs>")]
    pub fn train_step(&self, batch: Unknown) -> AsyncTask<CoreTask<StepLossesJs>> {
        let (inner, batches) = (Arc::clone(&self.inner), read_batches(batch));
        CoreTask::spawn(move || {
            let batches = batches?;
            with_model(&inner, |loaded| {
                let (model, trainer) = loaded.training()?;
                let losses = trainer.train_step_accumulated(model, &batches)?;
                Ok(StepLossesJs { mlm_loss: losses.mlm, nsp_loss: losses.nsp })
            })
        })
    }

    /// One training step of the task head (forward, its loss, backward, Adam) on a `Sequences`
    /// object and its labels — or on arrays of each, their gradients accumulated: `kind`
    /// `'classes'` (an `Int32Array`, a class a sequence), `'multi'` (a `Float32Array` of 0/1,
    /// `batchSize × numLabels`), `'values'` (a `Float32Array`, `batchSize × numLabels`) or
    /// `'tokens'` (an `Int32Array`, a class or -100 a token, `batchSize × seqLen`). Resolves to
    /// the loss before the update; rejects with a `TypeError` or `RangeError` naming what does
    /// not fit the head.
    #[napi(
        ts_args_type = "sequences: object | object[], kind: 'classes' | 'multi' | 'values' | 'tokens', labels: Int32Array | Float32Array | (Int32Array | Float32Array)[]",
        ts_return_type = "Promise<number>"
    )]
    pub fn train_task_step(&self, sequences: Unknown, kind: String, labels: Unknown) -> AsyncTask<CoreTask<f64>> {
        let (inner, parts) = (Arc::clone(&self.inner), read_task_parts(sequences, &kind, labels));
        CoreTask::spawn(move || {
            let parts = parts?;
            with_model(&inner, |loaded| {
                let (model, trainer) = loaded.training()?;
                trainer.train_task_step_accumulated(model, &parts)
            })
        })
    }

    /// Switches the inference passes to int8 products (the weights stay f32; the model can no
    /// longer train): returns the kernel's name (`avx512-vnni`, `neon-dot`, `avx2` or
    /// `portable`). A `RangeError` for a model not in f32 on the CPU.
    #[napi]
    pub fn quantize(&self, env: Env) -> napi::Result<String> {
        let run = || -> tsbert_core::Result<(String, i64)> {
            let locked = lock(&self.inner)?;
            let kernel = locked.model.quantize()?.name().to_string();
            // with the int8 copy that its next pass makes beside the f32 weights
            Ok((kernel, external(locked.model.footprint_bytes())))
        };
        let (kernel, bytes) = run().or_throw(&env)?;
        let before = self.accounted.swap(bytes, Ordering::Relaxed);
        if bytes != before {
            env.adjust_external_memory(bytes - before)?;
        }
        Ok(kernel)
    }

    /// Checks a learning rate as Adam takes it (a `RangeError` naming `lr` otherwise), on no
    /// model: what `setLr` checks first.
    #[napi]
    pub fn check_lr(env: Env, lr: f64) -> napi::Result<()> {
        let checked: tsbert_core::Result<()> =
            AdamConfig { lr, ..AdamConfig::default() }.validate().map_err(Into::into);
        checked.or_throw(&env)
    }

    /// The learning rate of the next steps (a schedule's value): a positive number, as Adam
    /// takes it (a `RangeError` otherwise).
    #[napi]
    pub fn set_lr(&self, env: Env, lr: f64) -> napi::Result<()> {
        let run = || -> tsbert_core::Result<()> {
            let mut locked = lock(&self.inner)?;
            let adam = AdamConfig { lr, ..locked.training.adam };
            adam.validate()?;
            locked.training.adam = adam;
            if let Some(trainer) = &mut locked.trainer {
                trainer.set_lr(lr)?;
            }
            Ok(())
        };
        run().or_throw(&env)
    }

    /// Held-out metrics of `Batch`es together, dropout off: MLM and NSP loss and accuracy, the
    /// means over all their predictions and rows (the TypeScript `EvalMetrics`).
    #[napi(ts_args_type = "batches: object[]", ts_return_type = "Promise<object>")]
    pub fn evaluate(&self, batches: Unknown) -> AsyncTask<CoreTask<Json>> {
        let (inner, batches) = (Arc::clone(&self.inner), read_batches(batches));
        CoreTask::spawn(move || {
            let batches = batches?;
            let metrics = with_model(&inner, |loaded| loaded.model.evaluate(&batches))?;
            Ok(Json(serde_json::to_value(metrics).expect("numbers serialise")))
        })
    }

    /// The optimizer's state (both moments, the step count, the dropout streams) as a
    /// safetensors file's bytes: what resuming a run needs besides the weights.
    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn save_state(&self) -> AsyncTask<CoreTask<Buffer>> {
        let inner = Arc::clone(&self.inner);
        CoreTask::spawn(move || {
            let state = with_model(&inner, |loaded| loaded.training()?.1.save_state())?;
            Ok(Buffer::from(state))
        })
    }

    /// Takes back an optimizer state written by `saveState`; rejects (code `TSBERT_CHECKPOINT`),
    /// leaving the model unchanged, if it is not one of this model.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn load_state(&self, bytes: Buffer) -> AsyncTask<CoreTask<()>> {
        let inner = Arc::clone(&self.inner);
        CoreTask::spawn(move || with_model(&inner, |loaded| loaded.training()?.1.load_state(&bytes)))
    }

    /// The forward pass of a `Batch`, dropout off, no update: the encoder output, all MLM and
    /// NSP logits and both losses.
    #[napi(ts_args_type = "batch: object", ts_return_type = "Promise<EvaluationJs>")]
    pub fn forward(&self, batch: Object) -> AsyncTask<CoreTask<EvaluationJs>> {
        let (inner, batch) = (Arc::clone(&self.inner), read_batch(&batch));
        CoreTask::spawn(move || {
            let batch = batch?;
            let out = with_model(&inner, |loaded| loaded.model.forward(&batch))?;
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
    /// values. An encode so small that handing it to a worker thread and back would cost more
    /// than the pass (on the CPU, at most `INLINE_PASS_MACS`) runs now, the JS thread waiting,
    /// and returns the values; a larger one returns a promise.
    #[napi(ts_args_type = "sequences: object", ts_return_type = "Float32Array | Promise<Float32Array>")]
    pub fn encode(&self, env: Env, sequences: Object) -> napi::Result<NowOrLater<F32Values>> {
        let sequences = read_sequences(&sequences);
        let small = match (&sequences, self.inner.try_lock()) {
            (Ok(s), Ok(guard)) => {
                guard.as_ref().is_some_and(|l| l.model.encodes_within(s.batch_size, s.seq_len, INLINE_PASS_MACS))
            }
            _ => false,
        };
        if small {
            return encoded(&self.inner, sequences).map(NowOrLater::Now).or_throw(&env);
        }
        let inner = Arc::clone(&self.inner);
        Ok(NowOrLater::Later(CoreTask::spawn(move || encoded(&inner, sequences))))
    }

    /// The weights as a safetensors file's bytes in `format` (`'tsbert'`, or `'huggingface'`:
    /// a `BertForPreTraining`'s names, a `BertModel`'s without heads, with the `config.json`
    /// transformers reads). Rejects (code `TSBERT_CHECKPOINT`) saying what Hugging Face's BERT
    /// cannot express, or which weights are not finite.
    #[napi(ts_args_type = "format: 'tsbert' | 'huggingface'", ts_return_type = "Promise<SavedJs>")]
    pub fn save(&self, format: String) -> AsyncTask<CoreTask<SavedJs>> {
        let inner = Arc::clone(&self.inner);
        let config = self.config.clone();
        CoreTask::spawn(move || {
            let (naming, hf_config) = match format.as_str() {
                "tsbert" => (Naming::Tsbert, None),
                "huggingface" => {
                    let (json, names) = hf::config_to_hf(&config)?;
                    (Naming::HuggingFace(names), Some(json))
                }
                other => {
                    return Err(
                        InputError::range("format", format!("'{other}' is not 'tsbert' or 'huggingface'")).into()
                    )
                }
            };
            let weights = with_model(&inner, |loaded| loaded.model.save_weights(&naming))?;
            Ok(SavedJs { weights: Buffer::from(weights), hf_config })
        })
    }

    /// One vector a text, from the texts to the vectors in one call (see
    /// `tsbert_core::pooling::embed`): `texts.length × pooling.length × hidden` values in the
    /// order given.
    #[napi(ts_return_type = "Promise<Float32Array>")]
    pub fn embed(
        &self,
        tokenizer: &NativeTokenizer,
        texts: Vec<String>,
        options: EmbedOptionsJs,
    ) -> AsyncTask<CoreTask<F32Values>> {
        let (inner, tokenizer) = (Arc::clone(&self.inner), tokenizer.held());
        CoreTask::spawn(move || {
            let pooling = options
                .pooling
                .iter()
                .map(|name| {
                    Pooling::from_name(name).ok_or_else(|| {
                        InputError::range("pooling", format!("'{name}' is not a sentence-transformers pooling mode"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let options = EmbedOptions {
                max_length: options.max_length as usize,
                truncate: options.truncate,
                pooling,
                normalize: options.normalize,
                batch_size: options.batch_size as usize,
            };
            let tokenizer = tokenizer.tokenizer()?;
            Ok(F32Values(with_model(&inner, |loaded| pooling::embed(&loaded.model, &tokenizer, texts, &options))?))
        })
    }

    /// The task head's outputs, dropout off, of a `Sequences` object: `batchSize × numLabels`
    /// values for a sequence's head, `batchSize × seqLen × numLabels` for a token classifier.
    #[napi(ts_args_type = "sequences: object", ts_return_type = "Promise<Float32Array>")]
    pub fn task_logits(&self, sequences: Object) -> AsyncTask<CoreTask<F32Values>> {
        let (inner, sequences) = (Arc::clone(&self.inner), read_sequences(&sequences));
        CoreTask::spawn(move || {
            let sequences = sequences?;
            Ok(F32Values(to_f32(&with_model(&inner, |loaded| loaded.model.task_logits(&sequences))?)?))
        })
    }

    /// The MLM logits, dropout off, at `positions` (pairs of row and position, flat) of a
    /// `Sequences` object: `positions.length / 2 × vocabSize` values.
    #[napi(ts_args_type = "sequences: object, positions: Int32Array", ts_return_type = "Promise<Float32Array>")]
    pub fn masked_logits(&self, sequences: Object, positions: Int32Array) -> AsyncTask<CoreTask<F32Values>> {
        let (inner, sequences) = (Arc::clone(&self.inner), read_sequences(&sequences));
        let pairs: Result<Vec<(usize, usize)>, InputError> = positions
            .chunks(2)
            .enumerate()
            .map(|(i, pair)| match pair {
                &[r, p] if r >= 0 && p >= 0 => Ok((r as usize, p as usize)),
                _ => Err(InputError::range(format!("positions[{i}]"), "expected a pair of non-negative integers")),
            })
            .collect();
        CoreTask::spawn(move || {
            let (sequences, pairs) = (sequences?, pairs?);
            let logits = with_model(&inner, |loaded| loaded.model.masked_logits(&sequences, &pairs))?;
            Ok(F32Values(to_f32(&logits)?))
        })
    }
}

impl NativeBert {
    /// Runs `f` on the model and its trainer, if it has one yet (for the diagnostics).
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&ModelHandle, Option<&Trainer>) -> tsbert_core::Result<T>,
    ) -> tsbert_core::Result<T> {
        let locked = lock(&self.inner)?;
        f(&locked.model, locked.trainer.as_ref())
    }
}
