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
use crate::model::{BertModel, Mode};
use crate::params::{Gradients, ParamStore};
use crate::pooling::{self, Pooling};
use crate::rng::SeededRng;

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
}

impl Default for TrainerOptions {
    /// Seed 0, textbook Adam, f32 on the CPU.
    fn default() -> Self {
        Self { seed: 0, adam: AdamConfig::default(), dtype: DType::F32, devices: vec![Device::Cpu], memory_limit: None }
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

    /// `[B, 1, 1, L]` attention mask of `sequences`.
    fn key_mask(&self, sequences: &Sequences) -> Result<Tensor> {
        let like = Tensor::zeros((), self.params.dtype(), self.params.device())?;
        BertModel::key_mask(&sequences.valid_lens(), sequences.seq_len, &like)
    }

    /// The contextual embedding of every token of checked `sequences`: `[B, L, hidden]`.
    fn encode(&self, sequences: &Sequences, mode: &mut Mode) -> Result<Tensor> {
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
        Ok(Self { config, replicas, gradient_sum, host_limit })
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
    /// [`Trainer::optimizer_step`] and [`Trainer::last_grad`]. No weight changes.
    /// Fails with [`Error::Diverged`], keeping no gradient, when a loss or a gradient is not
    /// finite.
    pub fn compute_gradients(&mut self, batch: &Batch) -> Result<StepLosses> {
        batch.validate(&self.config)?;
        let s = &batch.sequences;
        self.check_pass(s.batch_size, s.seq_len, batch.num_preds * s.batch_size, true)?;
        let scale = LossScale::of(batch);
        let losses = if self.replicas.len() == 1 {
            self.replicas[0].gradients(batch, scale)?
        } else {
            self.sharded_gradients(batch, scale)?
        };
        if let Err(e) = self.check_finite(losses) {
            self.replicas.iter_mut().for_each(|r| r.grads = None);
            return Err(e);
        }
        Ok(losses)
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
        let losses = self.compute_gradients(batch)?;
        self.optimizer_step()?;
        Ok(losses)
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
