//! Two CPU replicas with dropout 0 take the same update as one device on the whole batch.

use crate::common::{random_batch, tiny_config, trainer, values};
use candle_core::{DType, Device};
use tsbert_core::adam::AdamConfig;
use tsbert_core::{ModelHandle, ModelOptions, Trainer, TrainerOptions};

fn check(replicas: usize, rows: usize) {
    let config = tiny_config(0.0);
    let batch = random_batch(&config, rows, 9, 2, 17);
    let (single, mut single_trainer) = trainer(config.clone(), 4, 0.01, DType::F64);
    let options =
        ModelOptions { seed: 4, dtype: DType::F64, devices: vec![Device::Cpu; replicas], ..ModelOptions::default() };
    let parallel = ModelHandle::new(config, &options).unwrap();
    let adam = AdamConfig { lr: 0.01, ..AdamConfig::default() };
    let mut parallel_trainer =
        Trainer::new(&parallel, &TrainerOptions { seed: 4, adam, ..TrainerOptions::default() }).unwrap();
    for step in 0..3 {
        let (a, b) = (
            single_trainer.train_step(&single, &batch).unwrap(),
            parallel_trainer.train_step(&parallel, &batch).unwrap(),
        );
        assert!((a.mlm - b.mlm).abs() < 1e-12 && (a.nsp - b.nsp).abs() < 1e-12, "step {step}: {a:?} vs {b:?}");
    }
    for replica in parallel.replica_params() {
        for (name, var) in single.params().iter() {
            let (want, got) = (values(var.as_tensor()), values(replica.get(name).unwrap().as_tensor()));
            let diff = want.iter().zip(&got).fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
            // the key bias's gradient is rounding noise around 0, which Adam scales to ±lr
            let bound = if name.ends_with("W_k.bias") { 0.06 } else { 1e-10 };
            assert!(diff <= bound, "{name}: replicas differ from one device by {diff:e}");
        }
    }
}

#[test]
fn two_replicas_take_the_single_device_update() {
    check(2, 6);
}

#[test]
fn three_replicas_on_an_uneven_batch_take_the_single_device_update() {
    check(3, 7);
}

#[test]
fn more_replicas_than_rows_still_step_together() {
    check(3, 2);
}
