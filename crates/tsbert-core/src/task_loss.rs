//! The losses of the task heads, as Hugging Face's task models compute them: cross-entropy
//! (one class a sequence), binary cross-entropy with logits a label (multi-label), mean squared
//! error (regression), and cross-entropy over the tokens whose label is not -100 (token
//! classification); each the mean over what it scores.

use candle_core::{Device, Tensor};

use crate::batch::Sequences;
use crate::config::{TaskHead, TaskKind};
use crate::error::{InputError, Result};
use crate::ops::cross_entropy::cross_entropy_per_row;

/// The label Hugging Face's data gives a token that is not scored (a word's later sub-words,
/// special tokens, padding).
pub const IGNORED_LABEL: i32 = -100;

/// The labels of a batch for a task head, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskLabels {
    /// A class a sequence: `[B]` (single-label classification).
    Classes(Vec<u32>),
    /// 0 or 1 a label and sequence: `[B, num_labels]` (multi-label classification).
    Multi(Vec<f32>),
    /// Target numbers: `[B, num_labels]` (regression).
    Values(Vec<f32>),
    /// A class a token, or [`IGNORED_LABEL`]: `[B, L]` (token classification).
    Tokens(Vec<i32>),
}

impl TaskLabels {
    /// What the loss averages over: the sequences (one class each), the entries (multi-label,
    /// regression), the tokens not [`IGNORED_LABEL`] (token classification).
    pub fn scored(&self) -> usize {
        match self {
            Self::Classes(l) => l.len(),
            Self::Multi(l) | Self::Values(l) => l.len(),
            Self::Tokens(l) => l.iter().filter(|&&x| x != IGNORED_LABEL).count(),
        }
    }

    /// The labels of rows `start..end` of a batch of `rows` sequences.
    pub fn rows(&self, start: usize, end: usize, rows: usize) -> Self {
        fn part<T: Clone>(l: &[T], start: usize, end: usize, rows: usize) -> Vec<T> {
            let width = l.len() / rows.max(1);
            l[start * width..end * width].to_vec()
        }
        match self {
            Self::Classes(l) => Self::Classes(part(l, start, end, rows)),
            Self::Multi(l) => Self::Multi(part(l, start, end, rows)),
            Self::Values(l) => Self::Values(part(l, start, end, rows)),
            Self::Tokens(l) => Self::Tokens(part(l, start, end, rows)),
        }
    }

    /// Checks the labels against the head and a batch of `sequences`: the kind, the count,
    /// every class in range, every multi-label 0 or 1, every number finite, every token label
    /// past a row's valid length [`IGNORED_LABEL`] (the padding is not part of the text, and
    /// training passes do not compute it).
    pub fn validate(&self, head: &TaskHead, sequences: &Sequences) -> Result<(), InputError> {
        let (c, rows, seq_len) = (head.num_labels, sequences.batch_size, sequences.seq_len);
        let count = |got: usize, want: usize, of: &str| {
            if got == want {
                Ok(())
            } else {
                Err(InputError::range("labels", format!("{got} labels for {want} ({of})")))
            }
        };
        match (head.kind, self) {
            (TaskKind::SingleLabelClassification, Self::Classes(l)) => {
                count(l.len(), rows, "a class a sequence")?;
                match l.iter().position(|&x| x as usize >= c) {
                    Some(i) => {
                        Err(InputError::range(format!("labels[{i}]"), format!("{} is not a class of {c}", l[i])))
                    }
                    None => Ok(()),
                }
            }
            (TaskKind::MultiLabelClassification, Self::Multi(l)) => {
                count(l.len(), rows * c, "batchSize × numLabels")?;
                match l.iter().position(|&x| x != 0.0 && x != 1.0) {
                    Some(i) => Err(InputError::range(format!("labels[{i}]"), format!("{} is not 0 or 1", l[i]))),
                    None => Ok(()),
                }
            }
            (TaskKind::Regression, Self::Values(l)) => {
                count(l.len(), rows * c, "batchSize × numLabels")?;
                match l.iter().position(|x| !x.is_finite()) {
                    Some(i) => Err(InputError::range(format!("labels[{i}]"), format!("{} is not finite", l[i]))),
                    None => Ok(()),
                }
            }
            (TaskKind::TokenClassification, Self::Tokens(l)) => {
                count(l.len(), rows * seq_len, "batchSize × seqLen")?;
                match l.iter().position(|&x| x != IGNORED_LABEL && !(0..c as i32).contains(&x)) {
                    Some(i) => Err(InputError::range(
                        format!("labels[{i}]"),
                        format!("{} is neither a class of {c} nor {IGNORED_LABEL} (not scored)", l[i]),
                    )),
                    None => padding_ignored(l, &sequences.valid_lens(), seq_len),
                }
            }
            (kind, _) => Err(InputError::type_error("labels", format!("not the labels of a {kind:?} head"))),
        }
    }
}

/// Checks that every token label past its row's valid length is [`IGNORED_LABEL`].
fn padding_ignored(labels: &[i32], valid_lens: &[usize], seq_len: usize) -> Result<(), InputError> {
    for (row, &valid) in valid_lens.iter().enumerate() {
        if let Some(t) = (valid..seq_len).find(|&t| labels[row * seq_len + t] != IGNORED_LABEL) {
            let i = row * seq_len + t;
            return Err(InputError::range(
                format!("labels[{i}]"),
                format!(
                    "{} labels padding (row {row} has {valid} valid tokens): padding takes {IGNORED_LABEL}",
                    labels[i]
                ),
            ));
        }
    }
    Ok(())
}

/// The mean loss of `logits` (`[B, C]`, or `[B, L, C]` for tokens) against checked `labels`.
/// A token batch with no scored token has loss 0.
pub fn task_loss(kind: TaskKind, logits: &Tensor, labels: &TaskLabels) -> Result<Tensor> {
    task_loss_over(kind, logits, labels, labels.scored())
}

/// The sum of the per-entry losses of `logits` against checked `labels` over `denominator`
/// (what the loss of a whole step averages over, when a step's batches are split between
/// accumulated parts or devices: each part's share). A zero denominator gives 0.
pub fn task_loss_over(kind: TaskKind, logits: &Tensor, labels: &TaskLabels, denominator: usize) -> Result<Tensor> {
    let (device, dtype) = (logits.device(), logits.dtype());
    if denominator == 0 || labels.scored() == 0 {
        return Ok(Tensor::zeros((), dtype, device)?);
    }
    let floats = |v: &[f32]| -> Result<Tensor> { Ok(Tensor::from_slice(v, logits.shape(), device)?.to_dtype(dtype)?) };
    let sum = match (kind, labels) {
        (TaskKind::SingleLabelClassification, TaskLabels::Classes(l)) => {
            cross_entropy_per_row(logits, &Tensor::from_slice(l, l.len(), device)?)?.sum_all()?
        }
        (TaskKind::MultiLabelClassification, TaskLabels::Multi(l)) => {
            // max(x, 0) − x·y + log(1 + e^−|x|): BCE with logits without overflow
            let y = floats(l)?;
            let soft = ((logits.abs()?.neg()?.exp()? + 1.0)?.log()? + logits.relu()?)?;
            (soft - (logits * y)?)?.sum_all()?
        }
        (TaskKind::Regression, TaskLabels::Values(l)) => (logits - floats(l)?)?.sqr()?.sum_all()?,
        (TaskKind::TokenClassification, TaskLabels::Tokens(l)) => token_loss_sum(logits, l, device)?,
        _ => return Err(InputError::type_error("labels", format!("not the labels of a {kind:?} head")).into()),
    };
    Ok((sum / denominator as f64)?)
}

/// Cross-entropy over the tokens whose label is not [`IGNORED_LABEL`] (at least one), summed.
fn token_loss_sum(logits: &Tensor, labels: &[i32], device: &Device) -> Result<Tensor> {
    let c = logits.dim(logits.rank() - 1)?;
    let scored: Vec<u32> = (0..labels.len()).filter(|&i| labels[i] != IGNORED_LABEL).map(|i| i as u32).collect();
    let classes: Vec<u32> = scored.iter().map(|&i| labels[i as usize] as u32).collect();
    let rows = logits.reshape(((), c))?.index_select(&Tensor::from_slice(&scored, scored.len(), device)?, 0)?;
    let per_row = cross_entropy_per_row(&rows, &Tensor::from_slice(&classes, classes.len(), device)?)?;
    Ok(per_row.sum_all()?)
}
