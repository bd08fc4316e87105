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
    // the key bias's gradient is rounding noise around 0, which Adam scales to ±lr
    assert_replicas_match(&single, &parallel, (0.06, 1e-10));
}

/// Every parameter of every replica of `parallel` within `bound` of `single`'s: the key bias's
/// bound first, every other parameter's second.
fn assert_replicas_match(single: &ModelHandle, parallel: &ModelHandle, (key_bias, others): (f64, f64)) {
    for replica in parallel.replica_params() {
        for (name, var) in single.params().iter() {
            let (want, got) = (values(var.as_tensor()), values(replica.get(name).unwrap().as_tensor()));
            let diff = want.iter().zip(&got).fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
            let bound = if name.ends_with("W_k.bias") { key_bias } else { others };
            assert!(diff <= bound, "{name}: a replica differs from one device by {diff:e}");
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

/// A task head's step: over two CPU replicas, and as two accumulated batches, it is the update
/// of one device on the whole batch (for a head of each kind; token labels with -100s, so the
/// parts score different numbers of tokens).
#[test]
fn task_steps_split_over_replicas_or_accumulated_take_the_whole_batch_update() {
    use tsbert_core::batch::Sequences;
    use tsbert_core::config::{TaskHead, TaskKind};
    use tsbert_core::task_loss::TaskLabels;
    let (rows, len) = (6, 9);
    let valid_lens = random_batch(&tiny_config(0.0), rows, len, 2, 17).sequences.valid_lens();
    let padding = |i: usize| i % len >= valid_lens[i / len];
    for (kind, labels) in [
        (TaskKind::SingleLabelClassification, TaskLabels::Classes(vec![0, 2, 1, 1, 0, 2])),
        (TaskKind::MultiLabelClassification, TaskLabels::Multi((0..18).map(|i| (i % 2) as f32).collect())),
        (TaskKind::Regression, TaskLabels::Values((0..18).map(|i| i as f32 / 7.0).collect())),
        (
            TaskKind::TokenClassification,
            TaskLabels::Tokens(
                (0..rows * len)
                    .map(|i| if i % 4 == 0 || i < 9 || padding(i) { -100 } else { (i % 3) as i32 })
                    .collect(),
            ),
        ),
    ] {
        let config = tsbert_core::BertConfig {
            mlm_head: false,
            nsp_head: false,
            pooler: Some(kind.reads_pooler()),
            task: Some(TaskHead { kind, num_labels: 3 }),
            ..tiny_config(0.0)
        };
        let batch = random_batch(&config, rows, len, 2, 17);
        let sequences: Sequences = batch.sequences.clone();
        let (single, mut single_trainer) = trainer(config.clone(), 4, 0.01, DType::F64);
        let options =
            ModelOptions { seed: 4, dtype: DType::F64, devices: vec![Device::Cpu; 2], ..ModelOptions::default() };
        let parallel = ModelHandle::new(config.clone(), &options).unwrap();
        let adam = AdamConfig { lr: 0.01, ..AdamConfig::default() };
        let mut parallel_trainer =
            Trainer::new(&parallel, &TrainerOptions { seed: 4, adam, ..TrainerOptions::default() }).unwrap();
        let (accumulated, mut accumulated_trainer) = trainer(config.clone(), 4, 0.01, DType::F64);
        let parts =
            [(sequences.rows(0, 2), labels.rows(0, 2, rows)), (sequences.rows(2, rows), labels.rows(2, rows, rows))];
        for step in 0..3 {
            let a = single_trainer.train_task_step(&single, &sequences, &labels).unwrap();
            let b = parallel_trainer.train_task_step(&parallel, &sequences, &labels).unwrap();
            let c = accumulated_trainer.train_task_step_accumulated(&accumulated, &parts).unwrap();
            assert!((a - b).abs() < 1e-12 && (a - c).abs() < 1e-12, "{kind:?} step {step}: {a} {b} {c}");
        }
        for other in parallel.replica_params().chain(std::iter::once(accumulated.params())) {
            for (name, var) in single.params().iter() {
                let (want, got) = (values(var.as_tensor()), values(other.get(name).unwrap().as_tensor()));
                let diff = want.iter().zip(&got).fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
                let bound = if name.ends_with("W_k.bias") { 0.06 } else { 1e-10 };
                assert!(diff <= bound, "{kind:?} {name}: differs from one device's update by {diff:e}");
            }
        }
    }
}

/// A model read from a weights file onto two CPU replicas: each replica owns its parameters
/// (the file's tensors become one replica's storage without a copy, never both replicas'), so
/// two steps move them as one device's do, not twice as far.
#[test]
fn a_model_loaded_onto_two_cpu_replicas_trains_as_one_device_does() {
    use tsbert_core::weights::{Naming, WeightsFile};
    let config = tiny_config(0.0);
    let bytes = crate::common::model(config.clone(), 3, DType::F32).save_weights(&Naming::Tsbert).unwrap();
    let file = WeightsFile::from_bytes(&bytes).unwrap();
    let load = |devices: Vec<Device>| {
        let options = ModelOptions { seed: 4, dtype: DType::F32, devices, ..ModelOptions::default() };
        ModelHandle::from_weights(config.clone(), &options, &file, &config, &Naming::Tsbert).unwrap()
    };
    let (single, parallel) = (load(vec![Device::Cpu]), load(vec![Device::Cpu; 2]));
    let options =
        TrainerOptions { seed: 4, adam: AdamConfig { lr: 0.01, ..AdamConfig::default() }, ..Default::default() };
    let (mut single_trainer, mut parallel_trainer) =
        (Trainer::new(&single, &options).unwrap(), Trainer::new(&parallel, &options).unwrap());
    let batch = random_batch(&config, 6, 9, 2, 17);
    for _ in 0..2 {
        single_trainer.train_step(&single, &batch).unwrap();
        parallel_trainer.train_step(&parallel, &batch).unwrap();
    }
    assert_replicas_match(&single, &parallel, (0.03, 1e-4));
}
