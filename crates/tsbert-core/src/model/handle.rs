//! [`ModelHandle`]: a BERT model placed on its devices (one replica a device, identical
//! weights) and the passes that run it with dropout off — encoding, pooling, MLM logits,
//! evaluation — and its weights in and out. What training adds (the optimizer, the dropout
//! streams, the gradients) lives apart, in [`crate::Trainer`], as candle keeps its modules
//! apart from its `Optimizer`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use crate::batch::{Batch, Sequences};
use crate::config::BertConfig;
use crate::error::{InputError, Result};
use crate::hf::HF_INITIALIZER_RANGE;
use crate::loss::{nsp_loss, weighted_mlm_loss, LossScale};
use crate::model::inference::{self, HeldForm, HeldWeights, PackedWeights, Padding, Precision};
use crate::model::{BertModel, Mode};
use crate::ops::attention::KeyMask;
use crate::ops::decoder_loss::Targets;
use crate::ops::dots::DotKernel;
use crate::ops::quantized::{CpuKernel, Kernel};
use crate::params::{note_weights_written, ParamStore};
use crate::pooling::{self, Pooling};
use crate::rng::SeededRng;
use crate::weights::{self, Naming, WeightsFile};
use crate::{allocator, memory};

/// Where and how a model is built.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// Seeds the initial weights.
    pub seed: u64,
    /// Element type of parameters and activations (F32; F64 for gradient checks).
    pub dtype: DType,
    /// One replica a device; several train data-parallel. Replica 0 serves encoding and reads.
    pub devices: Vec<Device>,
    /// Bytes of host memory the CPU replicas and a pass over a batch may take (see
    /// [`crate::memory`]); sizes that need more are refused before anything is allocated.
    /// `None`: no limit.
    pub memory_limit: Option<u64>,
}

impl ModelOptions {
    /// Replicas on the CPU (whose memory is the host's).
    pub fn replicas_on_cpu(&self) -> usize {
        self.devices.iter().filter(|d| d.is_cpu()).count()
    }

    /// The memory limit that applies: the host's, when a replica is on the CPU (GPU memory
    /// runs out with an error).
    pub fn host_limit(&self) -> Option<u64> {
        self.memory_limit.filter(|_| self.replicas_on_cpu() > 0)
    }
}

impl Default for ModelOptions {
    /// Seed 0, f32 on the CPU, no memory limit.
    fn default() -> Self {
        Self { seed: 0, dtype: DType::F32, devices: vec![Device::Cpu], memory_limit: None }
    }
}

/// The two pretraining losses of a batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLosses {
    /// Weighted masked-language-model cross-entropy.
    pub mlm: f64,
    /// Mean next-sentence-prediction cross-entropy.
    pub nsp: f64,
}

/// Everything one forward pass (dropout off) of a pretraining batch computes.
#[derive(Debug)]
pub struct ForwardOutputs {
    /// `[B, L, hidden]` encoder output.
    pub encoded: Tensor,
    /// `[B, P, vocab]` MLM logits at every prediction, padded ones included.
    pub mlm_logits: Tensor,
    /// `[B, 2]` NSP logits.
    pub nsp_logits: Tensor,
    /// Both losses.
    pub losses: StepLosses,
}

/// Held-out measures of batches, dropout off, as sums (so that batches add up).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EvalSums {
    /// Σ weight · MLM cross-entropy over the real predictions.
    pub mlm_loss: f64,
    /// Σ weight of the real predictions.
    pub mlm_weight: f64,
    /// Σ weight of the predictions whose most probable token is the label.
    pub mlm_correct: f64,
    /// Σ NSP cross-entropy over the rows.
    pub nsp_loss: f64,
    /// Rows whose more probable NSP class is the label.
    pub nsp_correct: f64,
    /// Rows.
    pub rows: f64,
}

impl EvalSums {
    /// The sums of `self` and `other`.
    fn add(self, other: Self) -> Self {
        Self {
            mlm_loss: self.mlm_loss + other.mlm_loss,
            mlm_weight: self.mlm_weight + other.mlm_weight,
            mlm_correct: self.mlm_correct + other.mlm_correct,
            nsp_loss: self.nsp_loss + other.nsp_loss,
            nsp_correct: self.nsp_correct + other.nsp_correct,
            rows: self.rows + other.rows,
        }
    }

    /// The means the sums make.
    pub fn means(&self) -> EvalMetrics {
        EvalMetrics {
            mlm_loss: self.mlm_loss / self.mlm_weight,
            mlm_accuracy: self.mlm_correct / self.mlm_weight,
            nsp_loss: self.nsp_loss / self.rows,
            nsp_accuracy: self.nsp_correct / self.rows,
            examples: self.rows,
        }
    }
}

/// Held-out metrics: means over the predictions and rows of the batches evaluated (the
/// TypeScript `EvalMetrics`, whose names they serialise to).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvalMetrics {
    /// Mean MLM cross-entropy over the predictions.
    pub mlm_loss: f64,
    /// Share of the predictions whose most probable token is the original one.
    pub mlm_accuracy: f64,
    /// Mean NSP cross-entropy.
    pub nsp_loss: f64,
    /// Share of the rows whose NSP prediction is right.
    pub nsp_accuracy: f64,
    /// Rows evaluated.
    pub examples: f64,
}

/// Whether a model in `dtype` on `devices` is f32 on the CPU, where the inference pass runs
/// (see [`inference::runs_inference_pass`]) and so q8 and packed weights can.
fn f32_on_cpu(dtype: DType, devices: &[Device]) -> bool {
    dtype == DType::F32 && devices.iter().all(Device::is_cpu)
}

/// Refuses q8 for a model in `dtype` on `devices` unless it is f32 on the CPU
/// ([`f32_on_cpu`]).
fn check_q8_runs(dtype: DType, devices: &[Device]) -> Result<()> {
    if !f32_on_cpu(dtype, devices) {
        let message = format!("q8 runs on the CPU from an f32 model; this one is {dtype:?} on {devices:?}");
        return Err(InputError::range("dtype", message).into());
    }
    Ok(())
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// One copy of the model on one device: its weights and the architecture over them.
#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) params: ParamStore,
    pub(crate) model: BertModel,
    /// How the inference pass multiplies, and its copy of the dense layers.
    inference: Mutex<InferenceState>,
}

/// A replica's inference precision and the copy of its dense layers at that precision, made at
/// the first pass and again after the weights or the precision change.
#[derive(Debug)]
struct InferenceState {
    precision: Precision,
    packed: Option<Arc<PackedWeights>>,
}

impl Replica {
    /// A replica whose parameters named in `values` take those values, those named in
    /// `elsewhere` hold none ([`ParamStore::held_elsewhere`]), the others drawn.
    fn new(
        config: &BertConfig,
        options: &ModelOptions,
        device: &Device,
        (values, elsewhere): (HashMap<String, Tensor>, &HashMap<String, Vec<usize>>),
    ) -> Result<Self> {
        let mut params = ParamStore::new(options.seed, options.dtype, device.clone())
            .with_values(values)
            .held_elsewhere(elsewhere.clone());
        let model = BertModel::new(&mut params, config)?;
        let inference = Mutex::new(InferenceState { precision: Precision::F32, packed: None });
        Ok(Self { params, model, inference })
    }

    /// The current [`PackedWeights`] of the model, made anew if the weights changed.
    fn packed_weights(&self) -> Result<Arc<PackedWeights>> {
        let mut state = self.inference_state();
        match &state.packed {
            Some(current) if current.is_current(state.precision) => Ok(Arc::clone(current)),
            _ => {
                state.packed = None; // the old copy's memory goes before the new one is made
                let fresh = Arc::new(PackedWeights::of(&self.model, state.precision)?);
                state.packed = Some(Arc::clone(&fresh));
                Ok(fresh)
            }
        }
    }

    /// Bytes its parameters' values and, in `state` (its inference state, locked), the copies
    /// of its dense layers hold.
    fn held_bytes(&self, state: &InferenceState) -> usize {
        self.params.held_bytes() + state.packed.as_ref().map_or(0, |p| p.bytes())
    }

    /// The inference state, locked.
    fn inference_state(&self) -> std::sync::MutexGuard<'_, InferenceState> {
        self.inference.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The keys each row of `sequences` attends to.
    fn key_mask(&self, sequences: &Sequences) -> Result<KeyMask> {
        let like = Tensor::zeros((), self.params.dtype(), self.params.device())?;
        BertModel::key_mask(&sequences.valid_lens(), sequences.seq_len, &like)
    }

    /// The contextual embedding of every token of checked `sequences`: `[B, L, hidden]`. In
    /// eval mode on the CPU in f32, by the inference pass (no graph: nothing to differentiate),
    /// which gives the padding rows as `padding` says (the graph computes them).
    pub(crate) fn encode(&self, sequences: &Sequences, mode: &mut Mode, padding: Padding) -> Result<Tensor> {
        if matches!(mode, Mode::Eval) && inference::runs_inference_pass(&self.model) {
            let (tokens, segments) = sequences.ids();
            let packed = self.packed_weights()?;
            let values =
                inference::encode(&self.model, &packed, (&tokens, &segments), &sequences.valid_lens(), padding)?;
            let rows = sequences.batch_size * sequences.seq_len;
            let shape = (sequences.batch_size, sequences.seq_len, values.len() / rows.max(1));
            return Ok(Tensor::from_vec(values, shape, self.params.device())?);
        }
        let (tokens, segments) = sequences.id_tensors(self.params.device())?;
        self.model.encode(&tokens, &segments, &self.key_mask(sequences)?, mode)
    }

    /// Forward pass and both losses of a checked `batch`, divided by `scale`; padded
    /// predictions are left out. In training mode (dropout on) the MLM logits are computed a
    /// chunk at a time with their gradients.
    pub(crate) fn losses(&self, batch: &Batch, scale: LossScale, mode: &mut Mode) -> Result<(Tensor, Tensor)> {
        let device = self.params.device();
        let encoded = self.encode(&batch.sequences, mode, Padding::Computed)?;
        let targets = batch.mlm_targets(true, self.params.dtype(), device)?;
        let mlm = if targets.labels.elem_count() == 0 {
            Tensor::zeros((), self.params.dtype(), device)?
        } else if matches!(mode, Mode::Train(_)) {
            let scored = Targets { labels: &targets.labels, weights: &targets.weights, total: scale.mlm };
            self.model.mlm_loss(&encoded, &targets.flat_positions, scored)?
        } else {
            let logits = self.model.mlm_logits(&encoded, &targets.flat_positions)?;
            weighted_mlm_loss(&logits, &targets.labels, &targets.weights, scale.mlm)?
        };
        let nsp = nsp_loss(&self.model.nsp_logits(&encoded)?, &batch.nsp_tensor(device)?, scale.nsp)?;
        Ok((mlm, nsp))
    }
}

/// A BERT model on one device, or on several (identical replicas: same seed, same weights),
/// with the passes that run it dropout off. [`crate::Trainer`] trains it.
#[derive(Debug)]
pub struct ModelHandle {
    config: BertConfig,
    replicas: Vec<Replica>,
    /// The memory limit, when a replica is on the CPU (GPU memory runs out with an error).
    host_limit: Option<u64>,
}

impl ModelHandle {
    /// A freshly initialised model on each of `options.devices`: the same config and seed give
    /// bit-identical weights. Sizes that are out of range, or whose weights on the CPU would
    /// not fit in the memory limit, are refused before anything is allocated.
    pub fn new(config: BertConfig, options: &ModelOptions) -> Result<Self> {
        Self::check_sizes(&config, options)?;
        Self::with_values(config, options, HashMap::new(), &HashMap::new())
    }

    /// A model of `config` on each of `options.devices` holding the weights of a safetensors
    /// file's `bytes`, written for a model of `stored` (names by `naming`): the parameters both
    /// have come from the file, checked whole before the model is built (no weights drawn to be
    /// overwritten, and the file's tensors freed one by one as the model takes them); those
    /// the file lacks (a new task head, a pooler a bare encoder lacks) are drawn from
    /// `options.seed` as Hugging Face initialises them: N(0, 0.02²) weights, zero biases. The
    /// pretraining heads a model under a new head drops are not read.
    pub fn from_weights(
        config: BertConfig,
        options: &ModelOptions,
        file: &WeightsFile,
        stored: &BertConfig,
        naming: &Naming,
    ) -> Result<Self> {
        Self::read_weights(config, options, (file, stored, naming), None)
    }

    /// [`ModelHandle::from_weights`] for a model that runs in q8 from the start (see
    /// [`ModelHandle::quantize`]) and holds its encoder's dense weights and its token embedding
    /// table (unless a tied MLM decoder reads it) in int8 only: each is quantised as it is read
    /// and its f32 values freed ([`HeldWeights`]), so that the model takes about a quarter of
    /// those weights' f32 memory, at its peak as after. Such a model encodes, embeds and
    /// classifies; it cannot train, be saved, load other weights, have any weight set or those
    /// weights read (errors saying so). Only f32 models on the CPU run in q8.
    pub fn from_weights_q8(
        config: BertConfig,
        options: &ModelOptions,
        file: &WeightsFile,
        stored: &BertConfig,
        naming: &Naming,
    ) -> Result<Self> {
        check_q8_runs(options.dtype, &options.devices)?;
        // the f32 tensors freed as they are quantised leave the process at once
        allocator::releasing_freed_memory(|| {
            Self::read_weights(config, options, (file, stored, naming), Some(HeldForm::Q8(Kernel::detect())))
        })
    }

    /// [`ModelHandle::from_weights`] for a model that only infers, in f32: where this CPU has a
    /// product by packed panels ([`HeldForm::panels`]: AVX-512, AVX2), its encoder's dense
    /// weights are packed into them as they are read and held so only ([`HeldForm::Panels`]:
    /// the same memory and values, faster products), and the model, like one loaded in q8, cannot train, be saved,
    /// load other weights, have those weights set or read (errors saying so). Elsewhere, and
    /// for a model that is not f32 on the CPU, it is [`ModelHandle::from_weights`].
    pub fn from_weights_to_infer(
        config: BertConfig,
        options: &ModelOptions,
        file: &WeightsFile,
        stored: &BertConfig,
        naming: &Naming,
    ) -> Result<Self> {
        let form = HeldForm::panels().filter(|_| f32_on_cpu(options.dtype, &options.devices));
        allocator::releasing_freed_memory(|| Self::read_weights(config, options, (file, stored, naming), form))
    }

    /// [`ModelHandle::from_weights`], the encoder's dense weights held in `held`'s form only,
    /// converted as they are read, when it is given.
    fn read_weights(
        config: BertConfig,
        options: &ModelOptions,
        (file, stored, naming): (&WeightsFile, &BertConfig, &Naming),
        held: Option<HeldForm>,
    ) -> Result<Self> {
        Self::check_sizes(&config, options)?;
        let mut taker = held.map(|form| HeldWeights::new(&config, form)).transpose()?;
        let elsewhere = taker.as_ref().map(|taker| taker.shapes(&config)).transpose()?.unwrap_or_default();
        let mut values = HashMap::new();
        file.read_each((&config, options.dtype), stored, naming, |name, tensor| {
            let kept = match &mut taker {
                Some(taker) => taker.take(name, tensor)?,
                None => Some(tensor.read()?),
            };
            if let Some(t) = kept {
                values.insert(name.to_string(), t);
            }
            Ok(())
        })?;
        let mut from_file: std::collections::HashSet<String> = values.keys().cloned().collect();
        from_file.extend(elsewhere.keys().cloned());
        let model = Self::with_values(config, options, values, &elsewhere)?;
        let mut rng = SeededRng::new(options.seed);
        let mut drawn = HashMap::new();
        for (name, var) in model.params().iter() {
            if from_file.contains(name) {
                continue;
            }
            let value = if var.rank() > 1 {
                rng.normal(var.dims(), HF_INITIALIZER_RANGE, var.dtype(), &Device::Cpu)?
            } else {
                Tensor::zeros(var.dims(), var.dtype(), &Device::Cpu)?
            };
            drawn.insert(name.to_string(), value);
        }
        model.set_weights(&drawn)?;
        if let Some(taker) = taker {
            let packed = Arc::new(taker.into_packed(&model.replicas[0].model)?);
            for r in &model.replicas {
                *r.inference_state() =
                    InferenceState { precision: packed.precision(), packed: Some(Arc::clone(&packed)) };
            }
        }
        Ok(model)
    }

    /// Refuses sizes that are out of range, no device, or weights on the CPU that would not
    /// fit in the memory limit, before anything is allocated.
    fn check_sizes(config: &BertConfig, options: &ModelOptions) -> Result<()> {
        config.validate()?;
        if options.devices.is_empty() {
            return Err(InputError::range("device", "no device given").into());
        }
        let what = format!("a model of {} parameters", memory::param_count(config)?);
        let bytes = options.replicas_on_cpu() as u128 * memory::weights_bytes(config)?;
        Ok(memory::check_fits("config", &what, bytes, options.host_limit())?)
    }

    /// The replicas of a model of checked `config`, their parameters named in `values` with
    /// those values: the last replica takes the map itself, so that with one replica each
    /// value is freed as soon as its parameter holds a copy.
    fn with_values(
        config: BertConfig,
        options: &ModelOptions,
        values: HashMap<String, Tensor>,
        elsewhere: &HashMap<String, Vec<usize>>,
    ) -> Result<Self> {
        let mut values = Some(values);
        let last = options.devices.len() - 1;
        let replicas = options
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| {
                // the last replica takes the values themselves (read from a file, they are
                // variables' storage already); the others copies, never storage shared with it
                let mine = match (i == last, &values) {
                    (true, _) => values.take().unwrap_or_default(),
                    (false, Some(values)) => {
                        values.iter().map(|(k, t)| Ok((k.clone(), t.copy()?))).collect::<Result<_>>()?
                    }
                    (false, None) => HashMap::new(),
                };
                Replica::new(&config, options, d, (mine, elsewhere))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { config, replicas, host_limit: options.host_limit() })
    }

    /// The model's sizes.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The devices of the replicas, in order.
    pub fn devices(&self) -> Vec<Device> {
        self.replicas.iter().map(|r| r.params.device().clone()).collect()
    }

    /// The memory limit of the CPU replicas, if one is set and a replica is on the CPU.
    pub fn host_limit(&self) -> Option<u64> {
        self.host_limit
    }

    /// Replicas on the CPU (whose memory is the host's).
    pub fn replicas_on_cpu(&self) -> usize {
        self.cpu_replicas().count()
    }

    /// Bytes of host memory its CPU replicas hold now: their parameters' values and the copies
    /// their inference passes made of the dense layers (int8 in q8, which a model loaded in q8
    /// holds instead of the f32 values; made at the first pass after [`ModelHandle::quantize`]).
    /// Not counted: a training state, a pass's buffers.
    pub fn held_bytes(&self) -> usize {
        self.cpu_replicas().map(|r| r.held_bytes(&r.inference_state())).sum()
    }

    /// Bytes of host memory the model takes once its inference pass has run: [`held_bytes`]
    /// and, where the pass has not made its copy of the dense layers yet, that copy's size
    /// (int8 after [`ModelHandle::quantize`]; f32, transposed, on a CPU with no dot kernel; none
    /// where the f32 pass reads the weights in place).
    ///
    /// [`held_bytes`]: ModelHandle::held_bytes
    pub fn footprint_bytes(&self) -> u128 {
        let footprint = |r: &Replica| {
            let state = r.inference_state();
            let copy = match state.precision {
                _ if state.packed.is_some() || !inference::runs_inference_pass(&r.model) => 0,
                Precision::Q8(_) => memory::int8_copy_bytes(&self.config),
                Precision::F32 if DotKernel::detect() == DotKernel::Packed => {
                    4 * memory::dense_weight_count(&self.config)
                }
                Precision::F32 => 0,
            };
            r.held_bytes(&state) as u128 + copy
        };
        self.cpu_replicas().map(footprint).sum()
    }

    /// The replicas on the CPU.
    fn cpu_replicas(&self) -> impl Iterator<Item = &Replica> {
        self.replicas.iter().filter(|r| r.params.device().is_cpu())
    }

    /// The trainable parameters, by name (of replica 0; every replica holds the same values).
    pub fn params(&self) -> &ParamStore {
        &self.replicas[0].params
    }

    /// The parameters of each replica (identical after every training step).
    pub fn replica_params(&self) -> impl Iterator<Item = &ParamStore> {
        self.replicas.iter().map(|r| &r.params)
    }

    /// Switches the inference pass (encoding, embedding, task logits, evaluation) to int8
    /// products ([`Precision::Q8`] with the fastest kernel this CPU has, or the one
    /// `TSBERT_Q8_KERNEL` forces). The weights themselves stay f32 (saved models too); a
    /// quantised model refuses to train. Only f32 models on the CPU can be quantised. Returns
    /// the kernel.
    pub fn quantize(&self) -> Result<Kernel> {
        check_q8_runs(self.params().dtype(), &self.devices())?;
        if let Precision::Q8(kernel) = self.replicas[0].inference_state().precision {
            return Ok(kernel); // quantised already (its int8 weights kept)
        }
        self.check_holds_f32("be quantised")?;
        let kernel = Kernel::detect();
        for r in &self.replicas {
            *r.inference_state() = InferenceState { precision: Precision::Q8(kernel), packed: None };
        }
        Ok(kernel)
    }

    /// Whether [`ModelHandle::quantize`] has been called.
    pub fn is_quantized(&self) -> bool {
        self.replicas.iter().any(|r| matches!(r.inference_state().precision, Precision::Q8(_)))
    }

    /// Refuses a quantised model, which cannot train.
    pub(crate) fn check_trainable(&self) -> Result<()> {
        if self.is_quantized() {
            return Err(InputError::range(
                "model",
                "it is quantised (q8): it encodes, classifies and embeds but cannot train; load it without dtype 'q8' to train",
            )
            .into());
        }
        Ok(())
    }

    /// Refuses `what` (training, saving, loading weights) for a model that holds some weights
    /// only in its inference pass ([`ModelHandle::from_weights_q8`],
    /// [`ModelHandle::from_weights_to_infer`]).
    pub(crate) fn check_holds_f32(&self, what: &str) -> Result<()> {
        if !self.params().holds_all_values() {
            let message = if self.is_quantized() {
                format!(
                    "it was loaded with dtype 'q8' and holds some of its weights in int8 only: it cannot {what}; load it without dtype 'q8' for that (a model quantised after an f32 load keeps its f32 weights)"
                )
            } else {
                format!(
                    "it was loaded to infer only and holds its dense weights only as its inference pass reads them: it cannot {what}; load it without inferenceOnly for that"
                )
            };
            return Err(InputError::range("model", message).into());
        }
        Ok(())
    }

    /// The replicas, for the training step.
    pub(crate) fn replicas(&self) -> &[Replica] {
        &self.replicas
    }

    /// Checks that a pass over `rows` × `seq_len` tokens with `predictions` MLM predictions
    /// fits in the memory limit.
    pub(crate) fn check_pass(&self, rows: usize, seq_len: usize, predictions: usize, training: bool) -> Result<()> {
        if training {
            self.check_trainable()?;
        }
        let bytes = memory::pass_bytes(&self.config, rows, seq_len, predictions, training);
        let what = format!("a {} pass over {rows} × {seq_len} tokens", if training { "training" } else { "forward" });
        Ok(memory::check_fits("batch", &what, bytes, self.host_limit)?)
    }

    /// Checks `batch` against the model and the memory a forward pass over it takes.
    fn check_batch(&self, batch: &Batch) -> Result<()> {
        batch.validate(&self.config)?;
        let s = &batch.sequences;
        self.check_pass(s.batch_size, s.seq_len, batch.num_preds * s.batch_size, false)
    }

    /// The encoder output of a checked `batch` by replica 0, dropout off, with its dtype and
    /// device.
    fn encode_batch(&self, batch: &Batch) -> Result<(Tensor, DType, &Device)> {
        self.check_batch(batch)?;
        let primary = &self.replicas[0];
        let encoded = primary.encode(&batch.sequences, &mut Mode::Eval, Padding::Computed)?;
        Ok((encoded, primary.params.dtype(), primary.params.device()))
    }

    /// The losses of `batch` with dropout off.
    pub fn eval_losses(&self, batch: &Batch) -> Result<StepLosses> {
        self.check_batch(batch)?;
        let (mlm, nsp) = self.replicas[0].losses(batch, LossScale::of(batch), &mut Mode::Eval)?;
        Ok(StepLosses { mlm: scalar(&mlm)?, nsp: scalar(&nsp)? })
    }

    /// Encoder output, all `B·P` MLM logits, NSP logits and losses of `batch`, dropout off.
    pub fn forward(&self, batch: &Batch) -> Result<ForwardOutputs> {
        let (encoded, dtype, device) = self.encode_batch(batch)?;
        let (primary, s) = (&self.replicas[0], &batch.sequences);
        let all = batch.mlm_targets(false, dtype, device)?;
        let mlm_logits = primary.model.mlm_logits(&encoded, &all.flat_positions)?;
        let scale = LossScale::of(batch);
        let mlm = weighted_mlm_loss(&mlm_logits, &all.labels, &all.weights, scale.mlm)?;
        let nsp_logits = primary.model.nsp_logits(&encoded)?;
        let nsp = nsp_loss(&nsp_logits, &batch.nsp_tensor(device)?, scale.nsp)?;
        Ok(ForwardOutputs {
            mlm_logits: mlm_logits.reshape((s.batch_size, batch.num_preds, self.config.vocab_size))?,
            encoded,
            nsp_logits,
            losses: StepLosses { mlm: scalar(&mlm)?, nsp: scalar(&nsp)? },
        })
    }

    /// Losses and correct predictions of `batch`, dropout off, as sums (see [`EvalSums`]).
    pub fn eval_sums(&self, batch: &Batch) -> Result<EvalSums> {
        let (encoded, dtype, device) = self.encode_batch(batch)?;
        let (primary, s) = (&self.replicas[0], &batch.sequences);
        let targets = batch.mlm_targets(true, dtype, device)?;
        let mut sums = EvalSums { rows: s.batch_size as f64, ..EvalSums::default() };
        if targets.labels.elem_count() > 0 {
            let logits = primary.model.mlm_logits(&encoded, &targets.flat_positions)?;
            sums.mlm_loss = scalar(&weighted_mlm_loss(&logits, &targets.labels, &targets.weights, 1.0)?)?;
            let best = logits.argmax(1)?.to_vec1::<u32>()?;
            let labels = targets.labels.to_vec1::<u32>()?;
            let weights = targets.weights.to_dtype(DType::F64)?.to_vec1::<f64>()?;
            sums.mlm_weight = weights.iter().sum();
            sums.mlm_correct =
                best.iter().zip(&labels).zip(&weights).filter(|((b, l), _)| b == l).map(|(_, w)| w).sum();
        }
        let nsp_logits = primary.model.nsp_logits(&encoded)?;
        let nsp_labels = batch.nsp_tensor(device)?;
        sums.nsp_loss = scalar(&nsp_loss(&nsp_logits, &nsp_labels, 1.0)?)?;
        let best = nsp_logits.argmax(1)?.to_vec1::<u32>()?;
        sums.nsp_correct = best.iter().zip(&batch.nsp_labels).filter(|(b, l)| **b as i32 == **l).count() as f64;
        Ok(sums)
    }

    /// Held-out metrics of `batches` together, dropout off: the means of their sums.
    pub fn evaluate(&self, batches: &[Batch]) -> Result<EvalMetrics> {
        if batches.is_empty() {
            return Err(InputError::range("batches", "no batch given").into());
        }
        let sums = batches
            .iter()
            .try_fold(EvalSums::default(), |total, b| Ok::<_, crate::Error>(total.add(self.eval_sums(b)?)))?;
        Ok(sums.means())
    }

    /// The contextual embedding of every token, dropout off: `[B, L, hidden]`, the padding
    /// rows as transformers computes them.
    pub fn encode(&self, sequences: &Sequences) -> Result<Tensor> {
        self.encode_rows(sequences, Padding::Computed)
    }

    /// [`ModelHandle::encode`] with the padding rows as `padding` says.
    fn encode_rows(&self, sequences: &Sequences, padding: Padding) -> Result<Tensor> {
        sequences.validate(&self.config)?;
        self.check_pass(sequences.batch_size, sequences.seq_len, 0, false)?;
        self.replicas[0].encode(sequences, &mut Mode::Eval, padding)
    }

    /// The task head's outputs, dropout off: `[B, num_labels]` for a sequence's kinds,
    /// `[B, L, num_labels]` for token classification (see `BertModel::task_logits`). A model
    /// without a task head is an error saying so.
    pub fn task_logits(&self, sequences: &Sequences) -> Result<Tensor> {
        // a sequence's head reads its `<cls>` row only: the inference pass skips the padding
        let reads_cls = self.config.task.as_ref().is_some_and(|task| task.kind.reads_pooler());
        let encoded = self.encode_rows(sequences, if reads_cls { Padding::Zeros } else { Padding::Computed })?;
        self.replicas[0].model.task_logits(&encoded, &mut Mode::Eval)
    }

    /// Whether encoding `rows` × `seq_len` tokens on replica 0 takes at most `macs`
    /// multiply-adds on the CPU (see [`memory::pass_macs`]).
    pub fn encodes_within(&self, rows: usize, seq_len: usize, macs: u128) -> bool {
        self.replicas[0].params.device().is_cpu() && memory::pass_macs(&self.config, rows, seq_len) <= macs
    }

    /// One vector a sequence, dropout off: `[B, modes · hidden]` in f32 (see [`pooling::pool`]).
    pub fn encode_pooled(&self, sequences: &Sequences, pooling: &[Pooling], normalize: bool) -> Result<Tensor> {
        // pooling reads valid rows only: the inference pass skips the padding
        let encoded = self.encode_rows(sequences, Padding::Zeros)?;
        pooling::pool(&encoded, &sequences.valid_lens(), pooling, normalize)
    }

    /// The MLM logits, dropout off, at `positions` (`(row, position)` pairs inside each row's
    /// valid length) of `sequences`: `[N, vocab]`. A model without an MLM head is an error
    /// saying so.
    pub fn masked_logits(&self, sequences: &Sequences, positions: &[(usize, usize)]) -> Result<Tensor> {
        let valid = sequences.valid_lens();
        if let Some(i) = positions.iter().position(|&(r, p)| r >= valid.len() || p >= valid[r]) {
            let (r, p) = positions[i];
            return Err(
                InputError::range(format!("positions[{i}]"), format!("({r}, {p}) is outside the sequences")).into()
            );
        }
        let encoded = self.encode_rows(sequences, Padding::Zeros)?;
        let primary = &self.replicas[0];
        let flat: Vec<u32> = positions.iter().map(|&(r, p)| (r * sequences.seq_len + p) as u32).collect();
        let flat = Tensor::from_vec(flat, positions.len(), primary.params.device())?;
        primary.model.mlm_logits(&encoded, &flat)
    }

    /// Replaces the values of parameter `name` on every replica. A model loaded in q8 refuses
    /// (its int8 products hold copies of the dense layers' biases too, made at the load).
    pub fn set_param(&self, name: &str, values: &[f32]) -> Result<()> {
        self.check_holds_f32("have its weights set")?;
        self.replicas.iter().try_for_each(|r| r.params.set(name, values))
    }

    /// The weights as a safetensors file's bytes, named by `naming` (see
    /// [`weights::save_weights`]).
    pub fn save_weights(&self, naming: &Naming) -> Result<Vec<u8>> {
        self.check_holds_f32("be saved")?;
        weights::save_weights(self.params(), naming)
    }

    /// Replaces the weights of every replica with those of a safetensors file's `bytes` (named
    /// by `naming`); everything is checked first, so a bad file leaves the model as it was (see
    /// [`WeightsFile::read`]).
    pub fn load_weights(&self, bytes: &[u8], naming: &Naming) -> Result<()> {
        self.check_holds_f32("load other weights")?;
        let file = WeightsFile::from_bytes(bytes)?;
        let tensors = file.read((&self.config, self.params().dtype()), &self.config, naming)?;
        self.set_weights(&tensors)
    }

    /// Sets the parameters of every replica that `tensors` names (one a parameter name).
    fn set_weights(&self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        for replica in &self.replicas {
            for (name, var) in replica.params.iter() {
                let Some(value) = tensors.get(name) else { continue };
                var.set(&value.to_device(var.device())?)?;
                note_weights_written();
            }
        }
        Ok(())
    }
}
