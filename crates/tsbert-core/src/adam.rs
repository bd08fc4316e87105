//! Adam with bias correction (Kingma & Ba), as `torch.optim.Adam`: optional L2 weight decay
//! added to the gradient, no decoupled decay.

use candle_core::{Tensor, Var};

use crate::error::{InputError, Result};
use crate::params::{Gradients, ParamStore};

/// Adam's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first-moment estimate.
    pub beta1: f64,
    /// Decay of the second-moment estimate.
    pub beta2: f64,
    /// Added to the denominator's square root.
    pub eps: f64,
    /// L2 penalty added to each gradient (`g + wd·θ`); 0 for plain Adam.
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    /// β1 0.9, β2 0.999, ε 1e-8, no weight decay, lr 0.01 (the textbook's).
    fn default() -> Self {
        Self { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
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
/// parameter with another's moments).
#[derive(Debug)]
struct Moments {
    var: Var,
    m: Tensor,
    v: Tensor,
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
            .map(|(_, var)| Ok(Moments { var: var.clone(), m: var.zeros_like()?, v: var.zeros_like()? }))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { config, step: 0, params })
    }

    /// Number of updates taken so far.
    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    /// One update of every parameter that has a gradient in `grads`:
    /// `m ← β1 m + (1-β1) g`, `v ← β2 v + (1-β2) g²`,
    /// `θ ← θ - lr · (m / (1-β1ᵗ)) / (√(v / (1-β2ᵗ)) + ε)`.
    pub fn step(&mut self, grads: &Gradients) -> Result<()> {
        let AdamConfig { lr, beta1, beta2, eps, weight_decay } = self.config;
        self.step += 1;
        let t = self.step as i32;
        let m_scale = 1.0 / (1.0 - beta1.powi(t));
        let v_scale = 1.0 / (1.0 - beta2.powi(t));
        for Moments { var, m, v } in &mut self.params {
            let Some(grad) = grads.get(&var.id()) else { continue };
            let grad = if weight_decay > 0.0 { (grad + (var.as_tensor() * weight_decay)?)? } else { grad.clone() };
            *m = ((&*m * beta1)? + (&grad * (1.0 - beta1))?)?;
            *v = ((&*v * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
            let denom = ((&*v * v_scale)?.sqrt()? + eps)?;
            let update = ((&*m * (lr * m_scale))? / denom)?;
            var.set(&(var.as_tensor() - update)?)?;
        }
        Ok(())
    }
}
