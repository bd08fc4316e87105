//! Input to the model, checked before it reaches candle.

use candle_core::{DType, Device, Tensor};

use crate::config::BertConfig;
use crate::error::{InputError, Result};

/// `B` sequences of `L` token ids with their segments and valid lengths (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct Sequences {
    /// B.
    pub batch_size: usize,
    /// L.
    pub seq_len: usize,
    /// `[B·L]` token ids.
    pub tokens: Vec<i32>,
    /// `[B·L]` segment ids, 0 or 1.
    pub segments: Vec<i32>,
    /// `[B]` number of real tokens of each row, in `1..=L`.
    pub valid_lens: Vec<i32>,
}

/// A pretraining batch: sequences plus `P` MLM predictions a row and an NSP label a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The token sequences.
    pub sequences: Sequences,
    /// P.
    pub num_preds: usize,
    /// `[B·P]` positions (within a row) to predict.
    pub pred_positions: Vec<i32>,
    /// `[B·P]` weight of each prediction; 0 marks padding.
    pub mlm_weights: Vec<f32>,
    /// `[B·P]` the original token id at each predicted position.
    pub mlm_labels: Vec<i32>,
    /// `[B]` 1 if the second sentence follows the first, else 0.
    pub nsp_labels: Vec<i32>,
}

fn check_len(field: &str, len: usize, expected: usize, what: &str) -> Result<(), InputError> {
    if len == expected {
        Ok(())
    } else {
        Err(InputError::range(field, format!("has length {len}, expected {expected} ({what})")))
    }
}

fn check_each(field: &str, values: &[i32], lo: i32, hi: i32, what: &str) -> Result<(), InputError> {
    match values.iter().position(|&v| v < lo || v >= hi) {
        None => Ok(()),
        Some(i) => {
            Err(InputError::range(format!("{field}[{i}]"), format!("{} is out of range [{lo}, {hi}){what}", values[i])))
        }
    }
}

fn clamp_to_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// u32 copy of values already checked to be non-negative.
fn to_u32(values: &[i32]) -> Vec<u32> {
    values.iter().map(|&v| v as u32).collect()
}

impl Sequences {
    /// Rows `start..end` as sequences of their own (same length).
    pub fn rows(&self, start: usize, end: usize) -> Sequences {
        let l = self.seq_len;
        Sequences {
            batch_size: end - start,
            seq_len: l,
            tokens: self.tokens[start * l..end * l].to_vec(),
            segments: self.segments[start * l..end * l].to_vec(),
            valid_lens: self.valid_lens[start..end].to_vec(),
        }
    }

    /// Checks sizes and values against `config`; the error names the first bad field.
    pub fn validate(&self, config: &BertConfig) -> Result<(), InputError> {
        let (b, l) = (self.batch_size, self.seq_len);
        if b == 0 {
            return Err(InputError::range("batchSize", "must be at least 1, got 0"));
        }
        if l == 0 || l > config.max_positions {
            return Err(InputError::range(
                "seqLen",
                format!("{l} is out of range [1, {}] (maxPositions)", config.max_positions),
            ));
        }
        check_len("tokens", self.tokens.len(), b.saturating_mul(l), "batchSize × seqLen")?;
        check_len("segments", self.segments.len(), b.saturating_mul(l), "batchSize × seqLen")?;
        check_len("validLens", self.valid_lens.len(), b, "batchSize")?;
        check_each("tokens", &self.tokens, 0, clamp_to_i32(config.vocab_size), " (vocabSize)")?;
        check_each("segments", &self.segments, 0, clamp_to_i32(config.type_vocab_size), " (typeVocabSize)")?;
        check_each("validLens", &self.valid_lens, 1, clamp_to_i32(l) + 1, " (1 ≤ validLen ≤ seqLen)")?;
        Ok(())
    }

    /// Token and segment ids as `[B, L]` u32 tensors on `device`.
    pub fn id_tensors(&self, device: &Device) -> Result<(Tensor, Tensor)> {
        let shape = (self.batch_size, self.seq_len);
        let (tokens, segments) = self.ids();
        Ok((Tensor::from_vec(tokens, shape, device)?, Tensor::from_vec(segments, shape, device)?))
    }

    /// The token and segment ids as u32 (checked: none is negative).
    pub fn ids(&self) -> (Vec<u32>, Vec<u32>) {
        (to_u32(&self.tokens), to_u32(&self.segments))
    }

    /// The valid lengths as `usize`.
    pub fn valid_lens(&self) -> Vec<usize> {
        self.valid_lens.iter().map(|&v| v as usize).collect()
    }
}

/// The weighted MLM predictions of a batch as tensors: padded ones (weight 0) left out, so
/// they cost nothing and cannot touch the loss or any gradient.
#[derive(Debug)]
pub struct MlmTargets {
    /// `[N]` u32 indices into the `B·L` encoder rows.
    pub flat_positions: Tensor,
    /// `[N]` u32 labels.
    pub labels: Tensor,
    /// `[N]` weights in the model's dtype.
    pub weights: Tensor,
}

impl Batch {
    /// Checks every size and value against `config`; the error names the first bad field.
    pub fn validate(&self, config: &BertConfig) -> Result<(), InputError> {
        self.sequences.validate(config)?;
        let (b, l, p) = (self.sequences.batch_size, self.sequences.seq_len, self.num_preds);
        check_len("predPositions", self.pred_positions.len(), b.saturating_mul(p), "batchSize × numPreds")?;
        check_len("mlmWeights", self.mlm_weights.len(), b.saturating_mul(p), "batchSize × numPreds")?;
        check_len("mlmLabels", self.mlm_labels.len(), b.saturating_mul(p), "batchSize × numPreds")?;
        check_len("nspLabels", self.nsp_labels.len(), b, "batchSize")?;
        check_each("predPositions", &self.pred_positions, 0, clamp_to_i32(l), " (seqLen)")?;
        check_each("mlmLabels", &self.mlm_labels, 0, clamp_to_i32(config.vocab_size), " (vocabSize)")?;
        check_each("nspLabels", &self.nsp_labels, 0, 2, "")?;
        if let Some(i) = self.mlm_weights.iter().position(|w| !w.is_finite() || *w < 0.0) {
            return Err(InputError::range(
                format!("mlmWeights[{i}]"),
                format!("{} is not a finite, non-negative weight", self.mlm_weights[i]),
            ));
        }
        Ok(())
    }

    /// `(flat_positions, labels, weights)` of the predictions with `weight > 0`, if
    /// `skip_padding`, or of all `B·P` predictions.
    pub fn mlm_targets(&self, skip_padding: bool, dtype: DType, device: &Device) -> Result<MlmTargets> {
        let (l, p) = (self.sequences.seq_len, self.num_preds);
        let (mut flat, mut labels, mut weights) = (Vec::new(), Vec::new(), Vec::new());
        for (i, &w) in self.mlm_weights.iter().enumerate() {
            if skip_padding && w == 0.0 {
                continue;
            }
            flat.push(((i / p) * l) as u32 + self.pred_positions[i] as u32);
            labels.push(self.mlm_labels[i] as u32);
            weights.push(w);
        }
        let n = flat.len();
        Ok(MlmTargets {
            flat_positions: Tensor::from_vec(flat, n, device)?,
            labels: Tensor::from_vec(labels, n, device)?,
            weights: Tensor::from_vec(weights, n, device)?.to_dtype(dtype)?,
        })
    }

    /// Rows `start..end` as a batch of their own (a data-parallel shard).
    pub fn rows(&self, start: usize, end: usize) -> Batch {
        let p = self.num_preds;
        Batch {
            sequences: self.sequences.rows(start, end),
            num_preds: p,
            pred_positions: self.pred_positions[start * p..end * p].to_vec(),
            mlm_weights: self.mlm_weights[start * p..end * p].to_vec(),
            mlm_labels: self.mlm_labels[start * p..end * p].to_vec(),
            nsp_labels: self.nsp_labels[start..end].to_vec(),
        }
    }

    /// NSP labels as a `[B]` u32 tensor.
    pub fn nsp_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_vec(to_u32(&self.nsp_labels), self.nsp_labels.len(), device)?)
    }
}
