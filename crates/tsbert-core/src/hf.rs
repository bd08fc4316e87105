//! Hugging Face's BERT checkpoints: their `config.json` and tensor names, read into tsbert's
//! config and parameter names, and written back from them.

use serde_json::{json, Map, Value};

use crate::config::{Activation, BertConfig, TaskHead, TaskKind};
use crate::error::{Error, Result};

fn unsupported(what: impl std::fmt::Display) -> Error {
    Error::Checkpoint(what.to_string())
}

/// A field of a Hugging Face config: its value, or `default` when absent.
fn field<'a>(config: &'a Map<String, Value>, name: &str, default: &'a Value) -> &'a Value {
    config.get(name).unwrap_or(default)
}

fn size(config: &Map<String, Value>, name: &str, default: u64) -> Result<usize> {
    let fallback = json!(default);
    field(config, name, &fallback)
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| unsupported(format!("config.json: {name} is not a non-negative integer")))
}

fn number(config: &Map<String, Value>, name: &str, default: f64) -> Result<f64> {
    let fallback = json!(default);
    field(config, name, &fallback).as_f64().ok_or_else(|| unsupported(format!("config.json: {name} is not a number")))
}

/// How the tensors of a Hugging Face checkpoint are named: the encoder's under `bert.` (a
/// `BertForPreTraining`, `BertForMaskedLM`, …) or bare (a `BertModel`, as sentence-transformers
/// saves one); the heads under `cls.`. The MLM bias depends on the decoder's tying: tied to the
/// word embeddings, transformers keeps one bias, `cls.predictions.bias`; untied (transformers 5),
/// the decoder has a bias of its own, `cls.predictions.decoder.bias`, which is the one its
/// forward pass adds, and `save_pretrained` writes both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfNames {
    prefix: &'static str,
    tied_decoder: bool,
}

/// The MLM bias when the decoder is tied, and the untied decoder's own.
/// transformers' `initializer_range` default: the standard deviation of the normal a new
/// weight is drawn from (`BertPreTrainedModel._init_weights`).
pub const HF_INITIALIZER_RANGE: f64 = 0.02;

const MLM_BIAS: &str = "cls.predictions.bias";
const DECODER_BIAS: &str = "cls.predictions.decoder.bias";

impl HfNames {
    /// The naming of a checkpoint holding `stored` tensors, for a model of `config`.
    pub fn detect<'a>(stored: impl IntoIterator<Item = &'a str>, config: &BertConfig) -> Self {
        let prefixed = stored.into_iter().any(|n| n.starts_with("bert."));
        Self { prefix: if prefixed { "bert." } else { "" }, tied_decoder: config.tie_word_embeddings }
    }

    /// The naming tsbert writes for a model of `config`: a `BertForPreTraining`'s with both heads
    /// and a task model's (`bert.` and `classifier.`), a bare `BertModel`'s with no head.
    pub fn for_export(config: &BertConfig) -> Self {
        let prefixed = config.mlm_head || config.task.is_some();
        Self { prefix: if prefixed { "bert." } else { "" }, tied_decoder: config.tie_word_embeddings }
    }

    /// The names under which a saved model holds tsbert's parameter `ours`: every name
    /// transformers' `save_pretrained` writes for it (the MLM bias of an untied decoder twice).
    pub fn written_names(&self, ours: &str) -> Vec<String> {
        let mut names = self.stored_names(ours);
        names.truncate(if ours == "mlm.mlp.3.bias" && !self.tied_decoder { 2 } else { 1 });
        names
    }

    /// The names a checkpoint may give tsbert's parameter `ours`, the one to read first (older
    /// checkpoints call layer-norm parameters `gamma` and `beta`; the MLM bias is read from the
    /// decoder's when it is untied, and from `cls.predictions.bias` for checkpoints that have only
    /// that one, as transformers 4 saves them).
    pub fn stored_names(&self, ours: &str) -> Vec<String> {
        let p = self.prefix;
        let mapped = if let Some(rest) = ours.strip_prefix("encoder.blks.") {
            let (layer, part) = rest.split_once('.').unwrap_or((rest, ""));
            let part = [
                ("attention.W_q.", "attention.self.query."),
                ("attention.W_k.", "attention.self.key."),
                ("attention.W_v.", "attention.self.value."),
                ("attention.W_o.", "attention.output.dense."),
                ("addnorm1.ln.", "attention.output.LayerNorm."),
                ("ffn.dense1.", "intermediate.dense."),
                ("ffn.dense2.", "output.dense."),
                ("addnorm2.ln.", "output.LayerNorm."),
            ]
            .iter()
            .find_map(|(from, to)| part.strip_prefix(from).map(|leaf| format!("{to}{leaf}")))
            .unwrap_or_else(|| part.to_string());
            format!("{p}encoder.layer.{layer}.{part}")
        } else {
            let fixed = [
                ("encoder.token_embedding.weight", format!("{p}embeddings.word_embeddings.weight")),
                ("encoder.segment_embedding.weight", format!("{p}embeddings.token_type_embeddings.weight")),
                ("encoder.pos_embedding", format!("{p}embeddings.position_embeddings.weight")),
                ("encoder.embedding_norm.weight", format!("{p}embeddings.LayerNorm.weight")),
                ("encoder.embedding_norm.bias", format!("{p}embeddings.LayerNorm.bias")),
                ("mlm.mlp.0.weight", "cls.predictions.transform.dense.weight".into()),
                ("mlm.mlp.0.bias", "cls.predictions.transform.dense.bias".into()),
                ("mlm.mlp.2.weight", "cls.predictions.transform.LayerNorm.weight".into()),
                ("mlm.mlp.2.bias", "cls.predictions.transform.LayerNorm.bias".into()),
                ("mlm.mlp.3.weight", "cls.predictions.decoder.weight".into()),
                ("mlm.mlp.3.bias", if self.tied_decoder { MLM_BIAS } else { DECODER_BIAS }.into()),
                ("hidden.0.weight", format!("{p}pooler.dense.weight")),
                ("hidden.0.bias", format!("{p}pooler.dense.bias")),
                ("nsp.output.weight", "cls.seq_relationship.weight".into()),
                ("nsp.output.bias", "cls.seq_relationship.bias".into()),
            ];
            match fixed.into_iter().find(|(from, _)| *from == ours) {
                Some((_, to)) => to,
                None => ours.to_string(),
            }
        };
        let mut names = vec![mapped.clone()];
        if let Some(base) = mapped.strip_suffix("LayerNorm.weight") {
            names.push(format!("{base}LayerNorm.gamma"));
        } else if let Some(base) = mapped.strip_suffix("LayerNorm.bias") {
            names.push(format!("{base}LayerNorm.beta"));
        } else if mapped == MLM_BIAS {
            names.push(DECODER_BIAS.into());
        } else if mapped == DECODER_BIAS {
            names.push(MLM_BIAS.into());
        }
        names
    }

    /// Whether a stored tensor that is no parameter of `config` may be left unread: buffers
    /// (`position_ids`), a tied decoder's copy of the embeddings, the MLM bias's other name,
    /// and a pooler the config leaves out.
    pub fn ignorable(&self, stored: &str, config: &BertConfig) -> bool {
        stored.ends_with("embeddings.position_ids")
            || (config.tie_word_embeddings && stored == "cls.predictions.decoder.weight")
            || stored == MLM_BIAS
            || stored == DECODER_BIAS
            || (!config.has_pooler() && stored.starts_with(&format!("{}pooler.", self.prefix)))
    }
}

/// tsbert's config of a Hugging Face BERT checkpoint: its `config.json` (`model_type: "bert"`,
/// absolute positions) and the names of the tensors it holds, which say which heads it has.
/// What tsbert cannot run is an error naming it.
pub fn config_from_hf(config_json: &str, stored: &[String]) -> Result<BertConfig> {
    let value: Value =
        serde_json::from_str(config_json).map_err(|e| unsupported(format!("config.json is not valid JSON ({e})")))?;
    let c = value.as_object().ok_or_else(|| unsupported("config.json is not a JSON object"))?;
    match c.get("model_type").and_then(Value::as_str) {
        Some("bert") => {}
        Some(other) => {
            return Err(unsupported(format!("config.json: model_type is '{other}'; tsbert runs BERT ('bert') models")))
        }
        None => return Err(unsupported("config.json has no model_type: not a Hugging Face model config")),
    }
    let absolute = json!("absolute");
    if field(c, "position_embedding_type", &absolute) != &absolute {
        return Err(unsupported("config.json: position_embedding_type is not 'absolute', the only kind tsbert has"));
    }
    let gelu = json!("gelu");
    let activation = match field(c, "hidden_act", &gelu).as_str() {
        Some("gelu") => Activation::Gelu,
        Some("gelu_new" | "gelu_pytorch_tanh" | "gelu_fast") => Activation::GeluTanh,
        Some("relu") => Activation::Relu,
        other => {
            return Err(unsupported(format!(
                "config.json: hidden_act {other:?} is not one tsbert has (gelu, gelu_new, relu)"
            )))
        }
    };
    let prefix = if stored.iter().any(|n| n.starts_with("bert.")) { "bert." } else { "" };
    let has = |name: &str| stored.iter().any(|s| s == name);
    let pooler = has(&format!("{prefix}pooler.dense.weight"));
    if !pooler && has("cls.seq_relationship.weight") {
        return Err(unsupported(format!(
            "model.safetensors: '{prefix}pooler.dense.weight' is missing: the NSP head (cls.seq_relationship) reads the pooler's output"
        )));
    }
    let task = if has("classifier.weight") { Some(task_from_hf(c)?) } else { None };
    let truthy = json!(true);
    let dropout = number(c, "hidden_dropout_prob", 0.1)?;
    let attention_dropout = number(c, "attention_probs_dropout_prob", 0.1)?;
    Ok(BertConfig {
        vocab_size: size(c, "vocab_size", 30522)?,
        hidden: size(c, "hidden_size", 768)?,
        ffn_hidden: size(c, "intermediate_size", 3072)?,
        heads: size(c, "num_attention_heads", 12)?,
        layers: size(c, "num_hidden_layers", 12)?,
        dropout,
        max_positions: size(c, "max_position_embeddings", 512)?,
        attention_dropout: (attention_dropout != dropout).then_some(attention_dropout),
        activation,
        embedding_norm: true,
        layer_norm_eps: number(c, "layer_norm_eps", 1e-12)?,
        type_vocab_size: size(c, "type_vocab_size", 2)?,
        tie_word_embeddings: field(c, "tie_word_embeddings", &truthy).as_bool().unwrap_or(true),
        mlm_head: stored.iter().any(|s| s.starts_with("cls.predictions.transform.")),
        nsp_head: pooler && has("cls.seq_relationship.weight"),
        pooler: Some(pooler),
        classifier_dropout: match c.get("classifier_dropout") {
            None | Some(Value::Null) => None,
            Some(_) => Some(number(c, "classifier_dropout", 0.1)?),
        },
        task,
    })
}

/// The task head of a Hugging Face task model's config: `BertForSequenceClassification` (its
/// `problem_type`; unset: regression for one label, single-label classification otherwise, as
/// transformers decides) or `BertForTokenClassification`, with `id2label`'s size (else
/// `num_labels`) outputs.
fn task_from_hf(c: &Map<String, Value>) -> Result<TaskHead> {
    let labels = match c.get("id2label").and_then(Value::as_object) {
        Some(map) if !map.is_empty() => map.len(),
        _ => size(c, "num_labels", 2)?,
    };
    let architecture = c.get("architectures").and_then(|a| a.get(0)).and_then(Value::as_str).unwrap_or("");
    let kind = match architecture {
        "BertForTokenClassification" => TaskKind::TokenClassification,
        "BertForSequenceClassification" => match c.get("problem_type").and_then(Value::as_str) {
            Some("regression") => TaskKind::Regression,
            Some("multi_label_classification") => TaskKind::MultiLabelClassification,
            Some("single_label_classification") => TaskKind::SingleLabelClassification,
            None if labels == 1 => TaskKind::Regression,
            None => TaskKind::SingleLabelClassification,
            Some(other) => {
                return Err(unsupported(format!("config.json: problem_type '{other}' is not one tsbert has")))
            }
        },
        other => {
            return Err(unsupported(format!(
                "config.json: the model has a classifier, but '{other}' is not a head tsbert runs \
                 (BertForSequenceClassification, BertForTokenClassification)"
            )))
        }
    };
    Ok(TaskHead { kind, num_labels: labels })
}

/// The Hugging Face `config.json` of a tsbert model (a `BertForPreTraining` with both heads, a
/// `BertModel` with neither), and the naming of its tensors. What Hugging Face's BERT cannot
/// express is an error saying what.
pub fn config_to_hf(config: &BertConfig) -> Result<(Value, HfNames)> {
    if !config.embedding_norm {
        return Err(unsupported(
            "Hugging Face's BERT always applies a layer norm after the embeddings and this model has none \
             (the textbook architecture): give it `embeddingNorm: true` when it is created to export it",
        ));
    }
    let architecture = match (config.mlm_head, config.nsp_head, &config.task) {
        (false, false, Some(task)) if task.kind == TaskKind::TokenClassification => "BertForTokenClassification",
        (false, false, Some(_)) => "BertForSequenceClassification",
        (_, _, Some(_)) => {
            return Err(unsupported(
                "a model with a task head and pretraining heads has no Hugging Face class to export to",
            ))
        }
        (true, true, None) => "BertForPreTraining",
        (false, false, None) => "BertModel",
        _ => {
            return Err(unsupported(
                "a model with only one of the MLM and NSP heads has no Hugging Face class to export to",
            ))
        }
    };
    let activation = match config.activation {
        Activation::Relu => "relu",
        Activation::Gelu => "gelu",
        Activation::GeluTanh => "gelu_new",
    };
    let json = json!({
        "architectures": [architecture],
        "model_type": "bert",
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden,
        "num_hidden_layers": config.layers,
        "num_attention_heads": config.heads,
        "intermediate_size": config.ffn_hidden,
        "hidden_act": activation,
        "hidden_dropout_prob": config.dropout,
        "attention_probs_dropout_prob": config.attention_dropout(),
        "max_position_embeddings": config.max_positions,
        "type_vocab_size": config.type_vocab_size,
        "layer_norm_eps": config.layer_norm_eps,
        "tie_word_embeddings": config.tie_word_embeddings,
        "position_embedding_type": "absolute",
        "initializer_range": 0.02,
    });
    let mut json = json;
    if let Some(p) = config.classifier_dropout {
        json["classifier_dropout"] = json!(p);
    }
    if let Some(task) = &config.task {
        let labels: Map<String, Value> =
            (0..task.num_labels).map(|i| (i.to_string(), json!(format!("LABEL_{i}")))).collect();
        let ids: Map<String, Value> = (0..task.num_labels).map(|i| (format!("LABEL_{i}"), json!(i))).collect();
        json["num_labels"] = json!(task.num_labels);
        json["id2label"] = Value::Object(labels);
        json["label2id"] = Value::Object(ids);
        let problem = match task.kind {
            TaskKind::SingleLabelClassification => Some("single_label_classification"),
            TaskKind::MultiLabelClassification => Some("multi_label_classification"),
            TaskKind::Regression => Some("regression"),
            TaskKind::TokenClassification => None,
        };
        if let Some(problem) = problem {
            json["problem_type"] = json!(problem);
        }
    }
    Ok((json, HfNames::for_export(config)))
}
