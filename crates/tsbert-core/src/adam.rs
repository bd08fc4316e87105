//! Adam with bias correction (Kingma & Ba), as `torch.optim.Adam`: weight decay added to the
//! gradient (L2); or, decoupled, as `torch.optim.AdamW`, sparing biases and layer norms (BERT's
//! recipe).

use std::collections::HashMap;

use candle_core::{CpuStorage, DType, Device, Tensor, Var};

use crate::error::{InputError, Result};
use crate::ops::adam_update::{composed_adam_update, fused_adam_update, AdamCoefficients};
use crate::ops::runs_fused;
use crate::params::{Gradients, ParamStore};

/// Adam's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate (a schedule may change it between steps, see [`Adam::set_lr`]).
    pub lr: f64,
    /// Decay of the first-moment estimate.
    pub beta1: f64,
    /// Decay of the second-moment estimate.
    pub beta2: f64,
    /// Added to the denominator's square root.
    pub eps: f64,
    /// Weight decay; 0 for plain Adam.
    pub weight_decay: f64,
    /// `false`: L2, added to each gradient (`g + wd·θ`, `torch.optim.Adam`); `true`: decoupled
    /// (`θ ← θ·(1 - lr·wd)` before the update, `torch.optim.AdamW`), biases and layer norms left
    /// alone.
    pub decoupled: bool,
}

impl Default for AdamConfig {
    /// β1 0.9, β2 0.999, ε 1e-8, no weight decay, lr 0.01 (the textbook's).
    fn default() -> Self {
        Self { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, decoupled: false }
    }
}

impl AdamConfig {
    /// Checks every field: lr > 0, betas in [0, 1), eps > 0, weight decay ≥ 0, all finite.
    pub fn validate(&self) -> Result<(), InputError> {
        let checks = [
            ("lr", self.lr, self.lr > 0.0),
            ("beta1", self.beta1, (0.0..1.0).contains(&self.beta1)),
            ("beta2", self.beta2, (0.0..1.0).contains(&self.beta2)),
            ("eps", self.eps, self.eps > 0.0),
            ("weightDecay", self.weight_decay, self.weight_decay >= 0.0),
        ];
        for (field, value, ok) in checks {
            if !ok || !value.is_finite() {
                return Err(InputError::range(field, format!("{value} is not allowed")));
            }
        }
        Ok(())
    }
}

/// One parameter with its two moment estimates (kept together, so no order can pair a
/// parameter with another's moments) and whether decoupled decay applies to it.
#[derive(Debug)]
struct Moments {
    name: String,
    var: Var,
    estimates: Estimates,
    decays: bool,
}

/// The two moment estimates of a parameter: plain host values beside a contiguous CPU
/// parameter of f32 or f64 (updated in place by the fused kernel), else tensors on its device.
#[derive(Debug)]
enum Estimates {
    Host { m: CpuStorage, v: CpuStorage },
    Device { m: Tensor, v: Tensor },
}

impl Estimates {
    /// Zero estimates for `var`.
    fn zeros(var: &Var) -> Result<Self> {
        Self::from_tensors(var, var.zeros_like()?, var.zeros_like()?)
    }

    /// Estimates from `m` and `v` (of `var`'s shape, dtype and device).
    fn from_tensors(var: &Var, m: Tensor, v: Tensor) -> Result<Self> {
        if !runs_fused(var) || !var.is_contiguous() {
            return Ok(Self::Device { m, v });
        }
        let host = |t: Tensor| -> Result<CpuStorage> {
            let t = t.flatten_all()?;
            Ok(match var.dtype() {
                DType::F32 => CpuStorage::F32(t.to_vec1()?),
                _ => CpuStorage::F64(t.to_vec1()?),
            })
        };
        Ok(Self::Host { m: host(m)?, v: host(v)? })
    }

    /// Both estimates as tensors of `var`'s shape (copies of host values).
    fn tensors(&self, var: &Var) -> Result<(Tensor, Tensor)> {
        Ok(match self {
            Self::Device { m, v } => (m.copy()?, v.copy()?),
            Self::Host { m, v } => {
                let tensor = |s: &CpuStorage| -> Result<Tensor> {
                    Ok(match s {
                        CpuStorage::F64(x) => Tensor::from_slice(x, var.shape(), &Device::Cpu)?,
                        other => Tensor::from_slice(other.as_slice::<f32>()?, var.shape(), &Device::Cpu)?,
                    })
                };
                (tensor(m)?, tensor(v)?)
            }
        })
    }
}

/// Adam's state: the step count and both moment estimates of every parameter.
#[derive(Debug)]
pub struct Adam {
    config: AdamConfig,
    step: u64,
    params: Vec<Moments>,
}

impl Adam {
    /// Fresh state (zero moments) for every parameter of `params`.
    pub fn new(config: AdamConfig, params: &ParamStore) -> Result<Self> {
        config.validate()?;
        let params = params
            .iter()
            .map(|(name, var)| {
                Ok(Moments {
                    name: name.to_string(),
                    var: var.clone(),
                    estimates: Estimates::zeros(var)?,
                    decays: params.decays(name),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { config, step: 0, params })
    }

    /// Number of updates taken so far.
    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    /// The learning rate of the next updates (a schedule's value for the step).
    pub fn set_lr(&mut self, lr: f64) -> Result<(), InputError> {
        AdamConfig { lr, ..self.config }.validate()?;
        self.config.lr = lr;
        Ok(())
    }

    /// One update of every parameter that has a gradient in `grads`:
    /// `m ← β1 m + (1-β1) g`, `v ← β2 v + (1-β2) g²`,
    /// `θ ← θ - lr · (m / (1-β1ᵗ)) / (√(v / (1-β2ᵗ)) + ε)`, with weight decay as configured.
    pub fn step(&mut self, grads: &Gradients) -> Result<()> {
        let AdamConfig { lr, beta1, beta2, eps, weight_decay, decoupled } = self.config;
        self.step += 1;
        let t = self.step as i32;
        let base = AdamCoefficients {
            beta1,
            beta2,
            step_size: lr / (1.0 - beta1.powi(t)),
            v_scale: 1.0 / (1.0 - beta2.powi(t)),
            eps,
            l2: if decoupled { 0.0 } else { weight_decay },
            shrink: 1.0,
        };
        for Moments { var, estimates, decays, .. } in &mut self.params {
            let Some(grad) = grads.get(&var.id()) else { continue };
            let shrink = if decoupled && *decays { 1.0 - lr * weight_decay } else { 1.0 };
            let c = AdamCoefficients { shrink, ..base };
            match estimates {
                Estimates::Host { m, v } => fused_adam_update(var, grad, m, v, &c)?,
                Estimates::Device { m, v } => composed_adam_update(var, grad, m, v, &c)?,
            }
        }
        Ok(())
    }

    /// The step count and both moments of every parameter by name (`m.<name>`, `v.<name>`): what
    /// a checkpoint keeps to resume.
    pub fn state(&self) -> Result<(u64, HashMap<String, Tensor>)> {
        let tensors = self
            .params
            .iter()
            .map(|p| {
                let (m, v) = p.estimates.tensors(&p.var)?;
                Ok([(format!("m.{}", p.name), m), (format!("v.{}", p.name), v)])
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        Ok((self.step, tensors))
    }

    /// Takes the step count and the moments back from [`Adam::state`]'s `tensors` (on the CPU;
    /// checked to hold every parameter's, of its shape, finite, before anything changes).
    pub fn restore(&mut self, step: u64, tensors: &HashMap<String, Tensor>) -> Result<()> {
        let mut found = Vec::new();
        for p in &self.params {
            let get = |kind: &str| {
                let key = format!("{kind}.{}", p.name);
                let t = tensors
                    .get(&key)
                    .ok_or_else(|| crate::Error::Checkpoint(format!("optimizer state: '{key}' is missing")))?;
                if t.dims() != p.var.dims() {
                    return Err(crate::Error::Checkpoint(format!(
                        "optimizer state: '{key}' has shape {:?}, expected {:?}",
                        t.dims(),
                        p.var.dims()
                    )));
                }
                let finite = t.to_dtype(DType::F64)?.abs()?.sum_all()?.to_scalar::<f64>()?.is_finite();
                if !finite {
                    return Err(crate::Error::Checkpoint(format!(
                        "optimizer state: '{key}' holds NaN or infinite values"
                    )));
                }
                Ok(t.to_dtype(p.var.dtype())?.to_device(p.var.device())?)
            };
            found.push((get("m")?, get("v")?));
        }
        for (p, (m, v)) in self.params.iter_mut().zip(found) {
            p.estimates = Estimates::from_tensors(&p.var, m, v)?;
        }
        self.step = step;
        Ok(())
    }
}
