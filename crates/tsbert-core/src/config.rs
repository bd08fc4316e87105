//! The model's hyper-parameters.

use serde::{Deserialize, Serialize};

use crate::error::InputError;

/// Sizes of a BERT model. The defaults are Dive into Deep Learning's pretraining
/// configuration (hidden 128, FFN 256, 2 heads, 2 layers, dropout 0.2, 1000 positions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BertConfig {
    /// Number of token ids (the vocabulary size, reserved tokens included).
    pub vocab_size: usize,
    /// Width of every hidden representation.
    pub hidden: usize,
    /// Width of the position-wise feed-forward network's inner layer.
    pub ffn_hidden: usize,
    /// Number of attention heads; must divide `hidden`.
    pub heads: usize,
    /// Number of encoder blocks.
    pub layers: usize,
    /// Dropout probability used in training steps (attention weights and both Add & Norm).
    pub dropout: f64,
    /// Longest sequence the learned position table covers.
    pub max_positions: usize,
}

impl BertConfig {
    /// The textbook configuration for a vocabulary of `vocab_size` ids.
    pub fn textbook(vocab_size: usize) -> Self {
        Self { vocab_size, hidden: 128, ffn_hidden: 256, heads: 2, layers: 2, dropout: 0.2, max_positions: 1000 }
    }

    /// Checks that the sizes make a model: every size positive and at most its limit, `heads`
    /// divides `hidden`, `dropout` in [0, 1). The vocabulary must hold at least the 5 reserved
    /// tokens. The limits are far beyond any BERT (vocabularies of 250k, hidden 4096, 512–8192
    /// positions) and keep every count of parameters from overflowing; whether the model fits
    /// in memory is [`crate::memory`]'s check.
    pub fn validate(&self) -> Result<(), InputError> {
        let sizes = [
            ("vocabSize", self.vocab_size, 5, 1 << 24),
            ("hidden", self.hidden, 1, 1 << 16),
            ("ffnHidden", self.ffn_hidden, 1, 1 << 18),
            ("heads", self.heads, 1, 1 << 16),
            ("layers", self.layers, 1, 1 << 12),
            ("maxPositions", self.max_positions, 1, 1 << 20),
        ];
        for (field, value, least, limit) in sizes {
            if value < least {
                let reserved = if least == 5 { " (the reserved tokens)" } else { "" };
                return Err(InputError::range(field, format!("must be at least {least}{reserved}, got {value}")));
            }
            if value > limit {
                return Err(InputError::range(field, format!("{value} is over the limit of {limit}")));
            }
        }
        if !self.hidden.is_multiple_of(self.heads) {
            return Err(InputError::range("heads", format!("{} does not divide hidden = {}", self.heads, self.hidden)));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(InputError::range("dropout", format!("must be in [0, 1), got {}", self.dropout)));
        }
        Ok(())
    }
}
