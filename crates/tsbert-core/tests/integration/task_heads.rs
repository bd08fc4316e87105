//! Hugging Face's task models: a `BertForSequenceClassification` of each `problem_type` and a
//! `BertForTokenClassification` saved by transformers (tests/fixtures/hf-task, made by
//! bench/reference/make_task_fixtures.py, every bias and head weight non-zero), loaded with
//! their heads and giving transformers' logits on the `hf` fixture batch.

use std::path::PathBuf;

use candle_core::Device;
use serde_json::Value;
use tsbert_core::batch::Sequences;
use tsbert_core::config::{TaskHead, TaskKind};
use tsbert_core::hf::{config_from_hf, config_to_hf, HfNames};
use tsbert_core::task_loss::TaskLabels;
use tsbert_core::weights::{Naming, WeightsFile};
use tsbert_core::{BertConfig, ModelHandle, ModelOptions, Trainer, TrainerOptions};

use crate::common::{hf_model, values};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The `hf` fixture batch's sequences (padded on the right).
fn sequences() -> Sequences {
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("hf/expected.json")).unwrap()).unwrap();
    let b = &json["batch"];
    let rows = |key: &str| -> Vec<Vec<i32>> {
        let row = |r: &Value| r.as_array().unwrap().iter().map(|x| x.as_i64().unwrap() as i32).collect();
        b[key].as_array().unwrap().iter().map(row).collect()
    };
    let (tokens, mask) = (rows("inputIds"), rows("attentionMask"));
    Sequences {
        batch_size: tokens.len(),
        seq_len: tokens[0].len(),
        tokens: tokens.concat(),
        segments: rows("tokenTypeIds").concat(),
        valid_lens: mask.iter().map(|r| r.iter().sum()).collect(),
    }
}

#[test]
fn task_models_load_with_their_heads_and_give_transformers_logits() {
    let expected =
        candle_core::safetensors::load(fixtures().join("hf-task/expected.safetensors"), &Device::Cpu).unwrap();
    let s = sequences();
    for (name, kind, labels) in [
        ("single", TaskKind::SingleLabelClassification, 3),
        ("multi", TaskKind::MultiLabelClassification, 4),
        ("regression", TaskKind::Regression, 1),
        ("token", TaskKind::TokenClassification, 5),
    ] {
        let (model, config) = hf_model(&fixtures().join("hf-task").join(name));
        assert_eq!(config.task, Some(TaskHead { kind, num_labels: labels }), "{name}");
        // a token classifier has no pooler (transformers leaves it out)
        assert!(
            !config.mlm_head && !config.nsp_head && config.has_pooler() == kind.reads_pooler(),
            "{name}: {config:?}"
        );
        let ours = values(&model.task_logits(&s).unwrap());
        let theirs = values(&expected[&format!("{name}.logits")]);
        // transformers gives padded positions logits too; compare the real tokens only
        let (rows, width) = (s.batch_size, theirs.len() / s.batch_size);
        assert_eq!(ours.len(), theirs.len(), "{name}: shapes");
        let per_token = kind == TaskKind::TokenClassification;
        let mut worst = 0f64;
        for r in 0..rows {
            let keep = if per_token { s.valid_lens[r] as usize * labels } else { width };
            for j in 0..keep {
                worst = worst.max((ours[r * width + j] - theirs[r * width + j]).abs());
            }
        }
        assert!(worst < 1e-5, "{name}: max abs difference {worst:e}");
    }
}

#[test]
fn task_configs_follow_transformers_and_name_what_tsbert_cannot_run() {
    let stored: Vec<String> = ["bert.pooler.dense.weight", "classifier.weight"].map(String::from).to_vec();
    let head = |json: &str| config_from_hf(json, &stored).map(|c| c.task.unwrap());
    // no problem_type: one label is a regression, more a single-label classification
    let one = head(r#"{"model_type": "bert", "architectures": ["BertForSequenceClassification"], "num_labels": 1}"#);
    assert_eq!(one.unwrap(), TaskHead { kind: TaskKind::Regression, num_labels: 1 });
    let two = head(
        r#"{"model_type": "bert", "architectures": ["BertForSequenceClassification"], "id2label": {"0": "no", "1": "yes"}}"#,
    );
    assert_eq!(two.unwrap(), TaskHead { kind: TaskKind::SingleLabelClassification, num_labels: 2 });
    let err = head(r#"{"model_type": "bert", "architectures": ["BertForMultipleChoice"]}"#).unwrap_err().to_string();
    assert!(err.contains("'BertForMultipleChoice' is not a head tsbert runs"), "{err}");
    let err = head(
        r#"{"model_type": "bert", "architectures": ["BertForSequenceClassification"], "problem_type": "ranking"}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("problem_type 'ranking'"), "{err}");
    // classifier_dropout: read (null: the hidden dropout), checked, written back
    let config = |extra: &str| {
        config_from_hf(
            &format!(
                r#"{{"model_type": "bert", "architectures": ["BertForSequenceClassification"], "hidden_dropout_prob": 0.1{extra}}}"#
            ),
            &stored,
        )
    };
    let set = config(r#", "classifier_dropout": 0.3"#).unwrap();
    assert_eq!((set.classifier_dropout, set.classifier_dropout()), (Some(0.3), 0.3));
    assert_eq!(config_to_hf(&set).unwrap().0["classifier_dropout"], 0.3);
    let unset = config(r#", "classifier_dropout": null"#).unwrap();
    assert_eq!((unset.classifier_dropout, unset.classifier_dropout()), (None, 0.1));
    assert!(config_to_hf(&unset).unwrap().0.get("classifier_dropout").is_none());
    let err = BertConfig { classifier_dropout: Some(1.5), ..set }.validate().unwrap_err().to_string();
    assert!(err.contains("classifierDropout"), "{err}");
}

#[test]
fn task_models_export_under_transformers_names_and_load_back_with_the_same_logits() {
    let s = sequences();
    for name in ["single", "multi", "regression", "token"] {
        let dir = fixtures().join("hf-task").join(name);
        let (model, config) = hf_model(&dir);
        let (json, names) = config_to_hf(&config).unwrap();
        let class = if name == "token" { "BertForTokenClassification" } else { "BertForSequenceClassification" };
        assert_eq!(json["architectures"][0], class, "{name}");
        assert_eq!(json["num_labels"], config.task.as_ref().unwrap().num_labels, "{name}");
        let bytes = model.save_weights(&Naming::HuggingFace(names)).unwrap();
        let original = std::fs::read(dir.join("model.safetensors")).unwrap();
        let sorted = |b: &[u8]| {
            let mut n = WeightsFile::from_bytes(b).unwrap().names();
            n.retain(|x| !x.ends_with("position_ids"));
            n.sort();
            n
        };
        assert_eq!(sorted(&bytes), sorted(&original), "{name}: the tensors transformers saved, by the same names");
        let again = config_from_hf(&json.to_string(), &WeightsFile::from_bytes(&bytes).unwrap().names()).unwrap();
        assert_eq!(again.task, config.task, "{name}");
        let reloaded = ModelHandle::new(again.clone(), &ModelOptions::default()).unwrap();
        let names =
            HfNames::detect(WeightsFile::from_bytes(&bytes).unwrap().names().iter().map(String::as_str), &again);
        reloaded.load_weights(&bytes, &Naming::HuggingFace(names)).unwrap();
        assert_eq!(values(&reloaded.task_logits(&s).unwrap()), values(&model.task_logits(&s).unwrap()), "{name}");
    }
}

#[test]
fn task_losses_and_every_gradient_are_transformers() {
    let expected =
        candle_core::safetensors::load(fixtures().join("hf-task/expected.safetensors"), &Device::Cpu).unwrap();
    let s = sequences();
    let ints = |name: &str| values(&expected[name]).into_iter().map(|x| x as i64).collect::<Vec<_>>();
    let floats = |name: &str| values(&expected[name]).into_iter().map(|x| x as f32).collect::<Vec<_>>();
    for name in ["single", "multi", "regression", "token"] {
        let labels = match name {
            "single" => TaskLabels::Classes(ints("labels.single").into_iter().map(|x| x as u32).collect()),
            "multi" => TaskLabels::Multi(floats("labels.multi")),
            "regression" => TaskLabels::Values(floats("labels.regression")),
            _ => TaskLabels::Tokens(ints("labels.token").into_iter().map(|x| x as i32).collect()),
        };
        let dir = fixtures().join("hf-task").join(name);
        let (model, config) = hf_model(&dir);
        let mut trainer = Trainer::new(&model, &TrainerOptions::default()).unwrap();
        let loss = trainer.compute_task_gradients(&model, &s, &labels).unwrap();
        let theirs = values(&expected[&format!("{name}.loss")])[0];
        assert!((loss - theirs).abs() <= 1e-5 * theirs.abs().max(1.0), "{name}: loss {loss} vs {theirs}");
        let stored = WeightsFile::open(&dir.join("model.safetensors")).unwrap().names();
        let names = HfNames::detect(stored.iter().map(String::as_str), &config);
        let mut checked = 0;
        for (ours, _) in model.params().iter() {
            let hf = &names.written_names(ours)[0];
            let want = values(&expected[&format!("{name}.grad.{hf}")]);
            let got = values(
                &trainer.last_grad(&model, ours).unwrap().unwrap_or_else(|| panic!("{name}: {ours} has no gradient")),
            );
            let scale = want.iter().fold(0f64, |m, x| m.max(x.abs())).max(1e-6);
            let worst = got.iter().zip(&want).fold(0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(worst / scale < 1e-4, "{name}: {ours} ({hf}) relative error {:e}", worst / scale);
            checked += 1;
        }
        assert_eq!(checked, stored.iter().filter(|n| !n.ends_with("position_ids")).count(), "{name}: every tensor");
    }
}

#[test]
fn task_labels_that_do_not_fit_the_head_are_refused_by_name() {
    let (model, _) = hf_model(&fixtures().join("hf-task/single"));
    let mut trainer = Trainer::new(&model, &TrainerOptions::default()).unwrap();
    let s = sequences();
    let mut err = |labels: TaskLabels| trainer.compute_task_gradients(&model, &s, &labels).unwrap_err().to_string();
    assert!(err(TaskLabels::Classes(vec![0, 1, 3, 0])).starts_with("labels[2]: 3 is not a class of 3"));
    assert!(err(TaskLabels::Classes(vec![0, 1])).starts_with("labels: 2 labels for 4"));
    assert!(err(TaskLabels::Values(vec![0.5; 4])).contains("not the labels of a SingleLabelClassification head"));
}

/// A token label on padding is refused by name: the training pass does not compute the padding
/// (it packs the valid tokens), so a label there could never be scored.
#[test]
fn token_labels_on_padding_are_refused_by_name() {
    let (model, _) = hf_model(&fixtures().join("hf-task/token"));
    let mut trainer = Trainer::new(&model, &TrainerOptions::default()).unwrap();
    let s = sequences();
    let (row, valid) = s.valid_lens().into_iter().enumerate().find(|&(_, v)| v < s.seq_len).expect("a padded row");
    let mut labels = vec![-100; s.batch_size * s.seq_len];
    labels[1] = 0;
    let i = row * s.seq_len + valid;
    labels[i] = 1;
    let err = trainer.compute_task_gradients(&model, &s, &TaskLabels::Tokens(labels.clone())).unwrap_err().to_string();
    assert!(err.starts_with(&format!("labels[{i}]: 1 labels padding (row {row} has {valid} valid tokens)")), "{err}");
    labels[i] = -100;
    assert!(trainer.compute_task_gradients(&model, &s, &TaskLabels::Tokens(labels)).is_ok());
}

/// A pretrained model under a new task head: the encoder and pooler as saved, the pretraining
/// heads dropped, the head drawn from the seed as Hugging Face initialises it (N(0, 0.02²)
/// weights, zero biases), and a file that does not fit the config it was written for refused.
#[test]
fn a_pretrained_model_takes_a_new_head_with_huggingface_initialisation() {
    let pretrained = crate::common::tiny_hf_config(0.0);
    assert!(pretrained.mlm_head && pretrained.nsp_head);
    let base = crate::common::model(pretrained.clone(), 3, candle_core::DType::F32);
    let bytes = base.save_weights(&Naming::Tsbert).unwrap();
    for kind in [TaskKind::SingleLabelClassification, TaskKind::TokenClassification] {
        let config = tsbert_core::BertConfig {
            mlm_head: false,
            nsp_head: false,
            pooler: Some(kind.reads_pooler()),
            task: Some(TaskHead { kind, num_labels: 3 }),
            ..pretrained.clone()
        };
        let options = |seed: u64| ModelOptions { seed, dtype: candle_core::DType::F32, ..ModelOptions::default() };
        let load = |seed: u64| {
            let file = WeightsFile::from_bytes(&bytes).unwrap();
            ModelHandle::from_weights(config.clone(), &options(seed), &file, &pretrained, &Naming::Tsbert).unwrap()
        };
        let tuned = load(7);
        let names: Vec<&str> = tuned.params().iter().map(|(n, _)| n).collect();
        assert!(names.iter().all(|n| !n.starts_with("mlm.") && !n.starts_with("nsp.")), "{names:?}");
        assert_eq!(names.contains(&"hidden.0.weight"), kind.reads_pooler());
        for (name, var) in tuned.params().iter() {
            let ours = values(var.as_tensor());
            if name.starts_with("classifier.") {
                if name.ends_with("bias") {
                    assert!(ours.iter().all(|&v| v == 0.0), "{name}");
                } else {
                    let std = (ours.iter().map(|v| v * v).sum::<f64>() / ours.len() as f64).sqrt();
                    assert!((0.012..0.03).contains(&std), "{name}: std {std}");
                }
            } else {
                assert_eq!(ours, values(base.params().get(name).unwrap().as_tensor()), "{name}");
            }
        }
        let head = |m: &ModelHandle| values(m.params().get("classifier.weight").unwrap().as_tensor());
        assert_eq!(head(&tuned), head(&load(7)), "the same seed, the same head");
        assert_ne!(head(&tuned), head(&load(8)));
        let err = ModelHandle::from_weights(
            config.clone(),
            &options(7),
            &WeightsFile::from_bytes(&bytes).unwrap(),
            &crate::common::tiny_config(0.0),
            &Naming::Tsbert,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("missing") || err.contains("shape") || err.contains("unexpected"), "{err}");
    }
}
