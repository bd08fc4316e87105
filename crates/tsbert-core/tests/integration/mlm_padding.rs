//! Padded MLM predictions (weight 0) must not change the loss or any gradient.

use crate::common::{model, random_batch, tiny_config, trainer, values};
use candle_core::DType;

#[test]
fn padded_predictions_change_neither_loss_nor_gradients() {
    let config = tiny_config(0.0);
    let batch = random_batch(&config, 4, 8, 3, 9);
    assert!(batch.mlm_weights.contains(&0.0), "the batch has padded predictions");
    let mut other = batch.clone();
    for i in 0..other.mlm_weights.len() {
        if other.mlm_weights[i] == 0.0 {
            other.pred_positions[i] = 3;
            other.mlm_labels[i] = 11;
        }
    }
    assert_ne!(batch, other);
    let ((a, mut ta), (b, mut tb)) =
        (trainer(config.clone(), 5, 0.01, DType::F32), trainer(config, 5, 0.01, DType::F32));
    let (la, lb) = (ta.compute_gradients(&a, &batch).unwrap(), tb.compute_gradients(&b, &other).unwrap());
    assert_eq!(la, lb);
    for (name, _) in a.params().iter() {
        let ga = values(&ta.last_grad(&a, name).unwrap().unwrap());
        let gb = values(&tb.last_grad(&b, name).unwrap().unwrap());
        assert_eq!(ga, gb, "{name}");
    }
}

#[test]
fn the_mlm_loss_is_the_weighted_mean_over_real_predictions() {
    // With all weights doubled the weighted mean is unchanged (up to the 1e-8 in the
    // denominator); with a real prediction's
    // weight set to 0 it changes.
    let config = tiny_config(0.0);
    let t = model(config.clone(), 5, DType::F64);
    let batch = random_batch(&config, 4, 8, 3, 9);
    let base = t.eval_losses(&batch).unwrap().mlm;
    let mut doubled = batch.clone();
    doubled.mlm_weights.iter_mut().for_each(|w| *w *= 2.0);
    assert!((t.eval_losses(&doubled).unwrap().mlm - base).abs() < 1e-7);
    let mut dropped = batch.clone();
    dropped.mlm_weights[0] = 0.0;
    assert!((t.eval_losses(&dropped).unwrap().mlm - base).abs() > 1e-6);
    // and it equals the mean of per-prediction cross-entropies computed from the logits
    let out = t.forward(&batch).unwrap();
    let logits = values(&out.mlm_logits);
    let v = config.vocab_size;
    let (mut sum, mut count) = (0.0, 0.0);
    for (i, &w) in batch.mlm_weights.iter().enumerate() {
        let row = &logits[i * v..(i + 1) * v];
        let lse = row.iter().map(|x| x.exp()).sum::<f64>().ln();
        sum += f64::from(w) * (lse - row[batch.mlm_labels[i] as usize]);
        count += f64::from(w);
    }
    assert!((sum / (count + 1e-8) - base).abs() < 1e-9);
}
