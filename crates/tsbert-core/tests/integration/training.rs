//! The loss falls when one fixed batch is trained; training is reproducible under a seed.

use crate::common::{random_batch, tiny_config, trainer, values};
use candle_core::DType;

#[test]
fn loss_falls_steadily_over_fifty_steps_on_one_batch() {
    let config = tiny_config(0.1);
    let (m, mut t) = trainer(config.clone(), 2, 0.01, DType::F32);
    let batch = random_batch(&config, 6, 9, 2, 3);
    let totals: Vec<f64> = (0..50)
        .map(|_| {
            let l = t.train_step(&m, &batch).unwrap();
            l.mlm + l.nsp
        })
        .collect();
    let window_means: Vec<f64> = totals.chunks(10).map(|w| w.iter().sum::<f64>() / w.len() as f64).collect();
    for pair in window_means.windows(2) {
        assert!(pair[1] < pair[0], "10-step means do not fall: {window_means:?}");
    }
    assert!(totals[49] < 0.5 * totals[0], "first {} last {}", totals[0], totals[49]);
}

#[test]
fn same_seed_same_losses_and_weights_after_training() {
    let config = tiny_config(0.2);
    let batch = random_batch(&config, 4, 8, 2, 1);
    let ((a, mut ta), (b, mut tb)) =
        (trainer(config.clone(), 9, 0.01, DType::F32), trainer(config, 9, 0.01, DType::F32));
    for _ in 0..3 {
        assert_eq!(ta.train_step(&a, &batch).unwrap(), tb.train_step(&b, &batch).unwrap());
    }
    for ((name, va), (_, vb)) in a.params().iter().zip(b.params().iter()) {
        assert_eq!(values(va.as_tensor()), values(vb.as_tensor()), "{name}");
    }
}

#[test]
fn dropout_is_active_in_training_and_off_in_evaluation() {
    let config = tiny_config(0.5);
    let batch = random_batch(&config, 4, 8, 2, 1);
    let (m, mut t) = trainer(config, 9, 0.01, DType::F32);
    let eval = m.eval_losses(&batch).unwrap();
    assert_eq!(eval, m.eval_losses(&batch).unwrap(), "evaluation is deterministic");
    let first = t.compute_gradients(&m, &batch).unwrap();
    let second = t.compute_gradients(&m, &batch).unwrap();
    assert_ne!(first, second, "two training passes draw different dropout masks");
    assert_ne!(first, eval);
}

/// A change that makes a valid batch invalid.
type Corruption = Box<dyn Fn(&mut tsbert_core::Batch)>;

#[test]
fn invalid_batches_are_rejected_before_candle_with_the_field_named() {
    let config = tiny_config(0.0);
    let (m, mut t) = trainer(config.clone(), 1, 0.01, DType::F32);
    let good = random_batch(&config, 2, 6, 2, 1);
    let cases: Vec<(&str, Corruption)> = vec![
        ("tokens[3]", Box::new(|b| b.sequences.tokens[3] = 13)),
        ("tokens[0]", Box::new(|b| b.sequences.tokens[0] = -1)),
        ("segments[1]", Box::new(|b| b.sequences.segments[1] = 2)),
        ("validLens[1]", Box::new(|b| b.sequences.valid_lens[1] = 7)),
        ("validLens[0]", Box::new(|b| b.sequences.valid_lens[0] = 0)),
        ("predPositions[2]", Box::new(|b| b.pred_positions[2] = 6)),
        ("mlmLabels[0]", Box::new(|b| b.mlm_labels[0] = 99)),
        ("nspLabels[1]", Box::new(|b| b.nsp_labels[1] = 2)),
        ("mlmWeights[1]", Box::new(|b| b.mlm_weights[1] = f32::NAN)),
        (
            "tokens",
            Box::new(|b| {
                b.sequences.tokens.pop();
            }),
        ),
        ("nspLabels", Box::new(|b| b.nsp_labels.push(0))),
        ("seqLen", Box::new(|b| b.sequences.seq_len = 11)),
    ];
    for (field, corrupt) in cases {
        let mut bad = good.clone();
        corrupt(&mut bad);
        let err = t.train_step(&m, &bad).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{field}:")), "expected {field}, got: {err}");
    }
    t.train_step(&m, &good).expect("a good batch still trains");
}
