//! [`Trainer`]: what training adds to a [`ModelHandle`] — Adam's state, the dropout streams
//! and the gradients of the last backward pass, one set a replica — and the training step.
//!
//! One training step, end to end: [`Trainer::train_step`] validates the [`Batch`] once, each
//! replica runs its forward pass in training mode (dropout on) and [`crate::loss`]'s losses,
//! candle's `backward` gives the gradients, and [`Adam::step`] updates the weights in place.
//! On several devices the batch is split into one shard a replica, each shard's loss is
//! scaled by the whole batch's denominators, the gradients are summed over replicas
//! ([`GradientSum`]: NCCL's all-reduce over GPUs), and every replica takes the same Adam step,
//! so N replicas give the update of one device on the whole batch.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use crate::adam::{Adam, AdamConfig};
use crate::batch::{Batch, Sequences};
use crate::config::{BertConfig, TaskKind};
use crate::error::{Error, InputError, Result};
use crate::gradient_sum::GradientSum;
use crate::loss::LossScale;
use crate::memory;
use crate::model::handle::Replica;
use crate::model::inference::Padding;
use crate::model::{Mode, ModelHandle, StepLosses};
use crate::params::Gradients;
use crate::rng::{RngState, SeededRng};
use crate::task_loss::{task_loss_over, TaskLabels};

/// One batch of a task step: its sequences and their labels.
pub type TaskPart = (Sequences, TaskLabels);

/// The random stream dropout masks are drawn from (initialisation uses stream 0).
const DROPOUT_STREAM: u64 = 1;

/// A step whose loss is over this many times the loss of a uniform guess over the classes (the
/// vocabulary for MLM, two for NSP) has diverged, as a NaN has: no model is that wrong by
/// learning, only by blowing up (a learning rate far too high).
pub const DIVERGED_FACTOR: f64 = 10.0;

/// How a [`Trainer`] trains.
#[derive(Debug, Clone)]
pub struct TrainerOptions {
    /// Seeds the dropout masks (the model's seed, so that a run is one seed).
    pub seed: u64,
    /// The optimizer's hyper-parameters.
    pub adam: AdamConfig,
    /// Clip the gradients of every step to this global L2 norm; `None`: no clipping.
    pub clip_norm: Option<f64>,
}

impl TrainerOptions {
    /// Checks the hyper-parameters (Adam's, see [`AdamConfig::validate`]; the clipping norm a
    /// positive number), allocating nothing.
    pub fn validate(&self) -> Result<(), InputError> {
        self.adam.validate()?;
        match self.clip_norm {
            Some(c) if !(c.is_finite() && c > 0.0) => {
                Err(InputError::range("clipNorm", format!("{c} is not a positive number")))
            }
            _ => Ok(()),
        }
    }
}

impl Default for TrainerOptions {
    /// Seed 0, textbook Adam, no clipping.
    fn default() -> Self {
        Self { seed: 0, adam: AdamConfig::default(), clip_norm: None }
    }
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

/// What training keeps for one replica: its Adam state, its dropout stream and the gradients
/// of its last backward pass.
#[derive(Debug)]
struct ReplicaState {
    adam: Adam,
    dropout_rng: SeededRng,
    grads: Option<Gradients>,
}

impl ReplicaState {
    /// Forward (dropout on) and backward of MLM + NSP on a checked `batch` by `replica`, the
    /// losses divided by `scale`; keeps the parameters' gradients.
    fn gradients(&mut self, replica: &Replica, batch: &Batch, scale: LossScale) -> Result<StepLosses> {
        let mut rng = self.dropout_rng.clone();
        let (mlm, nsp) = replica.losses(batch, scale, &mut Mode::Train(&mut rng))?;
        self.dropout_rng = rng;
        let store = (&mlm + &nsp)?.backward()?;
        self.grads = Some(replica.params.take_gradients(store));
        let scalar = |t: &Tensor| -> Result<f64> { Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?) };
        Ok(StepLosses { mlm: scalar(&mlm)?, nsp: scalar(&nsp)? })
    }

    /// Forward (dropout on) and backward of the loss of the task head (a `kind` one) on a checked
    /// part of a step by `replica`, its loss summed over `denominator` (the step's); keeps the
    /// parameters' gradients.
    fn task_gradients(
        &mut self,
        replica: &Replica,
        kind: TaskKind,
        part: &TaskPart,
        denominator: usize,
    ) -> Result<f64> {
        let (sequences, labels) = part;
        let mut rng = self.dropout_rng.clone();
        let mut mode = Mode::Train(&mut rng);
        let encoded = replica.encode(sequences, &mut mode, Padding::Computed)?;
        let loss = task_loss_over(kind, &replica.model.task_logits(&encoded, &mut mode)?, labels, denominator)?;
        self.dropout_rng = rng;
        let store = loss.backward()?;
        self.grads = Some(replica.params.take_gradients(store));
        Ok(loss.to_dtype(DType::F64)?.to_scalar::<f64>()?)
    }

    fn optimizer_step(&mut self) -> Result<()> {
        match &self.grads {
            Some(grads) => self.adam.step(grads),
            None => Err(Error::Internal("optimizer_step called before any gradient was computed".into())),
        }
    }
}

/// The training state of a [`ModelHandle`]: per replica, Adam's state, a dropout stream and
/// the last gradients; the sum of gradients over replicas; the clipping norm. Every method
/// that trains takes the model it was made for.
#[derive(Debug)]
pub struct Trainer {
    replicas: Vec<ReplicaState>,
    gradient_sum: GradientSum,
    /// The global gradient norm steps are clipped to.
    clip_norm: Option<f64>,
}

impl Trainer {
    /// Checks that `replicas_on_cpu` replicas of a model of `config`, with their gradients and
    /// Adam's two moments, fit in the memory `limit`: a `RangeError`-kind error giving the
    /// estimate otherwise. Allocates nothing.
    pub fn check_fits(config: &BertConfig, replicas_on_cpu: usize, limit: Option<u64>) -> Result<()> {
        let what =
            format!("a model of {} parameters, with its gradients and Adam state,", memory::param_count(config)?);
        let bytes = replicas_on_cpu as u128 * memory::trainable_bytes(config)?;
        Ok(memory::check_fits("config", &what, bytes, limit)?)
    }

    /// The training state of `model` (Adam's moments at zero, the dropout streams at their
    /// seeds): refused, before anything is allocated, when it would not fit in the memory
    /// limit (see [`Trainer::check_fits`]), or when `options` are out of range.
    pub fn new(model: &ModelHandle, options: &TrainerOptions) -> Result<Self> {
        options.validate()?;
        model.check_holds_f32("train")?;
        Self::check_fits(model.config(), model.replicas_on_cpu(), model.host_limit())?;
        let replicas = model
            .replica_params()
            .map(|params| {
                Ok(ReplicaState {
                    adam: Adam::new(options.adam, params)?,
                    dropout_rng: SeededRng::with_stream(options.seed, DROPOUT_STREAM),
                    grads: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let gradient_sum = GradientSum::for_devices(&model.devices())?;
        Ok(Self { replicas, gradient_sum, clip_norm: options.clip_norm })
    }

    /// Adam updates taken so far.
    pub fn steps_taken(&self) -> u64 {
        self.replicas[0].adam.steps_taken()
    }

    /// Forward (dropout on) and backward of MLM + NSP of `model` on `batch`; the gradients
    /// are kept for [`Trainer::optimizer_step`] and [`Trainer::last_grad`]. No weight changes.
    /// Fails with [`Error::Diverged`], keeping no gradient, when a loss or a gradient is not
    /// finite.
    pub fn compute_gradients(&mut self, model: &ModelHandle, batch: &Batch) -> Result<StepLosses> {
        self.accumulate_gradients(model, std::slice::from_ref(batch))
    }

    /// [`Trainer::compute_gradients`] over several batches at once (gradient accumulation): each
    /// batch's losses are scaled by the denominators of all of them, and the gradients summed,
    /// so that the update is the one of a single batch of all their rows. Returns the losses of
    /// that batch. Then the gradients are clipped to `clip_norm` if one is set.
    pub fn accumulate_gradients(&mut self, model: &ModelHandle, batches: &[Batch]) -> Result<StepLosses> {
        if batches.is_empty() {
            return Err(InputError::range("batches", "no batch given").into());
        }
        for batch in batches {
            batch.validate(model.config())?;
            let s = &batch.sequences;
            model.check_pass(s.batch_size, s.seq_len, batch.num_preds * s.batch_size, true)?;
        }
        let scale = LossScale::of_all(batches);
        let mut losses = StepLosses { mlm: 0.0, nsp: 0.0 };
        let mut totals: Vec<Option<Gradients>> = self.replicas.iter().map(|_| None).collect();
        for batch in batches {
            let l = if self.replicas.len() == 1 {
                self.replicas[0].gradients(&model.replicas()[0], batch, scale)?
            } else {
                self.sharded_gradients(model, batch, scale)?
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
        if let Err(e) = self.check_sound(losses, model.config().vocab_size) {
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

    /// [`Error::Diverged`] naming the step and what went wrong: a loss that is not finite or is
    /// over [`DIVERGED_FACTOR`] times the loss of a uniform guess (ln of the vocabulary's size for
    /// MLM, ln 2 for NSP), or gradients (summed over replicas) of the last backward pass that
    /// are not finite.
    fn check_sound(&self, losses: StepLosses, vocab_size: usize) -> Result<()> {
        let step = self.steps_taken() + 1;
        let diverged = |what: String| {
            Err(Error::Diverged(format!("training diverged at step {step}: {what}; the weights were not updated")))
        };
        let guesses = [("MLM", losses.mlm, vocab_size as f64), ("NSP", losses.nsp, 2.0)];
        for (name, value, classes) in guesses {
            if !value.is_finite() {
                return diverged(format!("the {name} loss is {value}"));
            }
            let bound = DIVERGED_FACTOR * classes.ln();
            if value > bound {
                return diverged(format!(
                    "the {name} loss is {value:.4e}, over {DIVERGED_FACTOR} times a uniform guess's (ln {classes} = {:.3})",
                    classes.ln()
                ));
            }
        }
        self.check_gradients_finite()
    }

    /// A [`Error::Diverged`] when the last gradients hold a NaN or an infinity.
    fn check_gradients_finite(&self) -> Result<()> {
        let step = self.steps_taken() + 1;
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
            Some(sum) if !sum.is_finite() => Err(Error::Diverged(format!(
                "training diverged at step {step}: a gradient holds NaN or infinite values; the weights were not updated"
            ))),
            _ => Ok(()),
        }
    }

    /// Forward (dropout on) and backward of `model`'s task head on `sequences` and their
    /// `labels` (see [`TaskLabels`]); the gradients are kept as [`Trainer::compute_gradients`]
    /// keeps them (then clipped to `clip_norm` if set). Returns the loss.
    pub fn compute_task_gradients(
        &mut self,
        model: &ModelHandle,
        sequences: &Sequences,
        labels: &TaskLabels,
    ) -> Result<f64> {
        self.accumulate_task_gradients(model, &[(sequences.clone(), labels.clone())])
    }

    /// [`Trainer::compute_task_gradients`] over several batches at once (gradient
    /// accumulation), and over the model's devices (each a contiguous share of every batch's
    /// rows, the gradients summed): each part's loss is summed over what the whole step scores,
    /// so that the update is the one of a single batch of all their rows on one device. Returns
    /// that batch's loss. A loss or gradient that is not finite is [`Error::Diverged`], keeping
    /// no gradient.
    pub fn accumulate_task_gradients(&mut self, model: &ModelHandle, parts: &[TaskPart]) -> Result<f64> {
        let head = model.config().task.clone().ok_or_else(|| InputError::range("model", "has no task head"))?;
        if parts.is_empty() {
            return Err(InputError::range("batches", "no batch given").into());
        }
        for (sequences, labels) in parts {
            sequences.validate(model.config())?;
            labels.validate(&head, sequences)?;
            model.check_pass(sequences.batch_size, sequences.seq_len, 0, true)?;
        }
        let denominator: usize = parts.iter().map(|(_, labels)| labels.scored()).sum();
        let mut loss = 0.0;
        let mut totals: Vec<Option<Gradients>> = self.replicas.iter().map(|_| None).collect();
        for part in parts {
            loss += if self.replicas.len() == 1 {
                self.replicas[0].task_gradients(&model.replicas()[0], head.kind, part, denominator)?
            } else {
                self.sharded_task_gradients(model, head.kind, part, denominator)?
            };
            for (total, replica) in totals.iter_mut().zip(&mut self.replicas) {
                *total = Some(add_gradients(total.take(), replica.grads.take())?);
            }
        }
        for (replica, total) in self.replicas.iter_mut().zip(totals) {
            replica.grads = total;
        }
        let finite = if loss.is_finite() {
            self.check_gradients_finite()
        } else {
            Err(Error::Diverged(format!(
                "training diverged at step {}: the task loss is {loss}; the weights were not updated",
                self.steps_taken() + 1
            )))
        };
        if let Err(e) = finite {
            self.replicas.iter_mut().for_each(|r| r.grads = None);
            return Err(e);
        }
        if let Some(max) = self.clip_norm {
            self.clip_gradients(max)?;
        }
        Ok(loss)
    }

    /// A part of a task step split between the replicas (contiguous rows, a replica past the
    /// last row gets none), each one's gradients then replaced by their sum over replicas.
    fn sharded_task_gradients(
        &mut self,
        model: &ModelHandle,
        kind: TaskKind,
        (sequences, labels): &TaskPart,
        denominator: usize,
    ) -> Result<f64> {
        let b = sequences.batch_size;
        let n = self.replicas.len().min(b);
        let mut loss = 0.0;
        for (r, (state, replica)) in self.replicas.iter_mut().zip(model.replicas()).enumerate() {
            if r < n {
                let (start, end) = (r * b / n, (r + 1) * b / n);
                let shard = (sequences.rows(start, end), labels.rows(start, end, b));
                loss += state.task_gradients(replica, kind, &shard, denominator)?;
            } else {
                state.grads = Some(HashMap::new());
            }
        }
        self.sum_over_replicas(model)?;
        Ok(loss)
    }

    /// One training step of `model`'s task head: [`Trainer::compute_task_gradients`], then
    /// Adam. Returns the loss before the update.
    pub fn train_task_step(&mut self, model: &ModelHandle, sequences: &Sequences, labels: &TaskLabels) -> Result<f64> {
        self.train_task_step_accumulated(model, &[(sequences.clone(), labels.clone())])
    }

    /// One training step of `model`'s task head over several batches, their gradients
    /// accumulated (see [`Trainer::accumulate_task_gradients`]), then Adam.
    pub fn train_task_step_accumulated(&mut self, model: &ModelHandle, parts: &[TaskPart]) -> Result<f64> {
        let loss = self.accumulate_task_gradients(model, parts)?;
        self.optimizer_step()?;
        Ok(loss)
    }

    /// One Adam update (on every replica) from the gradients of the last
    /// [`Trainer::compute_gradients`].
    pub fn optimizer_step(&mut self) -> Result<()> {
        self.replicas.iter_mut().try_for_each(ReplicaState::optimizer_step)
    }

    /// One training step of `model`: gradients of MLM + NSP, then Adam. Returns the losses
    /// before the update.
    pub fn train_step(&mut self, model: &ModelHandle, batch: &Batch) -> Result<StepLosses> {
        self.train_step_accumulated(model, std::slice::from_ref(batch))
    }

    /// One training step of `model` over several batches, their gradients accumulated (see
    /// [`Trainer::accumulate_gradients`]), then Adam.
    pub fn train_step_accumulated(&mut self, model: &ModelHandle, batches: &[Batch]) -> Result<StepLosses> {
        let losses = self.accumulate_gradients(model, batches)?;
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
    fn sharded_gradients(&mut self, model: &ModelHandle, batch: &Batch, scale: LossScale) -> Result<StepLosses> {
        let b = batch.sequences.batch_size;
        let n = self.replicas.len().min(b);
        let mut losses = StepLosses { mlm: 0.0, nsp: 0.0 };
        for (r, (state, replica)) in self.replicas.iter_mut().zip(model.replicas()).enumerate() {
            if r < n {
                let l = state.gradients(replica, &batch.rows(r * b / n, (r + 1) * b / n), scale)?;
                losses.mlm += l.mlm;
                losses.nsp += l.nsp;
            } else {
                state.grads = Some(HashMap::new());
            }
        }
        self.sum_over_replicas(model)?;
        Ok(losses)
    }

    /// Replaces every replica's gradients by their sum over the replicas (a replica without a
    /// parameter's gradient adds zeros).
    fn sum_over_replicas(&mut self, model: &ModelHandle) -> Result<()> {
        let mut sums: Vec<Gradients> = self.replicas.iter().map(|_| HashMap::new()).collect();
        let vars: Vec<Vec<_>> = model.replica_params().map(|p| p.iter().map(|(_, v)| v.clone()).collect()).collect();
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
        Ok(())
    }

    /// The gradient of parameter `name` from the last [`Trainer::compute_gradients`] (summed
    /// over replicas) of `model`, if any.
    pub fn last_grad(&self, model: &ModelHandle, name: &str) -> Result<Option<Tensor>> {
        let id = model.params().get(name)?.id();
        Ok(self.replicas[0].grads.as_ref().and_then(|g| g.get(&id).cloned()))
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
}
