//! Hostile sizes and diverging runs: refused before allocation, never applied, never saved.

use crate::common::{model, random_batch, tiny_config, values};
use candle_core::{DType, Device, Tensor};
use tsbert_core::adam::AdamConfig;
use tsbert_core::trainer::DIVERGED_FACTOR;
use tsbert_core::weights::{Naming, WeightsFile};
use tsbert_core::{memory, BertConfig, Error, ModelHandle, ModelOptions, StepLosses, Trainer, TrainerOptions};

#[test]
fn sizes_over_their_limits_are_refused_by_name() {
    let base = tiny_config(0.0);
    for (config, field) in [
        (BertConfig { vocab_size: (1 << 24) + 1, ..base.clone() }, "vocabSize"),
        (BertConfig { max_positions: 1_000_000_000, ..base.clone() }, "maxPositions"),
        (BertConfig { layers: usize::MAX, ..base.clone() }, "layers"),
        (BertConfig { hidden: 1 << 20, heads: 1, ..base.clone() }, "hidden"),
    ] {
        let err = config.validate().unwrap_err().to_string();
        assert!(err.starts_with(&format!("{field}: ")) && err.contains("over the limit"), "{err}");
    }
}

#[test]
fn the_pooler_goes_with_the_nsp_head_and_stays_without_it() {
    let base = tiny_config(0.0);
    let err = BertConfig { pooler: Some(false), ..base.clone() }.validate().unwrap_err().to_string();
    assert!(err.starts_with("pooler: the NSP head reads the pooler's output"), "{err}");
    let names = |config: BertConfig| -> Vec<String> {
        model(config, 1, DType::F32).params().iter().map(|(n, _)| n.to_string()).collect()
    };
    let bare = BertConfig { mlm_head: false, nsp_head: false, ..base.clone() };
    assert!(!names(bare.clone()).iter().any(|n| n.starts_with("hidden.0")), "no pooler by default without NSP");
    let kept = names(BertConfig { pooler: Some(true), ..bare });
    assert!(kept.contains(&"hidden.0.weight".to_string()) && !kept.iter().any(|n| n.starts_with("nsp.")), "{kept:?}");
    // a model with both heads names its parameters as before (checkpoints stay readable)
    assert_eq!(names(BertConfig { pooler: Some(true), ..base.clone() }), names(base));
}

#[test]
fn the_parameter_count_is_known_before_the_model_is_built() {
    let config = tiny_config(0.0);
    let t = model(config.clone(), 1, DType::F32);
    assert_eq!(memory::param_count(&config).unwrap(), t.params().count() as u128);
    let textbook = BertConfig::textbook(20256);
    assert!(memory::trainable_bytes(&textbook).unwrap() > 16 * 5_000_000);
}

#[test]
fn a_model_or_a_batch_over_the_memory_limit_is_refused_with_the_estimate() {
    let options = |limit| ModelOptions { memory_limit: Some(limit), ..ModelOptions::default() };
    let big = BertConfig { hidden: 1 << 12, heads: 1, ..BertConfig::textbook(1 << 20) };
    let err = ModelHandle::new(big, &options(1 << 30)).unwrap_err().to_string();
    assert!(err.starts_with("config: a model of ") && err.contains("more than the 1.07 GB allowed"), "{err}");
    // weights that fit, but not with their gradients and Adam's moments
    let textbook = BertConfig::textbook(20256);
    let weights = memory::weights_bytes(&textbook).unwrap() as u64;
    let m = ModelHandle::new(textbook, &options(2 * weights)).unwrap();
    let err = Trainer::new(&m, &TrainerOptions::default()).unwrap_err().to_string();
    assert!(err.starts_with("config: a model of ") && err.contains("with its gradients and Adam state"), "{err}");
    let config = BertConfig { max_positions: 4096, ..tiny_config(0.0) };
    let m = ModelHandle::new(config.clone(), &options(50_000_000)).unwrap();
    let mut t = Trainer::new(&m, &TrainerOptions::default()).unwrap();
    let long = random_batch(&config, 8, 4096, 2, 1);
    let err = t.train_step(&m, &long).unwrap_err().to_string();
    assert!(err.starts_with("batch: a training pass over 8 × 4096 tokens needs about"), "{err}");
    assert_eq!(t.steps_taken(), 0);
}

/// Trains a tiny model with learning rate `lr` on one batch until a step diverges (at most 30
/// steps), checking that the diverged step changed no weight; the model, its trainer, the
/// losses of the steps before and the divergence's message.
fn train_until_diverged(lr: f64) -> (ModelHandle, Trainer, Vec<StepLosses>, String) {
    let config = tiny_config(0.0);
    let adam = AdamConfig { lr, ..AdamConfig::default() };
    let m = model(config.clone(), 0, DType::F32);
    let mut t = Trainer::new(&m, &TrainerOptions { adam, ..TrainerOptions::default() }).unwrap();
    let batch = random_batch(&config, 4, 8, 2, 1);
    let weights =
        |m: &ModelHandle| -> Vec<Vec<f64>> { m.params().iter().map(|(_, v)| values(v.as_tensor())).collect() };
    let mut losses = Vec::new();
    for _ in 0..30 {
        let before = weights(&m);
        match t.train_step(&m, &batch) {
            Ok(l) => losses.push(l),
            Err(Error::Diverged(message)) => {
                assert_eq!(before, weights(&m), "the diverged step changed the weights");
                return (m, t, losses, message);
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("lr {lr} does not diverge within 30 steps")
}

#[test]
fn a_diverging_step_is_reported_and_not_applied_and_nothing_non_finite_is_saved() {
    let (m, t, _, message) = train_until_diverged(1e30);
    let step = t.steps_taken() + 1;
    assert!(message.starts_with(&format!("training diverged at step {step}: ")), "{message}");
    assert!(t.last_grad(&m, "nsp.output.bias").unwrap().is_none(), "no gradient is kept");
    m.save_weights(&Naming::Tsbert).expect("the last good weights are finite and save");

    let var = m.params().get("mlm.mlp.0.bias").unwrap();
    let mut poisoned = values(var.as_tensor());
    poisoned[0] = f64::NAN;
    var.set(&Tensor::from_vec(poisoned, var.dims(), &Device::Cpu).unwrap().to_dtype(DType::F32).unwrap()).unwrap();
    let err = m.save_weights(&Naming::Tsbert).unwrap_err().to_string();
    assert!(err.contains("'mlm.mlp.0.bias' holds NaN or infinite values; not saved"), "{err}");
}

#[test]
fn a_finite_blow_up_is_diverged_too_before_its_update() {
    // lr 1e6 blows the weights up without a NaN: losses of 1e13 and every token the same vector
    let (_, _, losses, message) = train_until_diverged(1e6);
    let bound = DIVERGED_FACTOR * (tiny_config(0.0).vocab_size as f64).ln();
    assert!(losses.iter().all(|l| l.mlm <= bound && l.nsp <= DIVERGED_FACTOR * 2f64.ln()), "{losses:?}");
    assert!(message.contains("times a uniform guess's (ln "), "{message}");
}

#[test]
fn a_weights_header_is_checked_against_the_config_without_building_the_model() {
    let config = tiny_config(0.0);
    let bytes = model(config.clone(), 1, DType::F32).save_weights(&Naming::Tsbert).unwrap();
    let file = WeightsFile::from_bytes(&bytes).unwrap();
    file.check_fits(&config, &Naming::Tsbert).unwrap();
    let err = file
        .check_fits(&BertConfig { max_positions: 500_000, ..config.clone() }, &Naming::Tsbert)
        .unwrap_err()
        .to_string();
    assert!(err.contains("'encoder.pos_embedding' has shape [10, 8], the config says [500000, 8]"), "{err}");
    let err = file.check_fits(&BertConfig { layers: 4000, ..config.clone() }, &Naming::Tsbert).unwrap_err().to_string();
    assert!(err.contains("parameter 'encoder.blks.2.attention.W_q.weight' is missing"), "{err}");
    let err = WeightsFile::from_bytes(&bytes[..5]).unwrap_err().to_string();
    assert!(err.contains("not a readable safetensors file"), "{err}");
}

/// A weights file read from disk a tensor at a time gives the model its bytes give (f32, and
/// converted to f64); a missing, truncated, padded or garbage file is a checkpoint error that
/// says which.
#[test]
fn a_weights_file_is_read_from_disk_as_from_its_bytes_and_a_damaged_one_is_refused() {
    let config = tiny_config(0.0);
    let bytes = model(config.clone(), 5, DType::F32).save_weights(&Naming::Tsbert).unwrap();
    let dir = std::env::temp_dir().join(format!("tsbert-weights-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    std::fs::write(&path, &bytes).unwrap();
    for dtype in [DType::F32, DType::F64] {
        let options = ModelOptions { dtype, ..ModelOptions::default() };
        let load = |file: &WeightsFile| {
            ModelHandle::from_weights(config.clone(), &options, file, &config, &Naming::Tsbert).unwrap()
        };
        let (from_disk, from_bytes) =
            (load(&WeightsFile::open(&path).unwrap()), load(&WeightsFile::from_bytes(&bytes).unwrap()));
        assert_eq!(from_disk.params().iter().count(), from_bytes.params().iter().count());
        for (name, var) in from_bytes.params().iter() {
            assert_eq!(var.dtype(), dtype, "{name}");
            assert_eq!(values(var.as_tensor()), values(from_disk.params().get(name).unwrap().as_tensor()), "{name}");
        }
    }
    let refused = |contents: &[u8]| {
        std::fs::write(&path, contents).unwrap();
        WeightsFile::open(&path).unwrap_err().to_string()
    };
    let err = refused(&bytes[..bytes.len() - 3]);
    assert!(err.contains("incomplete"), "{err}");
    let err = refused(&[&bytes[..], b"xyz"].concat());
    assert!(err.contains("incomplete or not one file"), "{err}");
    let err = refused(&bytes[..20]);
    assert!(err.contains("not a readable safetensors file"), "{err}");
    let err = refused(b"not a safetensors file at all");
    assert!(err.contains("not a readable safetensors file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    let err = WeightsFile::open(&path).unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn dropout_masks_drop_the_asked_share_and_continue_the_stream() {
    use tsbert_core::rng::SeededRng;
    let mask = |rng: &mut SeededRng| {
        rng.dropout_mask(300_000, 0.2, DType::F32, &Device::Cpu).unwrap().to_vec1::<f32>().unwrap()
    };
    let mut rng = SeededRng::new(7);
    let (first, second) = (mask(&mut rng), mask(&mut rng));
    let dropped = first.iter().filter(|&&v| v == 0.0).count() as f64 / first.len() as f64;
    assert!((dropped - 0.2).abs() < 0.005, "dropped {dropped}");
    assert!(first.iter().all(|&v| v == 0.0 || v == 1.25));
    assert_ne!(first, second, "the second mask repeats the first");
    assert_eq!(first, mask(&mut SeededRng::new(7)), "a seed gives one mask");
}
