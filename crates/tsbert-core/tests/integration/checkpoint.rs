//! Weights round-trip through safetensors; bad files are refused without touching the model.

use crate::common::{tiny_config, trainer, values};
use candle_core::DType;
use tsbert_core::checkpoint::{load_weights, save_weights};

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tsbert-checkpoint-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("model.safetensors")
}

#[test]
fn weights_round_trip_bit_for_bit() {
    let config = tiny_config(0.0);
    let (a, b) = (trainer(config.clone(), 1, 0.01, DType::F32), trainer(config, 2, 0.01, DType::F32));
    let path = temp_path("round-trip");
    save_weights(a.params(), &path).unwrap();
    load_weights(b.params(), &path).unwrap();
    for ((name, va), (_, vb)) in a.params().iter().zip(b.params().iter()) {
        assert_eq!(values(va.as_tensor()), values(vb.as_tensor()), "{name}");
    }
}

#[test]
fn truncated_missing_and_mismatched_files_are_refused_and_the_model_is_unchanged() {
    let config = tiny_config(0.0);
    let a = trainer(config.clone(), 1, 0.01, DType::F32);
    let b = trainer(config.clone(), 2, 0.01, DType::F32);
    let before = values(b.params().get("nsp.output.weight").unwrap().as_tensor());
    let path = temp_path("bad");
    save_weights(a.params(), &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = load_weights(b.params(), &path).unwrap_err().to_string();
    assert!(err.contains("not a readable safetensors file"), "{err}");
    let err = load_weights(b.params(), &path.with_file_name("absent.safetensors")).unwrap_err().to_string();
    assert!(err.contains("absent.safetensors"), "{err}");
    let bigger = trainer(tsbert_core::BertConfig { hidden: 12, ..config }, 1, 0.01, DType::F32);
    save_weights(bigger.params(), &path).unwrap();
    let err = load_weights(b.params(), &path).unwrap_err().to_string();
    assert!(err.contains("has shape"), "{err}");
    assert_eq!(values(b.params().get("nsp.output.weight").unwrap().as_tensor()), before);
}
