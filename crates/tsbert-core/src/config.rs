//! The model's hyper-parameters: the textbook's BERT by default, and the variants Hugging
//! Face's `BertConfig` expresses.

use serde::{Deserialize, Serialize};

use crate::error::InputError;

/// The nonlinearity of the feed-forward networks and of the MLM transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(0, x)`: the textbook's.
    #[default]
    Relu,
    /// `x · Φ(x)` with the exact normal CDF: BERT's (`hidden_act: "gelu"`).
    Gelu,
    /// The tanh approximation of GELU (`"gelu_new"`, `"gelu_pytorch_tanh"`).
    GeluTanh,
}

/// What a task head predicts, as Hugging Face's task models do (`problem_type` for a sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// One class a sequence (softmax, cross-entropy): `BertForSequenceClassification`,
    /// `single_label_classification`.
    SingleLabelClassification,
    /// Any number of classes a sequence (a sigmoid and binary cross-entropy a label):
    /// `multi_label_classification`.
    MultiLabelClassification,
    /// Numbers a sequence (mean squared error): `regression`.
    Regression,
    /// One class a token (cross-entropy, labels of -100 ignored): `BertForTokenClassification`.
    TokenClassification,
}

impl TaskKind {
    /// Whether the head reads the pooler (a sequence's) rather than every token's state.
    pub fn reads_pooler(self) -> bool {
        self != Self::TokenClassification
    }
}

/// A task head: dropout and a linear layer (`classifier`) to `num_labels` outputs, on the
/// pooler's output (a sequence's kinds) or on every token's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskHead {
    /// What it predicts.
    pub kind: TaskKind,
    /// Its outputs: classes, or numbers for regression.
    pub num_labels: usize,
}

fn textbook_eps() -> f64 {
    1e-5
}

fn two() -> usize {
    2
}

fn yes() -> bool {
    true
}

/// Sizes and variants of a BERT model. The defaults are Dive into Deep Learning's pretraining
/// configuration (hidden 128, FFN 256, 2 heads, 2 layers, dropout 0.2, 1000 positions, ReLU,
/// no layer norm after the embeddings, layer-norm epsilon 1e-5, an MLM decoder of its own);
/// the other fields default to it too, so older configs still read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
    /// Dropout on the attention weights, when it differs from `dropout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_dropout: Option<f64>,
    /// The feed-forward networks' and the MLM transform's nonlinearity.
    #[serde(default)]
    pub activation: Activation,
    /// A layer norm (and dropout) after the embeddings, as in BERT; the textbook has none.
    #[serde(default)]
    pub embedding_norm: bool,
    /// The epsilon of every layer norm (the textbook's PyTorch default 1e-5; BERT's 1e-12).
    #[serde(default = "textbook_eps")]
    pub layer_norm_eps: f64,
    /// Number of segment (token type) ids.
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    /// Whether the MLM decoder's weight is the token embedding table (with a bias of its own).
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Whether the model has the MLM head (a bare encoder, as sentence-transformers saves one,
    /// has not).
    #[serde(default = "yes")]
    pub mlm_head: bool,
    /// Whether the model has the NSP head (the classifier on the pooler's output).
    #[serde(default = "yes")]
    pub nsp_head: bool,
    /// Whether the model has the pooler (dense + tanh on the first token's state), which the
    /// NSP head reads; unset: when it has the NSP head. A checkpoint's pooler is kept without
    /// its NSP head (a sentence-transformers model's, BERT's `BertModel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooler: Option<bool>,
    /// Dropout before a task head's classifier, when it differs from `dropout` (Hugging Face's
    /// `classifier_dropout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier_dropout: Option<f64>,
    /// A task head (classification of sequences or tokens, regression), when the model has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskHead>,
}

impl BertConfig {
    /// The textbook configuration for a vocabulary of `vocab_size` ids.
    pub fn textbook(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            hidden: 128,
            ffn_hidden: 256,
            heads: 2,
            layers: 2,
            dropout: 0.2,
            max_positions: 1000,
            attention_dropout: None,
            activation: Activation::Relu,
            embedding_norm: false,
            layer_norm_eps: textbook_eps(),
            type_vocab_size: two(),
            tie_word_embeddings: false,
            mlm_head: true,
            nsp_head: true,
            pooler: None,
            classifier_dropout: None,
            task: None,
        }
    }

    /// Whether the model has the pooler (see [`BertConfig::pooler`]).
    pub fn has_pooler(&self) -> bool {
        self.pooler.unwrap_or(self.nsp_head)
    }

    /// The dropout on attention weights.
    pub fn attention_dropout(&self) -> f64 {
        self.attention_dropout.unwrap_or(self.dropout)
    }

    /// The dropout before a task head's classifier.
    pub fn classifier_dropout(&self) -> f64 {
        self.classifier_dropout.unwrap_or(self.dropout)
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
            ("typeVocabSize", self.type_vocab_size, 1, 1 << 16),
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
        let dropouts = [
            ("dropout", self.dropout),
            ("attentionDropout", self.attention_dropout()),
            ("classifierDropout", self.classifier_dropout()),
        ];
        for (field, p) in dropouts {
            if !(0.0..1.0).contains(&p) {
                return Err(InputError::range(field, format!("must be in [0, 1), got {p}")));
            }
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps < 1.0) {
            return Err(InputError::range("layerNormEps", format!("must be in (0, 1), got {}", self.layer_norm_eps)));
        }
        if let Some(task) = &self.task {
            if task.num_labels == 0 || task.num_labels > 1 << 16 {
                return Err(InputError::range(
                    "task.numLabels",
                    format!("must be in [1, 65536], got {}", task.num_labels),
                ));
            }
            if task.kind.reads_pooler() && !self.has_pooler() {
                return Err(InputError::range("pooler", "a sequence's task head reads the pooler's output"));
            }
        }
        if self.nsp_head && !self.has_pooler() {
            return Err(InputError::range(
                "pooler",
                "the NSP head reads the pooler's output: a model with one has the other",
            ));
        }

        Ok(())
    }
}
