//! What long pretraining runs need from the core: gradient accumulation equal to one big
//! batch, clipping, AdamW's decoupled decay, a learning rate set per step, an optimizer state
//! that resumes a run bit for bit, and held-out metrics.

use candle_core::{DType, Device, Tensor};
use tsbert_core::adam::{Adam, AdamConfig};
use tsbert_core::batch::Sequences;
use tsbert_core::params::{Init, ParamStore};
use tsbert_core::weights::Naming;
use tsbert_core::{Batch, ModelHandle, Trainer, TrainerOptions};

use crate::common::{model, random_batch, tiny_config, trainer, values};

/// `a` and `b` (same L and P) as one batch.
fn concat(a: &Batch, b: &Batch) -> Batch {
    let join = |x: &[i32], y: &[i32]| [x, y].concat();
    Batch {
        sequences: Sequences {
            batch_size: a.sequences.batch_size + b.sequences.batch_size,
            seq_len: a.sequences.seq_len,
            tokens: join(&a.sequences.tokens, &b.sequences.tokens),
            segments: join(&a.sequences.segments, &b.sequences.segments),
            valid_lens: join(&a.sequences.valid_lens, &b.sequences.valid_lens),
        },
        num_preds: a.num_preds,
        pred_positions: join(&a.pred_positions, &b.pred_positions),
        mlm_weights: [a.mlm_weights.as_slice(), &b.mlm_weights].concat(),
        mlm_labels: join(&a.mlm_labels, &b.mlm_labels),
        nsp_labels: join(&a.nsp_labels, &b.nsp_labels),
    }
}

fn weights(m: &ModelHandle) -> Vec<Vec<f64>> {
    m.params().iter().map(|(_, v)| values(v.as_tensor())).collect()
}

#[test]
fn accumulating_two_batches_takes_the_update_of_one_batch_of_both() {
    let config = tiny_config(0.0);
    let (b1, b2) = (random_batch(&config, 3, 8, 2, 1), random_batch(&config, 4, 8, 2, 2));
    let ((a, mut ta), (b, mut tb)) =
        (trainer(config.clone(), 3, 0.01, DType::F64), trainer(config, 3, 0.01, DType::F64));
    for _ in 0..3 {
        let (la, lb) = (
            ta.train_step_accumulated(&a, &[b1.clone(), b2.clone()]).unwrap(),
            tb.train_step(&b, &concat(&b1, &b2)).unwrap(),
        );
        assert!((la.mlm - lb.mlm).abs() < 1e-12 && (la.nsp - lb.nsp).abs() < 1e-12, "{la:?} {lb:?}");
    }
    for (name, (x, y)) in a.params().iter().map(|(n, _)| n).zip(weights(&a).iter().zip(&weights(&b))) {
        let diff = x.iter().zip(y).fold(0.0_f64, |m, (p, q)| m.max((p - q).abs()));
        assert!(diff < 1e-10 || name.ends_with("W_k.bias"), "{name}: {diff:e}");
    }
}

#[test]
fn clipping_bounds_the_global_gradient_norm() {
    let config = tiny_config(0.0);
    let batch = random_batch(&config, 4, 8, 2, 5);
    let m = model(config.clone(), 0, DType::F64);
    let mut t = Trainer::new(&m, &TrainerOptions { clip_norm: Some(1e-3), ..TrainerOptions::default() }).unwrap();
    t.compute_gradients(&m, &batch).unwrap();
    let norm: f64 = m
        .params()
        .iter()
        .map(|(n, _)| values(&t.last_grad(&m, n).unwrap().unwrap()).iter().map(|g| g * g).sum::<f64>())
        .sum::<f64>()
        .sqrt();
    assert!((norm - 1e-3).abs() < 1e-12, "{norm}");
    let bad = TrainerOptions { clip_norm: Some(0.0), ..TrainerOptions::default() };
    assert!(Trainer::new(&m, &bad).unwrap_err().to_string().starts_with("clipNorm:"));
}

#[test]
fn decoupled_weight_decay_shrinks_weights_and_spares_biases_and_layer_norms() {
    let mut params = ParamStore::new(0, DType::F64, Device::Cpu);
    let w = params.create("w", &[2], Init::Constant(2.0)).unwrap();
    let b = params.create("b", &[2], Init::Constant(2.0)).unwrap();
    params.exclude_from_decay("b");
    let (lr, wd) = (0.1, 0.5);
    let mut adam =
        Adam::new(AdamConfig { lr, weight_decay: wd, decoupled: true, ..AdamConfig::default() }, &params).unwrap();
    let zeros = Tensor::zeros(2, DType::F64, &Device::Cpu).unwrap();
    let grads = ((&w * &zeros).unwrap() + (&b * &zeros).unwrap()).unwrap().sum_all().unwrap().backward().unwrap();
    let grads = params.take_gradients(grads);
    assert_eq!(grads.len(), 2, "both have a (zero) gradient");
    adam.step(&grads).unwrap();
    // zero gradients: Adam's update is 0, only the decay moves w
    assert_eq!(values(&w), vec![2.0 * (1.0 - lr * wd); 2]);
    assert_eq!(values(&b), vec![2.0; 2]);
    adam.set_lr(0.5).unwrap();
    assert!(adam.set_lr(-1.0).unwrap_err().to_string().starts_with("lr:"));
}

#[test]
fn a_run_resumed_from_its_weights_and_optimizer_state_is_bit_identical() {
    let config = tiny_config(0.3); // dropout on: the dropout stream must resume too
    let batches: Vec<Batch> = (0..4).map(|s| random_batch(&config, 3, 8, 2, s)).collect();
    let (straight, mut ts) = trainer(config.clone(), 7, 0.01, DType::F32);
    let straight_losses: Vec<_> = batches.iter().map(|b| ts.train_step(&straight, b).unwrap()).collect();

    let (first, mut tf) = trainer(config.clone(), 7, 0.01, DType::F32);
    let mut losses: Vec<_> = batches[..2].iter().map(|b| tf.train_step(&first, b).unwrap()).collect();
    let (weights_bytes, state) = (first.save_weights(&Naming::Tsbert).unwrap(), tf.save_state().unwrap());
    // another seed: everything comes from the files
    let (resumed, mut tr) = trainer(config, 99, 0.01, DType::F32);
    resumed.load_weights(&weights_bytes, &Naming::Tsbert).unwrap();
    tr.load_state(&state).unwrap();
    assert_eq!(tr.steps_taken(), 2);
    losses.extend(batches[2..].iter().map(|b| tr.train_step(&resumed, b).unwrap()));
    assert_eq!(losses, straight_losses);
    assert_eq!(weights(&resumed), weights(&straight));
    let err = tr.load_state(&state[..40]).unwrap_err().to_string();
    assert!(err.starts_with("optimizer state: "), "{err}");
    // NaN moments are refused when read, not a step later as NaN weights
    let (_, header) = safetensors::SafeTensors::read_metadata(&state).unwrap();
    let mut tensors = candle_core::safetensors::load_buffer(&state, &candle_core::Device::Cpu).unwrap();
    let key = tensors.keys().find(|k| k.starts_with("v.")).unwrap().clone();
    let poisoned = (tensors[&key].ones_like().unwrap() * f64::NAN).unwrap();
    tensors.insert(key.clone(), poisoned);
    let bytes = safetensors::serialize(&tensors, header.metadata().clone()).unwrap();
    let err = tr.load_state(&bytes).unwrap_err().to_string();
    assert_eq!(err, format!("optimizer state: '{key}' holds NaN or infinite values"));
}

#[test]
fn held_out_metrics_agree_with_the_losses() {
    let config = tiny_config(0.0);
    let t = model(config.clone(), 1, DType::F64);
    let batch = random_batch(&config, 6, 9, 3, 4);
    let m = t.eval_sums(&batch).unwrap();
    let losses = t.eval_losses(&batch).unwrap();
    assert!((m.mlm_loss / (m.mlm_weight + 1e-8) - losses.mlm).abs() < 1e-9);
    assert!((m.nsp_loss / m.rows - losses.nsp).abs() < 1e-12);
    assert_eq!(m.rows, 6.0);
    assert_eq!(m.mlm_weight, batch.mlm_weights.iter().map(|&w| f64::from(w)).sum::<f64>());
    assert!((0.0..=m.mlm_weight).contains(&m.mlm_correct) && (0.0..=6.0).contains(&m.nsp_correct));
    // the argmax agrees with the logits
    let out = t.forward(&batch).unwrap();
    let nsp = values(&out.nsp_logits);
    let right = (0..6).filter(|&r| i32::from(nsp[2 * r + 1] > nsp[2 * r]) == batch.nsp_labels[r]).count();
    assert_eq!(m.nsp_correct, right as f64);
    // two batches evaluated together: the means of their sums
    let other = random_batch(&config, 3, 9, 3, 5);
    let n = t.eval_sums(&other).unwrap();
    let both = t.evaluate(&[batch, other]).unwrap();
    assert_eq!(both.examples, 9.0);
    assert!((both.mlm_loss - (m.mlm_loss + n.mlm_loss) / (m.mlm_weight + n.mlm_weight)).abs() < 1e-12);
    assert!((both.nsp_accuracy - (m.nsp_correct + n.nsp_correct) / 9.0).abs() < 1e-12);
    assert!(t.evaluate(&[]).unwrap_err().to_string().starts_with("batches: no batch given"));
}
