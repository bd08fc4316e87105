//! Finite-difference check of the backward pass, in f64, for every parameter (embeddings
//! included: a forward-only op anywhere would leave them without a gradient).

use crate::common::{random_batch, tiny_config, tiny_hf_config, trainer, values};
use candle_core::{DType, Tensor};
use tsbert_core::BertConfig;

const STEP: f64 = 1e-6;
const TOLERANCE: f64 = 1e-6;

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
    let names: Vec<String> = model.params().iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(names.len(), parameters, "every parameter kind is listed");
    let loss = |m: &tsbert_core::ModelHandle| {
        let l = m.eval_losses(&batch).unwrap();
        l.mlm + l.nsp
    };
    for name in &names {
        let var = model.params().get(name).unwrap().clone();
        let analytic = values(&t.last_grad(&model, name).unwrap().unwrap_or_else(|| panic!("{name} has no gradient")));
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
                loss(&model)
            };
            let numeric = (at(STEP) - at(-STEP)) / (2.0 * STEP);
            let a = analytic[i];
            let scale = a.abs().max(numeric.abs());
            let err = if scale > 1e-7 { (a - numeric).abs() / scale } else { (a - numeric).abs() };
            assert!(err < TOLERANCE, "{name}[{i}]: analytic {a:e}, numeric {numeric:e}, error {err:e}");
        }
        var.set(&Tensor::from_slice(&original, var.dims(), &candle_core::Device::Cpu).unwrap()).unwrap();
    }
}
