//! Data-parallel training: one replica a device, each batch split across them, gradients
//! summed over replicas (NCCL all-reduce over GPUs, see [`crate::gradient_sum`]), and one
//! identical Adam step on every replica (the textbook's
//! `DataParallel`, done so that N replicas give the same update as one device on the whole
//! batch).

use candle_core::Device;

use crate::batch::Batch;
use crate::config::BertConfig;
use crate::error::{InputError, Result};
use crate::gradient_sum::GradientSum;
use crate::loss::LossScale;
use crate::trainer::{StepLosses, Trainer, TrainerOptions};

/// Identical replicas of one model (same seed, so same weights), one a device.
#[derive(Debug)]
pub struct DataParallel {
    replicas: Vec<Trainer>,
    gradient_sum: GradientSum,
}

impl DataParallel {
    /// One replica of `config` on each of `devices`, all initialised from `options.seed`.
    pub fn new(config: BertConfig, options: TrainerOptions, devices: &[Device]) -> Result<Self> {
        if devices.is_empty() {
            return Err(InputError::range("device", "no device given").into());
        }
        let replicas = devices
            .iter()
            .map(|d| Trainer::new(config.clone(), TrainerOptions { device: d.clone(), ..options.clone() }))
            .collect::<Result<Vec<_>>>()?;
        let gradient_sum = GradientSum::for_devices(devices)?;
        Ok(Self { replicas, gradient_sum })
    }

    /// The replicas (replica 0 serves encoding and parameter reads).
    pub fn replicas(&self) -> &[Trainer] {
        &self.replicas
    }

    /// Replica 0: every replica holds the same weights, so it answers reads and encodes.
    pub fn primary(&self) -> &Trainer {
        &self.replicas[0]
    }

    /// Sets parameter `name` on every replica.
    pub fn set_param(&self, name: &str, values: &[f32]) -> Result<()> {
        self.replicas.iter().try_for_each(|r| r.params().set(name, values))
    }

    /// Loads a safetensors weights file into every replica (checked fully first, see
    /// [`crate::checkpoint::load_weights`]).
    pub fn load_weights(&self, path: &std::path::Path) -> Result<()> {
        self.replicas.iter().try_for_each(|r| crate::checkpoint::load_weights(r.params(), path))
    }

    /// Splits `batch` into contiguous shards, one a replica; each replica computes the
    /// gradients of its shard's losses scaled by the whole batch's denominators; the
    /// gradients are all-reduced (summed, the sum given to every replica) and every replica
    /// takes the same Adam step. Returns the whole batch's losses.
    pub fn train_step(&mut self, batch: &Batch) -> Result<StepLosses> {
        batch.validate(self.replicas[0].config())?;
        let scale = LossScale::of(batch);
        let b = batch.sequences.batch_size;
        let n = self.replicas.len().min(b);
        let mut losses = StepLosses { mlm: 0.0, nsp: 0.0 };
        for (r, replica) in self.replicas.iter_mut().enumerate() {
            if r < n {
                let l = replica.compute_gradients_scaled(&batch.rows(r * b / n, (r + 1) * b / n), scale)?;
                losses.mlm += l.mlm;
                losses.nsp += l.nsp;
            } else {
                // fewer rows than replicas: an idle replica still needs a gradient store for
                // the summed gradients to replace, so that it takes the same step; it
                // contributes zeros to the sums
                replica.compute_gradients_scaled(&batch.rows(0, 1), scale)?;
            }
        }
        let names: Vec<String> = self.replicas[0].params().iter().map(|(name, _)| name.to_string()).collect();
        for name in &names {
            let grads = self
                .replicas
                .iter()
                .enumerate()
                .map(|(r, replica)| Ok(if r < n { replica.last_grad(name)? } else { None }))
                .collect::<Result<Vec<_>>>()?;
            if grads.iter().all(Option::is_none) {
                continue;
            }
            let grads = grads
                .into_iter()
                .zip(&self.replicas)
                .map(|(g, replica)| match g {
                    Some(g) => Ok(g),
                    None => Ok(replica.params().get(name)?.as_tensor().zeros_like()?),
                })
                .collect::<Result<Vec<_>>>()?;
            let sums = self.gradient_sum.sum(&grads)?;
            for (replica, sum) in self.replicas.iter_mut().zip(&sums) {
                replica.replace_last_grad(name, sum)?;
            }
        }
        for replica in &mut self.replicas {
            replica.optimizer_step()?;
        }
        Ok(losses)
    }
}
