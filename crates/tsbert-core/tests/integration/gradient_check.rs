//! Finite-difference check of the backward pass, in f64, for every parameter (embeddings
//! included: a forward-only op anywhere would leave them without a gradient), with the
//! pretraining heads and with each task head and its loss.

use crate::common::{random_batch, tiny_config, tiny_hf_config, trainer, values};
use candle_core::{DType, Tensor};
use tsbert_core::BertConfig;

const STEP: f64 = 1e-6;
const TOLERANCE: f64 = 1e-6;
/// The round-off of a central difference of a loss near 1 in f64 (ε · loss / STEP ≈ 2e-10), with
/// room: a smaller absolute difference says nothing about the gradient.
const ROUND_OFF: f64 = 1e-9;

#[test]
fn analytic_gradients_match_central_differences_for_every_parameter() {
    let config = tiny_config(0.0);
    check(&config, 5 + config.layers * 16 + 6 + 4 - 2);
}

#[test]
fn so_do_they_with_every_hugging_face_variant() {
    let config = tiny_hf_config(0.0);
    // an embedding layer norm more, no decoder weight of its own (it is the token embeddings)
    check(&config, 5 + 2 + config.layers * 16 + 6 + 4 - 2 - 1);
}

/// Central differences against the backward pass for `parameters` parameters of `config`.
fn check(config: &BertConfig, parameters: usize) {
    let (model, mut t) = trainer(config.clone(), 21, 0.01, DType::F64);
    let batch = random_batch(config, 3, 7, 2, 4);
    t.compute_gradients(&model, &batch).unwrap();
    compare(&model, &t, parameters, |m| {
        let l = m.eval_losses(&batch).unwrap();
        l.mlm + l.nsp
    });
}

#[test]
fn task_heads_and_their_losses_match_central_differences_for_every_parameter() {
    use tsbert_core::config::{TaskHead, TaskKind};
    use tsbert_core::task_loss::{task_loss, TaskLabels};
    let (rows, len) = (3, 7);
    let valid_lens = random_batch(&tiny_hf_config(0.0), rows, len, 2, 4).sequences.valid_lens();
    assert!(valid_lens.iter().any(|&v| v < len), "some row is padded: the training pass packs its tokens");
    // every fifth token and the padding not scored
    let scored = |i: usize| !i.is_multiple_of(5) && i % len < valid_lens[i / len];
    for (kind, labels) in [
        (TaskKind::SingleLabelClassification, TaskLabels::Classes(vec![2, 0, 1])),
        (TaskKind::MultiLabelClassification, TaskLabels::Multi(vec![1., 0., 1., 0., 0., 1., 1., 1., 0.])),
        (TaskKind::Regression, TaskLabels::Values(vec![0.5, -1.25, 2.0, 0.0, 1.0, -0.5, 0.25, 3.0, -2.0])),
        (
            TaskKind::TokenClassification,
            TaskLabels::Tokens((0..rows * len).map(|i| if scored(i) { (i % 3) as i32 } else { -100 }).collect()),
        ),
    ] {
        let config = BertConfig {
            mlm_head: false,
            nsp_head: false,
            pooler: Some(kind.reads_pooler()),
            task: Some(TaskHead { kind, num_labels: 3 }),
            ..tiny_hf_config(0.0)
        };
        let (model, mut t) = trainer(config.clone(), 21, 0.01, DType::F64);
        let sequences = random_batch(&config, rows, len, 2, 4).sequences;
        t.compute_task_gradients(&model, &sequences, &labels).unwrap();
        // embeddings (3 tables + norm), 16 a block, the pooler for a sequence's head, the classifier
        let parameters = 5 + config.layers * 16 + if kind.reads_pooler() { 2 } else { 0 } + 2;
        compare(&model, &t, parameters, |m| {
            let logits = m.task_logits(&sequences).unwrap();
            task_loss(kind, &logits, &labels).unwrap().to_scalar::<f64>().unwrap()
        });
    }
}

/// Central differences of `loss` against the last backward pass of `t` for every one of the
/// model's `parameters` parameters.
fn compare(
    model: &tsbert_core::ModelHandle,
    t: &tsbert_core::Trainer,
    parameters: usize,
    loss: impl Fn(&tsbert_core::ModelHandle) -> f64,
) {
    let names: Vec<String> = model.params().iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(names.len(), parameters, "every parameter kind is listed: {names:?}");
    for name in &names {
        let var = model.params().get(name).unwrap().clone();
        let analytic = values(&t.last_grad(model, name).unwrap().unwrap_or_else(|| panic!("{name} has no gradient")));
        let original = values(var.as_tensor());
        // the entries with the largest gradients, plus two fixed others (often zero-gradient)
        let mut order: Vec<usize> = (0..analytic.len()).collect();
        order.sort_by(|&a, &b| analytic[b].abs().total_cmp(&analytic[a].abs()));
        let mut picks: Vec<usize> = order.into_iter().take(4).collect();
        picks.extend([analytic.len() / 3, analytic.len() - 1]);
        // The key bias adds q·b_k to every key's score alike, which softmax ignores: its true
        // gradient is zero, and the finite differences below confirm that too.
        if !name.ends_with("W_k.bias") {
            assert!(analytic.iter().any(|g| g.abs() > 1e-6), "{name}: gradient is all zero");
        }
        for &i in &picks {
            let mut shifted = original.clone();
            let mut at = |delta: f64| {
                shifted[i] = original[i] + delta;
                var.set(&Tensor::from_slice(&shifted, var.dims(), &candle_core::Device::Cpu).unwrap()).unwrap();
                loss(model)
            };
            let numeric = (at(STEP) - at(-STEP)) / (2.0 * STEP);
            let a = analytic[i];
            let scale = a.abs().max(numeric.abs());
            let err = if scale > 1e-7 { (a - numeric).abs() / scale } else { (a - numeric).abs() };
            assert!(
                err < TOLERANCE || (a - numeric).abs() < ROUND_OFF,
                "{name}[{i}]: analytic {a:e}, numeric {numeric:e}, error {err:e}"
            );
        }
        var.set(&Tensor::from_slice(&original, var.dims(), &candle_core::Device::Cpu).unwrap()).unwrap();
    }
}
