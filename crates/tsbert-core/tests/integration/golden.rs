//! Parity with the independent PyTorch implementation (bench/reference/tsbert_ref.py): the
//! golden values in tests/fixtures/golden (beside these tests) were recorded there by make_golden.py from the
//! same initial weights and batch (dropout 0, float32). The relative error of a tensor is
//! `max |ours − torch| / max |torch|` (the largest difference against the tensor's scale, so
//! float32 rounding in entries near zero does not count as disagreement). A tensor that is
//! zero up to rounding on the PyTorch side (the key bias's gradient, which is exactly zero
//! in exact arithmetic) is compared absolutely: every difference ≤ 1e-6.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use tsbert_core::adam::AdamConfig;
use tsbert_core::batch::Sequences;
use tsbert_core::weights::Naming;
use tsbert_core::{Batch, BertConfig, ModelHandle, ModelOptions, Trainer, TrainerOptions};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

fn ints(v: &Value, key: &str) -> Vec<i32> {
    v[key].as_array().unwrap().iter().map(|x| x.as_i64().unwrap() as i32).collect()
}

fn size(v: &Value, key: &str) -> usize {
    v[key].as_u64().unwrap() as usize
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1().unwrap()
}

fn rel_error(ours: &[f64], torch: &[f64]) -> f64 {
    assert_eq!(ours.len(), torch.len());
    let scale = torch.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
    let diff = ours.iter().zip(torch).fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
    if scale < 1e-6 {
        diff / 1e-6 * 1e-4 // within bound exactly when diff ≤ 1e-6
    } else {
        diff / scale
    }
}

fn check(what: &str, ours: &[f64], torch: &Tensor, bound: f64) {
    let err = rel_error(ours, &flat(torch));
    eprintln!("{what}: relative error {err:.2e}");
    assert!(err <= bound, "{what}: relative error {err:e} > {bound:e}");
}

#[test]
fn forward_gradients_and_three_adam_steps_match_pytorch() {
    let batch_json: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("batch.json")).unwrap()).unwrap();
    let config: BertConfig = serde_json::from_value(batch_json["config"].clone()).unwrap();
    let lr = batch_json["lr"].as_f64().unwrap();
    let batch = Batch {
        sequences: Sequences {
            batch_size: size(&batch_json, "batchSize"),
            seq_len: size(&batch_json, "seqLen"),
            tokens: ints(&batch_json, "tokens"),
            segments: ints(&batch_json, "segments"),
            valid_lens: ints(&batch_json, "validLens"),
        },
        num_preds: size(&batch_json, "numPreds"),
        pred_positions: ints(&batch_json, "predPositions"),
        mlm_weights: batch_json["mlmWeights"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect(),
        mlm_labels: ints(&batch_json, "mlmLabels"),
        nsp_labels: ints(&batch_json, "nspLabels"),
    };
    let adam = AdamConfig { lr, ..AdamConfig::default() };
    let model = ModelHandle::new(config, &ModelOptions::default()).unwrap();
    let mut trainer = Trainer::new(&model, &TrainerOptions { seed: 0, adam, ..TrainerOptions::default() }).unwrap();
    model.load_weights(&std::fs::read(fixtures().join("initial.safetensors")).unwrap(), &Naming::Tsbert).unwrap();
    let expected: HashMap<String, Tensor> =
        candle_core::safetensors::load(fixtures().join("expected.safetensors"), &Device::Cpu).unwrap();

    let out = model.forward(&batch).unwrap();
    check("encoded", &flat(&out.encoded), &expected["encoded"], 1e-5);
    check("mlm_logits", &flat(&out.mlm_logits), &expected["mlm_logits"], 1e-5);
    check("nsp_logits", &flat(&out.nsp_logits), &expected["nsp_logits"], 1e-5);
    check("mlm_loss", &[out.losses.mlm], &expected["mlm_loss"], 1e-5);
    check("nsp_loss", &[out.losses.nsp], &expected["nsp_loss"], 1e-5);

    let names: Vec<String> = model.params().iter().map(|(n, _)| n.to_string()).collect();
    let step_losses = flat(&expected["step_losses"]);
    for step in 0..3 {
        let losses = trainer.compute_gradients(&model, &batch).unwrap();
        check(
            &format!("step {step} losses"),
            &[losses.mlm, losses.nsp],
            &Tensor::new(&step_losses[step * 2..step * 2 + 2], &Device::Cpu).unwrap(),
            1e-5,
        );
        if step == 0 {
            for name in &names {
                let grad = trainer.last_grad(&model, name).unwrap().unwrap();
                check(&format!("grad {name}"), &flat(&grad), &expected[&format!("grad.{name}")], 1e-4);
            }
        }
        trainer.optimizer_step().unwrap();
    }
    for name in &names {
        let value = model.params().get(name).unwrap().as_tensor().clone();
        if name.ends_with("W_k.bias") {
            // Its gradient is rounding noise around an exact 0, and Adam divides the noise
            // by its own size: each step moves it by about ±lr with a random sign on either
            // side. All that can agree is the size of the move.
            let (ours, torch) = (flat(&value), flat(&expected[&format!("step3.{name}")]));
            let diff = ours.iter().zip(&torch).fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(diff <= 2.0 * 3.0 * lr * 1.01, "{name}: moved {diff} apart, more than 3 steps of ±lr");
            continue;
        }
        check(&format!("{name} after 3 Adam steps"), &flat(&value), &expected[&format!("step3.{name}")], 1e-4);
    }
}
