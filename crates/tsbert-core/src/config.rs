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

    /// Checks that the sizes make a model: every size positive, `heads` divides `hidden`,
    /// `dropout` in [0, 1). The vocabulary must hold at least the 5 reserved tokens.
    pub fn validate(&self) -> Result<(), InputError> {
        let positive = [
            ("hidden", self.hidden),
            ("ffnHidden", self.ffn_hidden),
            ("heads", self.heads),
            ("layers", self.layers),
            ("maxPositions", self.max_positions),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(InputError::range(field, format!("must be at least 1, got {value}")));
            }
        }
        if self.vocab_size < 5 {
            return Err(InputError::range(
                "vocabSize",
                format!("must be at least 5 (the reserved tokens), got {}", self.vocab_size),
            ));
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
