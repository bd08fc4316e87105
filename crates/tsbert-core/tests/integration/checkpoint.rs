//! Weights round-trip through safetensors bytes; bad bytes are refused without touching the
//! model.

use crate::common::{model, tiny_config, values};
use candle_core::DType;
use tsbert_core::weights::Naming;

#[test]
fn weights_round_trip_bit_for_bit() {
    let config = tiny_config(0.0);
    let (a, b) = (model(config.clone(), 1, DType::F32), model(config, 2, DType::F32));
    b.load_weights(&a.save_weights(&Naming::Tsbert).unwrap(), &Naming::Tsbert).unwrap();
    for ((name, va), (_, vb)) in a.params().iter().zip(b.params().iter()) {
        assert_eq!(values(va.as_tensor()), values(vb.as_tensor()), "{name}");
    }
}

#[test]
fn truncated_mismatched_and_non_finite_weights_are_refused_and_the_model_is_unchanged() {
    let config = tiny_config(0.0);
    let a = model(config.clone(), 1, DType::F32);
    let b = model(config.clone(), 2, DType::F32);
    let before = values(b.params().get("nsp.output.weight").unwrap().as_tensor());
    let bytes = a.save_weights(&Naming::Tsbert).unwrap();
    let err = b.load_weights(&bytes[..bytes.len() - 100], &Naming::Tsbert).unwrap_err().to_string();
    assert!(err.contains("not a readable safetensors file"), "{err}");
    let bigger = model(tsbert_core::BertConfig { hidden: 12, ..config.clone() }, 1, DType::F32);
    let err = b.load_weights(&bigger.save_weights(&Naming::Tsbert).unwrap(), &Naming::Tsbert).unwrap_err().to_string();
    assert!(err.contains("has shape"), "{err}");
    let mut tensors = candle_core::safetensors::load_buffer(&bytes, &candle_core::Device::Cpu).unwrap();
    let mut nan = values(&tensors["mlm.mlp.0.bias"]);
    nan[0] = f64::NAN;
    let nan: Vec<f32> = nan.iter().map(|&v| v as f32).collect();
    tensors
        .insert("mlm.mlp.0.bias".into(), candle_core::Tensor::new(nan.as_slice(), &candle_core::Device::Cpu).unwrap());
    let err =
        b.load_weights(&safetensors::serialize(&tensors, None).unwrap(), &Naming::Tsbert).unwrap_err().to_string();
    assert!(err.contains("'mlm.mlp.0.bias' holds NaN or infinite values"), "{err}");
    assert_eq!(values(b.params().get("nsp.output.weight").unwrap().as_tensor()), before);
}
