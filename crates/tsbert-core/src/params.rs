//! Named, trainable parameters in creation order, and the gradients of a backward pass.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, TensorId, Var};

use crate::error::{InputError, Result};
use crate::rng::SeededRng;

/// How a parameter starts.
#[derive(Debug, Clone, Copy)]
pub enum Init {
    /// N(0, 1), PyTorch's default for embeddings (and the textbook's position table).
    StandardNormal,
    /// U(-1/√fan_in, 1/√fan_in), PyTorch's default for a linear layer's weight and bias.
    FanIn(usize),
    /// Every entry equal to this value (layer-norm scale 1, shift 0).
    Constant(f64),
}

/// The gradients of one backward pass, by parameter (its tensor's id).
pub type Gradients = HashMap<TensorId, Tensor>;

/// How many writes to parameters there have been, of any model, so far: a copy of weights
/// made when it read `n` is current while it still reads `n` (see
/// [`crate::model::inference::PackedWeights`]). Every write bumps it after writing.
static WEIGHTS_WRITTEN: AtomicU64 = AtomicU64::new(0);

/// The count of parameter writes so far (read it before copying weights).
pub(crate) fn weights_written() -> u64 {
    WEIGHTS_WRITTEN.load(Ordering::SeqCst)
}

/// Records that a parameter has just been written.
pub(crate) fn note_weights_written() {
    WEIGHTS_WRITTEN.fetch_add(1, Ordering::SeqCst);
}

/// The model's parameters, by name, in the order they were created. Names follow the
/// textbook's PyTorch module paths (`encoder.blks.0.attention.W_q.weight`, ...), so a
/// checkpoint maps one to one.
#[derive(Debug)]
pub struct ParamStore {
    entries: Vec<(String, Var)>,
    rng: SeededRng,
    dtype: DType,
    device: Device,
    /// `Some` for a store that records names and shapes only (see [`ParamStore::shapes_only`]).
    recorded: Option<Vec<(String, Vec<usize>)>>,
    /// Parameters decoupled weight decay leaves alone (biases and layer norms, BERT's recipe).
    no_decay: std::collections::HashSet<String>,
    /// Values to create parameters with instead of drawing them, by name (see
    /// [`ParamStore::with_values`]).
    given: HashMap<String, Tensor>,
    /// The shapes of the parameters whose values this store does not hold (see
    /// [`ParamStore::held_elsewhere`]), by name.
    elsewhere: HashMap<String, Vec<usize>>,
}

impl ParamStore {
    /// An empty store whose initial values are drawn from `seed`.
    pub fn new(seed: u64, dtype: DType, device: Device) -> Self {
        Self {
            entries: Vec::new(),
            rng: SeededRng::new(seed),
            dtype,
            device,
            recorded: None,
            no_decay: Default::default(),
            given: HashMap::new(),
            elsewhere: HashMap::new(),
        }
    }

    /// This store, creating the parameters named in `values` with those values (of the
    /// shapes they will be created with, already checked) instead of drawing them; each is
    /// dropped from `values` as its parameter takes it, so that the two sets of weights do not
    /// both exist whole. A value that is a variable's storage already (of the store's dtype
    /// and device) becomes the parameter without a copy: it must not be shared.
    pub fn with_values(self, values: HashMap<String, Tensor>) -> Self {
        Self { given: values, ..self }
    }

    /// This store, holding no values for the parameters named in `shapes` (with their shapes):
    /// each is created as an empty variable, counted at its shape, and refused by
    /// [`ParamStore::get`] and [`ParamStore::set`] with a message saying so. A model loaded to
    /// run in q8 holds its encoder's dense weights and token embeddings in int8 only, in its
    /// inference pass, and one loaded to infer only its dense weights packed for that pass (see
    /// [`crate::model::inference::HeldWeights`]): the f32 parameters never exist whole.
    pub fn held_elsewhere(self, shapes: HashMap<String, Vec<usize>>) -> Self {
        Self { elsewhere: shapes, ..self }
    }

    /// Whether the store holds the values of all its parameters (none is
    /// [`ParamStore::held_elsewhere`]).
    pub fn holds_all_values(&self) -> bool {
        self.elsewhere.is_empty()
    }

    /// A store that records the name and shape of every parameter created and allocates no
    /// value: what a model of some config would hold, known before building it (the tensors
    /// it hands out are empty placeholders).
    pub fn shapes_only() -> Self {
        Self { recorded: Some(Vec::new()), ..Self::new(0, DType::F32, Device::Cpu) }
    }

    /// The names and shapes recorded by a [`ParamStore::shapes_only`] store, in creation order.
    pub fn recorded_shapes(self) -> Vec<(String, Vec<usize>)> {
        self.recorded.unwrap_or_default()
    }

    /// Creates the parameter `name` of `shape`, drawn as `init` says, and returns its tensor
    /// (which shares storage with the trainable variable).
    pub fn create(&mut self, name: &str, shape: &[usize], init: Init) -> Result<Tensor> {
        if let Some(recorded) = &mut self.recorded {
            recorded.push((name.to_string(), shape.to_vec()));
            return Ok(Tensor::zeros(0, self.dtype, &self.device)?);
        }
        if self.elsewhere.contains_key(name) {
            let var = Var::zeros(0, self.dtype, &self.device)?;
            let tensor = var.as_tensor().clone();
            self.entries.push((name.to_string(), var));
            return Ok(tensor);
        }
        let value = match (self.given.remove(name), init) {
            (Some(given), _) => given.to_dtype(self.dtype)?.to_device(&self.device)?,
            (None, Init::StandardNormal) => self.rng.normal(shape, 1.0, self.dtype, &self.device)?,
            (None, Init::FanIn(fan_in)) => {
                self.rng.uniform(shape, 1.0 / (fan_in as f64).sqrt(), self.dtype, &self.device)?
            }
            (None, Init::Constant(c)) => Tensor::full(c, shape, &self.device)?.to_dtype(self.dtype)?,
        };
        let var = Var::from_tensor(&value)?;
        let tensor = var.as_tensor().clone();
        self.entries.push((name.to_string(), var));
        Ok(tensor)
    }

    /// The gradients of these parameters out of a backward pass's `store`; those of the
    /// intermediate tensors are dropped with it.
    pub fn take_gradients(&self, mut store: GradStore) -> Gradients {
        self.entries.iter().filter_map(|(_, var)| store.remove(var.as_tensor()).map(|g| (var.id(), g))).collect()
    }

    /// Marks parameter `name` as one that decoupled weight decay leaves alone (a bias, a layer
    /// norm's scale or shift).
    pub fn exclude_from_decay(&mut self, name: &str) {
        self.no_decay.insert(name.to_string());
    }

    /// Whether decoupled weight decay applies to parameter `name`.
    pub fn decays(&self, name: &str) -> bool {
        !self.no_decay.contains(name)
    }

    /// All parameters in creation order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// The parameter called `name`; one [`ParamStore::held_elsewhere`] is an error saying so.
    pub fn get(&self, name: &str) -> Result<&Var> {
        if self.elsewhere.contains_key(name) {
            return Err(InputError::range(
                "name",
                format!(
                    "'{name}' is held only by the model's inference pass (the model was loaded with dtype 'q8' or to infer only): load it without either to read or change its f32 weights"
                ),
            )
            .into());
        }
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| InputError::range("name", format!("no parameter called '{name}'")).into())
    }

    /// Replaces the values of `name` with `values` (row-major, same element count).
    pub fn set(&self, name: &str, values: &[f32]) -> Result<()> {
        let var = self.get(name)?;
        let dims = var.dims().to_vec();
        let expected: usize = dims.iter().product();
        if values.len() != expected {
            return Err(InputError::range(
                "values",
                format!("'{name}' has {expected} values ({dims:?}), got {}", values.len()),
            )
            .into());
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(InputError::range(format!("values[{i}]"), format!("{} is not finite", values[i])).into());
        }
        let t = Tensor::from_slice(values, dims, &Device::Cpu)?.to_dtype(self.dtype)?.to_device(&self.device)?;
        var.set(&t)?;
        note_weights_written();
        Ok(())
    }

    /// Total number of scalar parameters (those [`ParamStore::held_elsewhere`] at their shapes).
    pub fn count(&self) -> usize {
        let elsewhere: usize = self.elsewhere.values().map(|shape| shape.iter().product::<usize>()).sum();
        self.entries.iter().map(|(_, v)| v.elem_count()).sum::<usize>() + elsewhere
    }

    /// Bytes of the values the store holds (none for those [`ParamStore::held_elsewhere`]).
    pub fn held_bytes(&self) -> usize {
        self.entries.iter().map(|(_, v)| v.elem_count()).sum::<usize>() * self.dtype.size_in_bytes()
    }

    /// The element type of every parameter.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device every parameter lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }
}
