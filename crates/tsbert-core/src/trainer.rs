//! One model with its optimizer state: training steps and encoding.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor};

use crate::adam::{Adam, AdamConfig};
use crate::batch::{Batch, Sequences};
use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::loss::{nsp_loss, weighted_mlm_loss, LossScale};
use crate::model::{BertModel, Mode};
use crate::params::ParamStore;
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
    /// Where the model lives.
    pub device: Device,
}

impl Default for TrainerOptions {
    /// Seed 0, textbook Adam, f32 on the CPU.
    fn default() -> Self {
        Self { seed: 0, adam: AdamConfig::default(), dtype: DType::F32, device: Device::Cpu }
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

/// A BERT model, its Adam state and its dropout stream.
#[derive(Debug)]
pub struct Trainer {
    config: BertConfig,
    params: ParamStore,
    model: BertModel,
    adam: Adam,
    dropout_rng: SeededRng,
    last_grads: Option<GradStore>,
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

impl Trainer {
    /// A freshly initialised model: the same config and seed give bit-identical weights.
    pub fn new(config: BertConfig, options: TrainerOptions) -> Result<Self> {
        config.validate()?;
        let mut params = ParamStore::new(options.seed, options.dtype, options.device.clone());
        let model = BertModel::new(&mut params, &config)?;
        let adam = Adam::new(options.adam, &params)?;
        let dropout_rng = SeededRng::with_stream(options.seed, DROPOUT_STREAM);
        Ok(Self { config, params, model, adam, dropout_rng, last_grads: None })
    }

    /// The model's sizes.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The trainable parameters, by name.
    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    /// The optimizer state.
    pub fn adam(&self) -> &Adam {
        &self.adam
    }

    fn key_mask(&self, sequences: &Sequences) -> Result<Tensor> {
        let like = Tensor::zeros((), self.params.dtype(), self.params.device())?;
        BertModel::key_mask(&sequences.valid_lens(), sequences.seq_len, &like)
    }

    /// Forward pass and both losses, divided by `scale`; padded predictions are skipped.
    fn losses(&self, batch: &Batch, scale: LossScale, mode: &mut Mode) -> Result<(Tensor, Tensor)> {
        let device = self.params.device();
        let (tokens, segments) = batch.sequences.id_tensors(device)?;
        let encoded = self.model.encode(&tokens, &segments, &self.key_mask(&batch.sequences)?, mode)?;
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

    /// Forward (dropout on) and backward of MLM + NSP on `batch`; the gradients are kept
    /// for [`Trainer::optimizer_step`] and [`Trainer::last_grad`]. No weight changes.
    pub fn compute_gradients(&mut self, batch: &Batch) -> Result<StepLosses> {
        self.compute_gradients_scaled(batch, LossScale::of(batch))
    }

    /// [`Trainer::compute_gradients`] with the losses divided by `scale` rather than by
    /// `batch`'s own denominators (a data-parallel shard passes its whole batch's).
    pub fn compute_gradients_scaled(&mut self, batch: &Batch, scale: LossScale) -> Result<StepLosses> {
        batch.validate(&self.config)?;
        let mut rng = self.dropout_rng.clone();
        let (mlm, nsp) = self.losses(batch, scale, &mut Mode::Train { rng: &mut rng, p: self.config.dropout })?;
        self.dropout_rng = rng;
        let grads = (&mlm + &nsp)?.backward()?;
        self.last_grads = Some(grads);
        Ok(StepLosses { mlm: scalar(&mlm)?, nsp: scalar(&nsp)? })
    }

    /// One Adam update from the gradients of the last [`Trainer::compute_gradients`].
    pub fn optimizer_step(&mut self) -> Result<()> {
        match &self.last_grads {
            Some(grads) => self.adam.step(&self.params, grads),
            None => Err(Error::Internal("optimizer_step called before any gradient was computed".into())),
        }
    }

    /// One training step: gradients of MLM + NSP, then Adam. Returns the losses before the
    /// update.
    pub fn train_step(&mut self, batch: &Batch) -> Result<StepLosses> {
        let losses = self.compute_gradients(batch)?;
        self.optimizer_step()?;
        Ok(losses)
    }

    /// The losses of `batch` with dropout off, no gradient kept.
    pub fn eval_losses(&self, batch: &Batch) -> Result<StepLosses> {
        batch.validate(&self.config)?;
        let (mlm, nsp) = self.losses(batch, LossScale::of(batch), &mut Mode::Eval)?;
        Ok(StepLosses { mlm: scalar(&mlm)?, nsp: scalar(&nsp)? })
    }

    /// Encoder output, all `B·P` MLM logits, NSP logits and losses, dropout off.
    pub fn evaluate(&self, batch: &Batch) -> Result<ForwardOutputs> {
        batch.validate(&self.config)?;
        let device = self.params.device();
        let s = &batch.sequences;
        let encoded = self.encode(s)?;
        let all = batch.mlm_targets(false, self.params.dtype(), device)?;
        let mlm_logits = self.model.mlm_logits(&encoded, &all.flat_positions)?;
        let scale = LossScale::of(batch);
        let mlm = weighted_mlm_loss(&mlm_logits, &all.labels, &all.weights, scale.mlm)?;
        let nsp_logits = self.model.nsp_logits(&encoded)?;
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
        let (tokens, segments) = sequences.id_tensors(self.params.device())?;
        self.model.encode(&tokens, &segments, &self.key_mask(sequences)?, &mut Mode::Eval)
    }

    /// Replaces the kept gradient of parameter `name` (a data-parallel all-reduce puts the
    /// sum over replicas here before the optimizer step).
    pub fn replace_last_grad(&mut self, name: &str, grad: &Tensor) -> Result<()> {
        let var = self.params.get(name)?.clone();
        let grads = self
            .last_grads
            .as_mut()
            .ok_or_else(|| Error::Internal("replace_last_grad called before any gradient was computed".into()))?;
        grads.insert(var.as_tensor(), grad.to_device(var.device())?);
        Ok(())
    }

    /// The gradient of parameter `name` from the last [`Trainer::compute_gradients`], if any.
    pub fn last_grad(&self, name: &str) -> Result<Option<Tensor>> {
        let var = self.params.get(name)?;
        Ok(self.last_grads.as_ref().and_then(|g| g.get(var.as_tensor()).cloned()))
    }
}
