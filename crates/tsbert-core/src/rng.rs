//! The project's own seeded random generator. candle's CPU generator cannot be seeded, so
//! initial weights and dropout masks are drawn here and uploaded as tensors.

use candle_core::{DType, Device, Shape, Tensor};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use crate::error::Result;

/// Entries of a dropout mask a task draws.
const WORDS_A_TASK: usize = 1 << 16;

/// A reproducible stream of random numbers (ChaCha8): the same seed gives the same stream
/// on every platform.
#[derive(Debug, Clone)]
pub struct SeededRng(ChaCha8Rng);

impl SeededRng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A tensor of `shape` drawn from N(0, std²).
    pub fn normal(&mut self, shape: impl Into<Shape>, std: f64, dtype: DType, device: &Device) -> Result<Tensor> {
        let shape = shape.into();
        let values: Vec<f64> = (0..shape.elem_count()).map(|_| std * self.0.sample::<f64, _>(StandardNormal)).collect();
        Ok(Tensor::from_vec(values, shape, &Device::Cpu)?.to_dtype(dtype)?.to_device(device)?)
    }

    /// A tensor of `shape` drawn from U(-bound, bound).
    pub fn uniform(&mut self, shape: impl Into<Shape>, bound: f64, dtype: DType, device: &Device) -> Result<Tensor> {
        let shape = shape.into();
        let values: Vec<f64> = (0..shape.elem_count()).map(|_| self.0.random_range(-bound..bound)).collect();
        Ok(Tensor::from_vec(values, shape, &Device::Cpu)?.to_dtype(dtype)?.to_device(device)?)
    }

    /// An inverted-dropout mask of `shape`: each entry is 0 with probability `p`, else
    /// 1 / (1 - p), so that `x * mask` keeps the expected value of `x`. Entry `i` is decided
    /// by the stream's `i`-th next 32-bit word (below `p · 2³²`: dropped), so tasks draw their
    /// parts of the mask in parallel from their own place in the stream, and the mask does not
    /// depend on the number of threads.
    pub fn dropout_mask(&mut self, shape: impl Into<Shape>, p: f64, dtype: DType, device: &Device) -> Result<Tensor> {
        let shape = shape.into();
        let n = shape.elem_count();
        let keep = (1.0 / (1.0 - p)) as f32;
        let threshold = (p * 4_294_967_296.0) as u64;
        let start = self.0.get_word_pos();
        let mut values = vec![0f32; n];
        let stream = &self.0;
        values.par_chunks_mut(WORDS_A_TASK).enumerate().for_each(|(i, part)| {
            let mut rng = stream.clone();
            rng.set_word_pos(start + (i * WORDS_A_TASK) as u128);
            for v in part {
                *v = if u64::from(rng.next_u32()) < threshold { 0.0 } else { keep };
            }
        });
        self.0.set_word_pos(start + n as u128);
        Ok(Tensor::from_vec(values, shape, &Device::Cpu)?.to_dtype(dtype)?.to_device(device)?)
    }
}

impl SeededRng {
    /// A generator started from `seed` on an independent `stream`, so that two consumers of
    /// one seed (initialisation, dropout) never share numbers.
    pub fn with_stream(seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Self(rng)
    }
}

/// Everything that determines where a [`SeededRng`] is in its stream: what a checkpoint keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RngState {
    /// The ChaCha key.
    pub seed: [u8; 32],
    /// The stream number.
    pub stream: u64,
    /// How many 32-bit words have been drawn.
    pub word_pos: u128,
}

impl SeededRng {
    /// Where the generator is.
    pub fn state(&self) -> RngState {
        RngState { seed: self.0.get_seed(), stream: self.0.get_stream(), word_pos: self.0.get_word_pos() }
    }

    /// A generator at `state`: it draws what the one `state` was taken from would have drawn.
    pub fn from_state(state: RngState) -> Self {
        let mut rng = ChaCha8Rng::from_seed(state.seed);
        rng.set_stream(state.stream);
        rng.set_word_pos(state.word_pos);
        Self(rng)
    }
}
