//! Adam against updates computed by hand.

use candle_core::{DType, Device, Tensor};
use tsbert_core::adam::{Adam, AdamConfig};
use tsbert_core::params::{Init, ParamStore};

/// Two steps with gradients g1 then g2 on θ0, written out with the textbook formulas.
fn by_hand(theta0: f64, g1: f64, g2: f64, lr: f64, wd: f64) -> (f64, f64) {
    let (b1, b2, eps) = (0.9_f64, 0.999_f64, 1e-8);
    let g1 = g1 + wd * theta0;
    let (m1, v1) = ((1.0 - b1) * g1, (1.0 - b2) * g1 * g1);
    let theta1 = theta0 - lr * (m1 / (1.0 - b1)) / ((v1 / (1.0 - b2)).sqrt() + eps);
    let g2 = g2 + wd * theta1;
    let (m2, v2) = (b1 * m1 + (1.0 - b1) * g2, b2 * v1 + (1.0 - b2) * g2 * g2);
    let theta2 = theta1 - lr * (m2 / (1.0 - b1 * b1)) / ((v2 / (1.0 - b2 * b2)).sqrt() + eps);
    (theta1, theta2)
}

fn check(wd: f64) {
    let mut params = ParamStore::new(0, DType::F64, Device::Cpu);
    let p = params.create("p", &[3], Init::Constant(0.0)).unwrap();
    let theta0 = [0.5, -1.25, 2.0];
    params.set("p", &theta0.map(|x| x as f32)).unwrap();
    let (g1, g2) = ([0.3, -2.0, 1e-3], [-0.7, 0.4, 5.0]);
    let lr = 0.05;
    let mut adam = Adam::new(AdamConfig { lr, weight_decay: wd, ..AdamConfig::default() }, &params).unwrap();
    for g in [g1, g2] {
        // loss = Σ g·p has gradient g
        let grads =
            (p.clone() * Tensor::new(&g, &Device::Cpu).unwrap()).unwrap().sum_all().unwrap().backward().unwrap();
        adam.step(&params.take_gradients(grads)).unwrap();
    }
    let got = p.to_vec1::<f64>().unwrap();
    for i in 0..3 {
        let (_, expected) = by_hand(f64::from(theta0[i] as f32), g1[i], g2[i], lr, wd);
        assert!((got[i] - expected).abs() < 1e-12, "entry {i}: {} vs {expected}", got[i]);
    }
    assert_eq!(adam.steps_taken(), 2);
}

#[test]
fn two_steps_match_the_hand_computed_update() {
    check(0.0);
}

#[test]
fn weight_decay_is_added_to_the_gradient() {
    check(0.1);
}

#[test]
fn bad_hyper_parameters_are_rejected_by_name() {
    let params = ParamStore::new(0, DType::F32, Device::Cpu);
    let err = Adam::new(AdamConfig { lr: -1.0, ..AdamConfig::default() }, &params).unwrap_err();
    assert!(err.to_string().starts_with("lr:"), "{err}");
    let err = Adam::new(AdamConfig { beta2: 1.0, ..AdamConfig::default() }, &params).unwrap_err();
    assert!(err.to_string().starts_with("beta2:"), "{err}");
}
