//! The fused CPU cross-entropy agrees with the composed candle version, forward and backward.

use candle_core::{DType, Device, Tensor, Var};
use tsbert_core::ops::cross_entropy::{composed_cross_entropy_per_row, cross_entropy_per_row};

fn check(dtype: DType, tolerance: f64) {
    let (n, c) = (7, 11);
    let values: Vec<f64> = (0..n * c).map(|i| ((i * 37 % 23) as f64 - 11.0) * 0.7).collect();
    let labels = Tensor::new(&[0u32, 3, 10, 5, 5, 1, 9], &Device::Cpu).unwrap();
    let weights = Tensor::new(&[1.0, 0.5, 0.0, 2.0, 1.0, 1.0, 3.0], &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
    let run = |fused: bool| {
        let x = Var::from_tensor(&Tensor::from_vec(values.clone(), (n, c), &Device::Cpu).unwrap().to_dtype(dtype).unwrap()).unwrap();
        let loss = if fused { cross_entropy_per_row(&x, &labels) } else { composed_cross_entropy_per_row(&x, &labels) }.unwrap();
        let grads = (&loss * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let grad = grads.get(x.as_tensor()).unwrap().to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        (loss.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap(), grad)
    };
    let ((lf, gf), (lc, gc)) = (run(true), run(false));
    for (a, b) in lf.iter().zip(&lc).chain(gf.iter().zip(&gc)) {
        assert!((a - b).abs() <= tolerance * b.abs().max(1.0), "{a} vs {b}");
    }
    // the zero-weight row has an all-zero gradient
    assert!(gf[2 * c..3 * c].iter().all(|&g| g == 0.0));
}

#[test]
fn fused_matches_composed_in_f64() {
    check(DType::F64, 1e-12);
}

#[test]
fn fused_matches_composed_in_f32() {
    check(DType::F32, 1e-5);
}
