//! Data-parallel training: one replica a device, each batch split across them, gradients
//! summed over replicas, and one identical Adam step on every replica (the textbook's
//! `DataParallel`, done so that N replicas give the same update as one device on the whole
//! batch).

use candle_core::Device;

use crate::batch::Batch;
use crate::config::BertConfig;
use crate::error::{InputError, Result};
use crate::loss::LossScale;
use crate::trainer::{StepLosses, Trainer, TrainerOptions};

/// Identical replicas of one model (same seed, so same weights), one a device.
#[derive(Debug)]
pub struct DataParallel {
    replicas: Vec<Trainer>,
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
        Ok(Self { replicas })
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
    /// gradients are summed (the all-reduce, here through replica 0's device) and every
    /// replica takes the same Adam step. Returns the whole batch's losses.
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
                // the summed gradients to replace, so that it takes the same step
                replica.compute_gradients_scaled(&batch.rows(0, 1), scale)?;
            }
        }
        let names: Vec<String> = self.replicas[0].params().iter().map(|(name, _)| name.to_string()).collect();
        let home = self.replicas[0].params().device().clone();
        for name in &names {
            let mut sum: Option<candle_core::Tensor> = None;
            for replica in &self.replicas[..n] {
                if let Some(g) = replica.last_grad(name)? {
                    let g = g.to_device(&home)?;
                    sum = Some(match sum {
                        Some(s) => (s + g)?,
                        None => g,
                    });
                }
            }
            if let Some(sum) = sum {
                for replica in &mut self.replicas {
                    replica.replace_last_grad(name, &sum)?;
                }
            }
        }
        for replica in &mut self.replicas {
            replica.optimizer_step()?;
        }
        Ok(losses)
    }
}
