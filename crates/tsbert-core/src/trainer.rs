//! [`Trainer`]: a BERT model with its Adam state, on one device or data-parallel over
//! several: training steps, evaluation, encoding and the weights.
//!
//! One training step, end to end: [`Trainer::train_step`] validates the [`Batch`] once, the
//! replica's [`Replica::gradients`] runs [`BertModel::encode`], the two heads and
//! [`crate::loss`]'s losses forward and candle's `backward`, and [`Adam::step`] updates the
//! weights. On several devices the batch is split into one shard a replica, each shard's loss
//! is scaled by the whole batch's denominators, the gradients are summed over replicas
//! ([`GradientSum`]: NCCL's all-reduce over GPUs), and every replica takes the same Adam step,
//! so N replicas give the update of one device on the whole batch.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use crate::adam::{Adam, AdamConfig};
use crate::batch::{Batch, Sequences};
use crate::checkpoint::{self, Naming};
use crate::config::BertConfig;
use crate::error::{Error, InputError, Result};
use crate::gradient_sum::GradientSum;
use crate::loss::{nsp_loss, weighted_mlm_loss, LossScale};
use crate::memory;
use crate::model::{inference, BertModel, Mode};
use crate::ops::attention::KeyMask;
use crate::ops::decoder_loss::Targets;
use crate::params::{Gradients, ParamStore};
use crate::pooling::{self, Pooling};
use crate::rng::{RngState, SeededRng};

/// The random stream dropout masks are drawn from (initialisation uses stream 0).
const DROPOUT_STREAM: u64 = 1;

/// How a [`Trainer`] is set up.
#[derive(Debug, Clone)]
pub struct TrainerOptions {
    /// Seeds the initial weights and the dropout masks.
    pub seed: u64,
    /// The optimizer's hyper-parameters.
    pub adam: AdamConfig,
    /// Element type of parameters and activations (F32; F64 for gradient checks).
    pub dtype: DType,
    /// One replica a device; several train data-parallel. Replica 0 serves encoding and reads.
    pub devices: Vec<Device>,
    /// Bytes of host memory the CPU replicas and a pass over a batch may take (see
    /// [`crate::memory`]); sizes that need more are refused before anything is allocated.
    /// `None`: no limit.
    pub memory_limit: Option<u64>,
    /// Clip the gradients of every step to this global L2 norm; `None`: no clipping.
    pub clip_norm: Option<f64>,
}

impl Default for TrainerOptions {
    /// Seed 0, textbook Adam, f32 on the CPU.
    fn default() -> Self {
        Self {
            seed: 0,
            adam: AdamConfig::default(),
            dtype: DType::F32,
            devices: vec![Device::Cpu],
            memory_limit: None,
            clip_norm: None,
        }
    }
}

/// The two pretraining losses of one step, before its update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLosses {
    /// Weighted masked-language-model cross-entropy.
    pub mlm: f64,
    /// Mean next-sentence-prediction cross-entropy.
    pub nsp: f64,
}

/// What an evaluation measures on a batch, dropout off, as sums, so that batches add up.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EvalMetrics {
    /// Σ weight · MLM cross-entropy over the real predictions.
    pub mlm_loss_sum: f64,
    /// Σ weight of the real predictions.
    pub mlm_weight: f64,
    /// Σ weight of the predictions whose most probable token is the label.
    pub mlm_correct: f64,
    /// Σ NSP cross-entropy over the rows.
    pub nsp_loss_sum: f64,
    /// Rows whose more probable NSP class is the label.
    pub nsp_correct: f64,
    /// Rows.
    pub rows: f64,
}

/// Everything one evaluation (dropout off) of a batch computes.
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

/// A dropout stream's state as [`Trainer::save_state`] writes it: `seedhex:stream:wordpos`.
fn parse_rng(text: &str) -> Option<RngState> {
    let mut parts = text.split(':');
    let (seed, stream, word_pos) = (parts.next()?, parts.next()?, parts.next()?);
    if seed.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(seed.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(RngState { seed: key, stream: stream.parse().ok()?, word_pos: word_pos.parse().ok()? })
}

/// The element-wise sum of two sets of gradients (either may be absent).
fn add_gradients(a: Option<Gradients>, b: Option<Gradients>) -> Result<Gradients> {
    let (mut a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
    for (id, g) in b {
        let sum = match a.remove(&id) {
            Some(existing) => (existing + g)?,
            None => g,
        };
        a.insert(id, sum);
    }
    Ok(a)
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// One copy of the model on one device: its weights, Adam state, dropout stream and the
/// gradients of its last backward pass.
#[derive(Debug)]
struct Replica {
    params: ParamStore,
    model: BertModel,
    adam: Adam,
    dropout_rng: SeededRng,
    grads: Option<Gradients>,
}

impl Replica {
    fn new(config: &BertConfig, options: &TrainerOptions, device: &Device) -> Result<Self> {
        let mut params = ParamStore::new(options.seed, options.dtype, device.clone());
        let model = BertModel::new(&mut params, config)?;
        let adam = Adam::new(options.adam, &params)?;
        let dropout_rng = SeededRng::with_stream(options.seed, DROPOUT_STREAM);
        Ok(Self { params, model, adam, dropout_rng, grads: None })
    }

    /// The keys each row of `sequences` attends to.
    fn key_mask(&self, sequences: &Sequences) -> Result<KeyMask> {
        let like = Tensor::zeros((), self.params.dtype(), self.params.device())?;
        BertModel::key_mask(&sequences.valid_lens(), sequences.seq_len, &like)
    }

    /// The contextual embedding of every token of checked `sequences`: `[B, L, hidden]`. In
    /// eval mode on the CPU in f32, by the inference pass (no graph: nothing to differentiate).
    fn encode(&self, sequences: &Sequences, mode: &mut Mode) -> Result<Tensor> {
        if matches!(mode, Mode::Eval) && inference::runs_inference_pass(&self.model) {
            let (tokens, segments) = sequences.ids();
            let values = inference::encode(&self.model, &tokens, &segments, &sequences.valid_lens())?;
            let rows = sequences.batch_size * sequences.seq_len;
            let shape = (sequences.batch_size, sequences.seq_len, values.len() / rows.max(1));
            return Ok(Tensor::from_vec(values, shape, self.params.device())?);
        }
        let (tokens, segments) = sequences.id_tensors(self.params.device())?;
        self.model.encode(&tokens, &segments, &self.key_mask(sequences)?, mode)
    }

    /// Forward pass and both losses of a checked `batch`, divided by `scale`; padded
    /// predictions are left out.
    fn losses(&self, batch: &Batch, scale: LossScale, mode: &mut Mode) -> Result<(Tensor, Tensor)> {
        let device = self.params.device();
        let encoded = self.encode(&batch.sequences, mode)?;
        let targets = batch.mlm_targets(true, self.params.dtype(), device)?;
        let mlm = if targets.labels.elem_count() == 0 {
            Tensor::zeros((), self.params.dtype(), device)?
        } else if matches!(mode, Mode::Train(_)) {
            // training: the logits a chunk at a time, their gradients computed with them
            let scored = Targets { labels: &targets.labels, weights: &targets.weights, total: scale.mlm };
            self.model.mlm_loss(&encoded, &targets.flat_positions, scored)?
        } else {
            let logits = self.model.mlm_logits(&encoded, &targets.flat_positions)?;
            weighted_mlm_loss(&logits, &targets.labels, &targets.weights, scale.mlm)?
        };
        let nsp = nsp_loss(&self.model.nsp_logits(&encoded)?, &batch.nsp_tensor(device)?, scale.nsp)?;
        Ok((mlm, nsp))
    }

    /// Forward (dropout on) and backward of MLM + NSP on a checked `batch`, the losses
    /// divided by `scale`; keeps the parameters' gradients.
    fn gradients(&mut self, batch: &Batch, scale: LossScale) -> Result<StepLosses> {
        let mut rng = self.dropout_rng.clone();
        let (mlm, nsp) = self.losses(batch, scale, &mut Mode::Train(&mut rng))?;
        self.dropout_rng = rng;
        let store = (&mlm + &nsp)?.backward()?;
        self.grads = Some(self.params.take_gradients(store));
        Ok(StepLosses { mlm: scalar(&mlm)?, nsp: scalar(&nsp)? })
    }

    fn optimizer_step(&mut self) -> Result<()> {
        match &self.grads {
            Some(grads) => self.adam.step(grads),
            None => Err(Error::Internal("optimizer_step called before any gradient was computed".into())),
        }
    }
}

/// A BERT model and its Adam state, on one device or data-parallel over several (identical
/// replicas: same seed, same weights).
#[derive(Debug)]
pub struct Trainer {
    config: BertConfig,
    replicas: Vec<Replica>,
    gradient_sum: GradientSum,
    /// The memory limit, when a replica is on the CPU (GPU memory runs out with an error).
    host_limit: Option<u64>,
    /// The global gradient norm steps are clipped to.
    clip_norm: Option<f64>,
}

impl Trainer {
    /// A freshly initialised model on each of `options.devices`: the same config and seed
    /// give bit-identical weights. Sizes that are out of range, or whose CPU replicas would not
    /// fit in the memory limit, are refused before anything is allocated.
    pub fn new(config: BertConfig, options: TrainerOptions) -> Result<Self> {
        config.validate()?;
        if options.devices.is_empty() {
            return Err(InputError::range("device", "no device given").into());
        }
        let on_cpu = options.devices.iter().filter(|d| d.is_cpu()).count() as u128;
        let host_limit = if on_cpu > 0 { options.memory_limit } else { None };
        let what =
            format!("a model of {} parameters, with its gradients and Adam state,", memory::param_count(&config)?);
        memory::check_fits("config", &what, on_cpu * memory::model_bytes(&config)?, host_limit)?;
        let replicas =
            options.devices.iter().map(|d| Replica::new(&config, &options, d)).collect::<Result<Vec<_>>>()?;
        let gradient_sum = GradientSum::for_devices(&options.devices)?;
        if let Some(c) = options.clip_norm.filter(|c| !(c.is_finite() && *c > 0.0)) {
            return Err(InputError::range("clipNorm", format!("{c} is not a positive number")).into());
        }
        Ok(Self { config, replicas, gradient_sum, host_limit, clip_norm: options.clip_norm })
    }

    /// Checks that a pass over `rows` × `seq_len` tokens with `predictions` MLM predictions
    /// fits in the memory limit.
    fn check_pass(&self, rows: usize, seq_len: usize, predictions: usize, training: bool) -> Result<()> {
        let bytes = memory::pass_bytes(&self.config, rows, seq_len, predictions, training);
        let what = format!("a {} pass over {rows} × {seq_len} tokens", if training { "training" } else { "forward" });
        Ok(memory::check_fits("batch", &what, bytes, self.host_limit)?)
    }

    /// The model's sizes.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The trainable parameters, by name (of replica 0; every replica holds the same values).
    pub fn params(&self) -> &ParamStore {
        &self.replicas[0].params
    }

    /// Adam updates taken so far.
    pub fn steps_taken(&self) -> u64 {
        self.replicas[0].adam.steps_taken()
    }

    /// The parameters of each replica (identical after every step).
    pub fn replica_params(&self) -> impl Iterator<Item = &ParamStore> {
        self.replicas.iter().map(|r| &r.params)
    }

    /// Forward (dropout on) and backward of MLM + NSP on `batch`; the gradients are kept for
    /// [`Trainer::optimizer_step`] and [`Trainer::last_grad`]. No weight changes. Fails with
    /// [`Error::Diverged`], keeping no gradient, when a loss or a gradient is not finite.
    pub fn compute_gradients(&mut self, batch: &Batch) -> Result<StepLosses> {
        self.accumulate_gradients(std::slice::from_ref(batch))
    }

    /// [`Trainer::compute_gradients`] over several batches at once (gradient accumulation): each
    /// batch's losses are scaled by the denominators of all of them, and the gradients summed,
    /// so that the update is the one of a single batch of all their rows. Returns the losses of
    /// that batch. Then the gradients are clipped to `clip_norm` if one is set.
    pub fn accumulate_gradients(&mut self, batches: &[Batch]) -> Result<StepLosses> {
        if batches.is_empty() {
            return Err(InputError::range("batches", "no batch given").into());
        }
        for batch in batches {
            batch.validate(&self.config)?;
            let s = &batch.sequences;
            self.check_pass(s.batch_size, s.seq_len, batch.num_preds * s.batch_size, true)?;
        }
        let scale = LossScale::of_all(batches);
        let mut losses = StepLosses { mlm: 0.0, nsp: 0.0 };
        let mut totals: Vec<Option<Gradients>> = self.replicas.iter().map(|_| None).collect();
        for batch in batches {
            let l = if self.replicas.len() == 1 {
                self.replicas[0].gradients(batch, scale)?
            } else {
                self.sharded_gradients(batch, scale)?
            };
            losses.mlm += l.mlm;
            losses.nsp += l.nsp;
            for (total, replica) in totals.iter_mut().zip(&mut self.replicas) {
                *total = Some(add_gradients(total.take(), replica.grads.take())?);
            }
        }
        for (replica, total) in self.replicas.iter_mut().zip(totals) {
            replica.grads = total;
        }
        if let Err(e) = self.check_finite(losses) {
            self.replicas.iter_mut().for_each(|r| r.grads = None);
            return Err(e);
        }
        if let Some(max) = self.clip_norm {
            self.clip_gradients(max)?;
        }
        Ok(losses)
    }

    /// Scales every replica's gradients so that their global L2 norm is at most `max`.
    fn clip_gradients(&mut self, max: f64) -> Result<()> {
        let Some(grads) = &self.replicas[0].grads else { return Ok(()) };
        let mut squares: Option<Tensor> = None;
        for g in grads.values() {
            let s = g.to_dtype(DType::F64)?.sqr()?.sum_all()?;
            squares = Some(match squares {
                Some(t) => (t + s)?,
                None => s,
            });
        }
        let norm = squares.map(|t| t.to_scalar::<f64>()).transpose()?.unwrap_or(0.0).sqrt();
        if norm <= max {
            return Ok(());
        }
        let factor = max / norm;
        for replica in &mut self.replicas {
            if let Some(grads) = &mut replica.grads {
                for g in grads.values_mut() {
                    *g = (&*g * factor)?;
                }
            }
        }
        Ok(())
    }

    /// [`Error::Diverged`] naming the step and what is not finite: a loss, or the gradients
    /// (summed over replicas) of the last backward pass.
    fn check_finite(&self, losses: StepLosses) -> Result<()> {
        let step = self.steps_taken() + 1;
        let diverged = |what: String| {
            Err(Error::Diverged(format!("training diverged at step {step}: {what}; the weights were not updated")))
        };
        for (name, value) in [("MLM", losses.mlm), ("NSP", losses.nsp)] {
            if !value.is_finite() {
                return diverged(format!("the {name} loss is {value}"));
            }
        }
        let Some(grads) = &self.replicas[0].grads else { return Ok(()) };
        let mut total: Option<Tensor> = None;
        for g in grads.values() {
            let s = g.sum_all()?.to_dtype(DType::F64)?;
            total = Some(match total {
                Some(t) => (t + s)?,
                None => s,
            });
        }
        match total.map(|t| t.to_scalar::<f64>()).transpose()? {
            Some(sum) if !sum.is_finite() => diverged("a gradient holds NaN or infinite values".into()),
            _ => Ok(()),
        }
    }

    /// One Adam update (on every replica) from the gradients of the last
    /// [`Trainer::compute_gradients`].
    pub fn optimizer_step(&mut self) -> Result<()> {
        self.replicas.iter_mut().try_for_each(Replica::optimizer_step)
    }

    /// One training step: gradients of MLM + NSP, then Adam. Returns the losses before the
    /// update.
    pub fn train_step(&mut self, batch: &Batch) -> Result<StepLosses> {
        self.train_step_accumulated(std::slice::from_ref(batch))
    }

    /// One training step over several batches, their gradients accumulated (see
    /// [`Trainer::accumulate_gradients`]), then Adam.
    pub fn train_step_accumulated(&mut self, batches: &[Batch]) -> Result<StepLosses> {
        let losses = self.accumulate_gradients(batches)?;
        self.optimizer_step()?;
        Ok(losses)
    }

    /// The learning rate of the next steps (a schedule's value), on every replica.
    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        self.replicas.iter_mut().try_for_each(|r| Ok(r.adam.set_lr(lr)?))
    }

    /// Splits `batch` into contiguous shards, one a replica (a replica past the last row gets
    /// none); each computes the gradients of its shard's losses scaled by the whole batch's
    /// denominators; then every replica's gradients are replaced by their sum over replicas.
    fn sharded_gradients(&mut self, batch: &Batch, scale: LossScale) -> Result<StepLosses> {
        let b = batch.sequences.batch_size;
        let n = self.replicas.len().min(b);
        let mut losses = StepLosses { mlm: 0.0, nsp: 0.0 };
        for (r, replica) in self.replicas.iter_mut().enumerate() {
            if r < n {
                let l = replica.gradients(&batch.rows(r * b / n, (r + 1) * b / n), scale)?;
                losses.mlm += l.mlm;
                losses.nsp += l.nsp;
            } else {
                replica.grads = Some(HashMap::new());
            }
        }
        let mut sums: Vec<Gradients> = self.replicas.iter().map(|_| HashMap::new()).collect();
        let vars: Vec<Vec<_>> =
            self.replicas.iter().map(|r| r.params.iter().map(|(_, v)| v.clone()).collect()).collect();
        // Replicas are built by the same code, so parameter i is the same one in every replica.
        for i in 0..vars[0].len() {
            let grads = self
                .replicas
                .iter()
                .zip(&vars)
                .map(|(replica, vars)| {
                    let own = replica.grads.as_ref().and_then(|g| g.get(&vars[i].id()).cloned());
                    own.map_or_else(|| Ok(vars[i].zeros_like()?), Ok)
                })
                .collect::<Result<Vec<Tensor>>>()?;
            for ((sum, vars), total) in sums.iter_mut().zip(&vars).zip(self.gradient_sum.sum(&grads)?) {
                sum.insert(vars[i].id(), total);
            }
        }
        for (replica, sum) in self.replicas.iter_mut().zip(sums) {
            replica.grads = Some(sum);
        }
        Ok(losses)
    }

    /// The losses of `batch` with dropout off, no gradient kept.
    pub fn eval_losses(&self, batch: &Batch) -> Result<StepLosses> {
        batch.validate(&self.config)?;
        let s = &batch.sequences;
        self.check_pass(s.batch_size, s.seq_len, batch.num_preds * s.batch_size, false)?;
        let (mlm, nsp) = self.replicas[0].losses(batch, LossScale::of(batch), &mut Mode::Eval)?;
        Ok(StepLosses { mlm: scalar(&mlm)?, nsp: scalar(&nsp)? })
    }

    /// Encoder output, all `B·P` MLM logits, NSP logits and losses, dropout off.
    pub fn evaluate(&self, batch: &Batch) -> Result<ForwardOutputs> {
        batch.validate(&self.config)?;
        let s = &batch.sequences;
        self.check_pass(s.batch_size, s.seq_len, batch.num_preds * s.batch_size, false)?;
        let primary = &self.replicas[0];
        let (dtype, device) = (primary.params.dtype(), primary.params.device());
        let s = &batch.sequences;
        let encoded = primary.encode(s, &mut Mode::Eval)?;
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

    /// Losses and accuracies of `batch`, dropout off (see [`EvalMetrics`]).
    pub fn evaluate_metrics(&self, batch: &Batch) -> Result<EvalMetrics> {
        batch.validate(&self.config)?;
        let s = &batch.sequences;
        self.check_pass(s.batch_size, s.seq_len, batch.num_preds * s.batch_size, false)?;
        let primary = &self.replicas[0];
        let (dtype, device) = (primary.params.dtype(), primary.params.device());
        let encoded = primary.encode(s, &mut Mode::Eval)?;
        let targets = batch.mlm_targets(true, dtype, device)?;
        let mut metrics = EvalMetrics { rows: s.batch_size as f64, ..EvalMetrics::default() };
        if targets.labels.elem_count() > 0 {
            let logits = primary.model.mlm_logits(&encoded, &targets.flat_positions)?;
            metrics.mlm_loss_sum = scalar(&weighted_mlm_loss(&logits, &targets.labels, &targets.weights, 1.0)?)?;
            let best = logits.argmax(1)?.to_vec1::<u32>()?;
            let labels = targets.labels.to_vec1::<u32>()?;
            let weights = targets.weights.to_dtype(DType::F64)?.to_vec1::<f64>()?;
            metrics.mlm_weight = weights.iter().sum();
            metrics.mlm_correct =
                best.iter().zip(&labels).zip(&weights).filter(|((b, l), _)| b == l).map(|(_, w)| w).sum();
        }
        let nsp_logits = primary.model.nsp_logits(&encoded)?;
        let nsp_labels = batch.nsp_tensor(device)?;
        metrics.nsp_loss_sum = scalar(&nsp_loss(&nsp_logits, &nsp_labels, 1.0)?)?;
        let best = nsp_logits.argmax(1)?.to_vec1::<u32>()?;
        metrics.nsp_correct = best.iter().zip(&batch.nsp_labels).filter(|(b, l)| **b as i32 == **l).count() as f64;
        Ok(metrics)
    }

    /// The contextual embedding of every token, dropout off: `[B, L, hidden]`.
    pub fn encode(&self, sequences: &Sequences) -> Result<Tensor> {
        sequences.validate(&self.config)?;
        self.check_pass(sequences.batch_size, sequences.seq_len, 0, false)?;
        self.replicas[0].encode(sequences, &mut Mode::Eval)
    }

    /// One vector a sequence, dropout off: `[B, hidden]` (see [`pooling::pool`]).
    pub fn encode_pooled(&self, sequences: &Sequences, pooling: Pooling, normalize: bool) -> Result<Tensor> {
        let encoded = self.encode(sequences)?;
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
        let encoded = self.encode(sequences)?;
        let primary = &self.replicas[0];
        let flat: Vec<u32> = positions.iter().map(|&(r, p)| (r * sequences.seq_len + p) as u32).collect();
        let flat = Tensor::from_vec(flat, positions.len(), primary.params.device())?;
        primary.model.mlm_logits(&encoded, &flat)
    }

    /// The gradient of parameter `name` from the last [`Trainer::compute_gradients`] (summed
    /// over replicas), if any.
    pub fn last_grad(&self, name: &str) -> Result<Option<Tensor>> {
        let primary = &self.replicas[0];
        let id = primary.params.get(name)?.id();
        Ok(primary.grads.as_ref().and_then(|g| g.get(&id).cloned()))
    }

    /// Replaces the values of parameter `name` on every replica.
    pub fn set_param(&self, name: &str, values: &[f32]) -> Result<()> {
        self.replicas.iter().try_for_each(|r| r.params.set(name, values))
    }

    /// The optimizer's state as a safetensors file's bytes: both moments of every parameter, the
    /// step count and every replica's dropout stream, what resuming a run needs besides the
    /// weights.
    pub fn save_state(&self) -> Result<Vec<u8>> {
        let (step, moments) = self.replicas[0].adam.state()?;
        let moments = moments
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?)))
            .collect::<Result<HashMap<String, Tensor>>>()?;
        let mut metadata = HashMap::from([("adam.step".to_string(), step.to_string())]);
        for (r, replica) in self.replicas.iter().enumerate() {
            let s = replica.dropout_rng.state();
            let seed: String = s.seed.iter().map(|b| format!("{b:02x}")).collect();
            metadata.insert(format!("rng.{r}"), format!("{seed}:{}:{}", s.stream, s.word_pos));
        }
        safetensors::serialize(&moments, Some(metadata))
            .map_err(|e| Error::Checkpoint(format!("cannot serialise the optimizer state: {e}")))
    }

    /// Takes back an optimizer state written by [`Trainer::save_state`] (of a model of this
    /// config on as many devices), checked whole before anything changes.
    pub fn load_state(&mut self, bytes: &[u8]) -> Result<()> {
        let bad = |what: String| Error::Checkpoint(format!("optimizer state: {what}"));
        let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("not a readable safetensors file ({e})")))?;
        let meta = metadata.metadata().clone().unwrap_or_default();
        let step: u64 =
            meta.get("adam.step").and_then(|s| s.parse().ok()).ok_or_else(|| bad("no step count".into()))?;
        let rngs = (0..self.replicas.len())
            .map(|r| {
                let text =
                    meta.get(&format!("rng.{r}")).ok_or_else(|| bad(format!("no dropout stream for replica {r}")))?;
                parse_rng(text).ok_or_else(|| bad(format!("the dropout stream of replica {r} is unreadable")))
            })
            .collect::<Result<Vec<_>>>()?;
        let moments = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(|e| bad(format!("not a readable safetensors file ({e})")))?;
        for (replica, rng) in self.replicas.iter_mut().zip(rngs) {
            replica.adam.restore(step, &moments)?;
            replica.dropout_rng = SeededRng::from_state(rng);
        }
        Ok(())
    }

    /// The weights as a safetensors file's bytes, named by `naming` (see
    /// [`checkpoint::save_weights`]).
    pub fn save_weights(&self, naming: &Naming) -> Result<Vec<u8>> {
        checkpoint::save_weights(self.params(), naming)
    }

    /// Replaces the weights of every replica with those of a safetensors file's `bytes` (named
    /// by `naming`); everything is checked first, so a bad file leaves the model as it was (see
    /// [`checkpoint::read_weights`]).
    pub fn load_weights(&self, bytes: &[u8], naming: &Naming) -> Result<()> {
        let tensors = checkpoint::read_weights(self.params(), &self.config, bytes, naming)?;
        for replica in &self.replicas {
            for (name, var) in replica.params.iter() {
                var.set(&tensors[name].to_device(var.device())?)?;
            }
        }
        Ok(())
    }
}
