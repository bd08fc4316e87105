//! Adam against updates computed by hand.

use candle_core::{CpuStorage, DType, Device, Tensor, Var};
use tsbert_core::adam::{Adam, AdamConfig};
use tsbert_core::ops::adam_update::{composed_adam_update, fused_adam_update, AdamCoefficients};
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

/// θ after three updates of `n` values by the fused kernel and by the composed ops, as f64.
fn fused_and_composed(dtype: DType, n: usize, c: AdamCoefficients) -> [Vec<f64>; 2] {
    let values = |k: usize| -> Tensor {
        let v: Vec<f64> = (0..n).map(|i| (((i * k) % 31) as f64 - 15.0) * 0.03).collect();
        Tensor::from_vec(v, n, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
    };
    let host = |t: &Tensor| match dtype {
        DType::F64 => CpuStorage::F64(t.to_vec1().unwrap()),
        _ => CpuStorage::F32(t.to_vec1().unwrap()),
    };
    [true, false].map(|fused| {
        let theta = Var::from_tensor(&values(7)).unwrap();
        let (mut m, mut v) = (values(3), (values(5).sqr().unwrap() * 0.1).unwrap());
        let (mut hm, mut hv) = (host(&m), host(&v));
        for step in 0..3 {
            let grad = values(11 + step);
            if fused {
                fused_adam_update(&theta, &grad, &mut hm, &mut hv, &c).unwrap();
            } else {
                composed_adam_update(&theta, &grad, &mut m, &mut v, &c).unwrap();
            }
        }
        theta.as_tensor().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
    })
}

#[test]
fn fused_update_matches_composed_over_several_tasks() {
    // 40,000 values: three tasks of the fused kernel, the last one short; L2 decay and shrinking
    let c =
        AdamCoefficients { beta1: 0.9, beta2: 0.999, step_size: 0.05, v_scale: 3.0, eps: 1e-8, l2: 0.1, shrink: 0.99 };
    for (dtype, tolerance) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
        let [fused, composed] = fused_and_composed(dtype, 40_000, c);
        for (i, (a, b)) in fused.iter().zip(&composed).enumerate() {
            assert!((a - b).abs() <= tolerance * (1.0 + b.abs()), "{dtype:?} value {i}: {a} vs {b}");
        }
    }
}

#[test]
fn fused_update_rejects_moments_of_another_size() {
    let theta = Var::from_tensor(&Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap()).unwrap();
    let grad = Tensor::ones(4, DType::F32, &Device::Cpu).unwrap();
    let (mut m, mut v) = (CpuStorage::F32(vec![0.0; 3]), CpuStorage::F32(vec![0.0; 4]));
    let c =
        AdamCoefficients { beta1: 0.9, beta2: 0.999, step_size: 0.1, v_scale: 1.0, eps: 1e-8, l2: 0.0, shrink: 1.0 };
    let err = fused_adam_update(&theta, &grad, &mut m, &mut v, &c).unwrap_err();
    assert!(err.to_string().contains("moments of 3"), "{err}");
}

#[test]
fn saved_moments_are_a_snapshot() {
    // the state a checkpoint takes must not change with later (in-place) updates
    let mut params = ParamStore::new(0, DType::F32, Device::Cpu);
    let p = params.create("p", &[3], Init::Constant(0.5)).unwrap();
    let mut adam = Adam::new(AdamConfig::default(), &params).unwrap();
    let step = |adam: &mut Adam| {
        let grads = (p.clone() * 2.0).unwrap().sum_all().unwrap().backward().unwrap();
        adam.step(&params.take_gradients(grads)).unwrap();
    };
    step(&mut adam);
    let (_, saved) = adam.state().unwrap();
    let before = saved["m.p"].to_vec1::<f32>().unwrap();
    step(&mut adam);
    assert_eq!(saved["m.p"].to_vec1::<f32>().unwrap(), before);
    let (_, now) = adam.state().unwrap();
    assert_ne!(now["m.p"].to_vec1::<f32>().unwrap(), before);
}
