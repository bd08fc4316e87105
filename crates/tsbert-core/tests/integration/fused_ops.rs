//! The fused CPU ops (cross-entropy, row normalisation, softmax, GELU, row affine) agree with their composed
//! candle versions, forward and backward, in f64 and f32.

use candle_core::{DType, Device, Tensor, Var};
use tsbert_core::config::Activation;
use tsbert_core::model::layers::LAYER_NORM_EPS;
use tsbert_core::ops::attention::{composed_attention, fused_attention, KeyMask};
use tsbert_core::ops::cross_entropy::{composed_cross_entropy_per_row, fused_cross_entropy_per_row};
use tsbert_core::ops::decoder_loss::{composed_decoder_loss, fused_decoder_loss, Targets};
use tsbert_core::ops::layer_norm::{
    composed_add, composed_normalize_last_dim, fused_add_normalize, fused_normalize_last_dim,
};
use tsbert_core::ops::linear::{composed_activate, composed_linear, fused_linear, fused_linear_activated};
use tsbert_core::ops::row_affine::{composed_row_affine, fused_row_affine};
use tsbert_core::ops::softmax::{composed_softmax_last_dim, fused_softmax_last_dim};

type Op = dyn Fn(&Tensor) -> Tensor;

/// Runs `fused` and `composed` on the same `[n, c]` input; the loss is a weighted sum of the
/// outputs (weights vary per element so every gradient path counts). Returns (output,
/// gradient) of each, as f64.
fn both(dtype: DType, n: usize, c: usize, fused: &Op, composed: &Op) -> [(Vec<f64>, Vec<f64>); 2] {
    let values: Vec<f64> = (0..n * c).map(|i| ((i * 37 % 23) as f64 - 11.0) * 0.7).collect();
    [fused, composed].map(|op| {
        let x =
            Var::from_tensor(&Tensor::from_vec(values.clone(), (n, c), &Device::Cpu).unwrap().to_dtype(dtype).unwrap())
                .unwrap();
        let y = op(x.as_tensor());
        let w = Tensor::from_vec(
            (0..y.elem_count()).map(|i| ((i * 13 % 7) as f64 - 3.0) * 0.5).collect::<Vec<_>>(),
            y.shape(),
            &Device::Cpu,
        )
        .unwrap()
        .to_dtype(dtype)
        .unwrap();
        let grads = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let flat = |t: &Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        (flat(&y), flat(grads.get(x.as_tensor()).unwrap()))
    })
}

fn assert_close(a: &[f64], b: &[f64], tolerance: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tolerance * y.abs().max(1.0), "{what}: {x} vs {y}");
    }
}

fn check(dtype: DType, tolerance: f64, fused: &Op, composed: &Op) {
    let [(yf, gf), (yc, gc)] = both(dtype, 7, 11, fused, composed);
    assert_close(&yf, &yc, tolerance, "forward");
    assert_close(&gf, &gc, tolerance, "gradient");
}

const LABELS: [u32; 7] = [0, 3, 10, 5, 5, 1, 9];

fn cross_entropy(fused: bool) -> Box<Op> {
    Box::new(move |x| {
        let labels = Tensor::new(&LABELS, &Device::Cpu).unwrap();
        if fused { fused_cross_entropy_per_row(x, &labels) } else { composed_cross_entropy_per_row(x, &labels) }
            .unwrap()
    })
}

#[test]
fn cross_entropy_matches_composed() {
    check(DType::F64, 1e-12, &cross_entropy(true), &cross_entropy(false));
    check(DType::F32, 1e-5, &cross_entropy(true), &cross_entropy(false));
}

#[test]
fn normalize_matches_composed() {
    let fused = |x: &Tensor| fused_normalize_last_dim(x, LAYER_NORM_EPS).unwrap();
    let composed = |x: &Tensor| composed_normalize_last_dim(x, LAYER_NORM_EPS).unwrap();
    check(DType::F64, 1e-12, &fused, &composed);
    check(DType::F32, 1e-5, &fused, &composed);
}

#[test]
fn activated_linear_matches_composed_for_each_activation() {
    // x [7, 11] through W [11, 11] (values around 0, both signs), b [11]
    for activation in [Activation::Relu, Activation::Gelu, Activation::GeluTanh] {
        for (dtype, tolerance) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
            let w: Vec<f64> = (0..121).map(|i| ((i * 5 % 13) as f64 - 6.0) * 0.05).collect();
            let w = Tensor::from_vec(w, (11, 11), &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
            let b =
                Tensor::arange(0.0, 11.0, &Device::Cpu).unwrap().affine(0.1, -0.5).unwrap().to_dtype(dtype).unwrap();
            let (wf, bf) = (w.clone(), b.clone());
            let fused = move |x: &Tensor| fused_linear_activated(x, &wf, &bf, activation).unwrap();
            let composed =
                move |x: &Tensor| composed_activate(&composed_linear(x, &w, &b).unwrap(), activation).unwrap();
            check(dtype, tolerance, &fused, &composed);
        }
    }
}

#[test]
fn softmax_matches_composed() {
    let fused = |x: &Tensor| fused_softmax_last_dim(x).unwrap();
    let composed = |x: &Tensor| composed_softmax_last_dim(x).unwrap();
    check(DType::F64, 1e-12, &fused, &composed);
    check(DType::F32, 1e-5, &fused, &composed);
}

#[test]
fn softmax_gives_masked_keys_zero_weight_and_zero_gradient() {
    // the attention mask: scores of keys past the valid length are -1e9
    let x = Var::from_tensor(&Tensor::new(&[[0.5f32, -1.0, -1e9, -1e9], [2.0, 1.0, 0.0, -1e9]], &Device::Cpu).unwrap())
        .unwrap();
    let y = fused_softmax_last_dim(x.as_tensor()).unwrap();
    let w = Tensor::new(&[[1.0f32, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]], &Device::Cpu).unwrap();
    let g =
        (&y * &w).unwrap().sum_all().unwrap().backward().unwrap().get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
    let y = y.to_vec2::<f32>().unwrap();
    assert_eq!((y[0][2], y[0][3], y[1][3]), (0.0, 0.0, 0.0));
    assert_eq!((g[0][2], g[0][3], g[1][3]), (0.0, 0.0, 0.0));
    assert!((y[0].iter().sum::<f32>() - 1.0).abs() < 1e-6);
}

#[test]
fn cross_entropy_zero_weight_row_has_zero_gradient() {
    let x = Var::from_tensor(
        &Tensor::from_vec((0..14).map(|i| i as f32 * 0.3).collect::<Vec<_>>(), (2, 7), &Device::Cpu).unwrap(),
    )
    .unwrap();
    let labels = Tensor::new(&[1u32, 4], &Device::Cpu).unwrap();
    let weights = Tensor::new(&[1.0f32, 0.0], &Device::Cpu).unwrap();
    let loss = fused_cross_entropy_per_row(x.as_tensor(), &labels).unwrap();
    let g = (&loss * &weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap()
        .get(x.as_tensor())
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert!(g[1].iter().all(|&v| v == 0.0));
    assert!(g[0].iter().any(|&v| v != 0.0));
}

/// Outputs and the gradients of x, w, b of `fused` and of `composed` (x: [3, 5, 4], w, b: [4]).
fn affine_both(
    dtype: DType,
    fused: &dyn Fn(&Tensor, &Tensor, &Tensor) -> Tensor,
    composed: &dyn Fn(&Tensor, &Tensor, &Tensor) -> Tensor,
) -> [Vec<Vec<f64>>; 2] {
    let var = |values: Vec<f64>, shape: &[usize]| {
        Var::from_tensor(&Tensor::from_vec(values, shape, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()).unwrap()
    };
    [fused, composed].map(|op| {
        let x = var((0..60).map(|i| ((i * 37 % 23) as f64 - 11.0) * 0.3).collect(), &[3, 5, 4]);
        let w = var(vec![0.5, -1.5, 2.0, 1.0], &[4]);
        let b = var(vec![0.1, 0.2, -0.3, 0.0], &[4]);
        let y = op(x.as_tensor(), w.as_tensor(), b.as_tensor());
        let loss_w = Tensor::from_vec(
            (0..60).map(|i| ((i * 13 % 7) as f64 - 3.0) * 0.5).collect::<Vec<_>>(),
            (3, 5, 4),
            &Device::Cpu,
        )
        .unwrap()
        .to_dtype(dtype)
        .unwrap();
        let grads = (&y * &loss_w).unwrap().sum_all().unwrap().backward().unwrap();
        let flat = |t: &Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let grad = |v: &Var| grads.get(v.as_tensor()).map(flat).unwrap_or_default(); // none for an unused input
        vec![flat(&y), grad(&x), grad(&w), grad(&b)]
    })
}

#[test]
fn row_affine_matches_broadcast_ops() {
    for (dtype, tolerance) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
        let [fused, composed] = affine_both(dtype, &|x, w, b| fused_row_affine(x, w, b).unwrap(), &|x, w, b| {
            composed_row_affine(x, w, b).unwrap()
        });
        for (what, (f, c)) in
            ["output", "x gradient", "w gradient", "b gradient"].iter().zip(fused.iter().zip(&composed))
        {
            assert_close(f, c, tolerance, what);
        }
    }
}

/// The decoder loss of `[n, h]` x, `[v, h]` W, `[v]` b, scaled by 3 before backward (a
/// gradient other than 1 reaches the op), by the fused op or the composed one: the loss and
/// the gradients of x, W and b, as f64.
fn decoder_both(dtype: DType, n: usize, h: usize, v: usize) -> [(f64, [Vec<f64>; 3]); 2] {
    let var = |len: usize, shape: &[usize], k: usize| {
        let values: Vec<f64> = (0..len).map(|i| (((i * k) % 29) as f64 - 14.0) * 0.05).collect();
        Var::from_tensor(&Tensor::from_vec(values, shape, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()).unwrap()
    };
    let labels: Vec<u32> = (0..n).map(|r| ((r * 7) % v) as u32).collect();
    let weights: Vec<f64> = (0..n).map(|r| if r % 5 == 3 { 0.0 } else { 1.0 }).collect();
    let total = weights.iter().sum::<f64>() + 1e-8;
    [true, false].map(|fused| {
        let (x, w, b) = (var(n * h, &[n, h], 31), var(v * h, &[v, h], 17), var(v, &[v], 13));
        let labels = Tensor::new(labels.as_slice(), &Device::Cpu).unwrap();
        let weights = Tensor::new(weights.as_slice(), &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
        let targets = Targets { labels: &labels, weights: &weights, total };
        let loss = if fused { fused_decoder_loss } else { composed_decoder_loss }(
            x.as_tensor(),
            w.as_tensor(),
            b.as_tensor(),
            targets,
        )
        .unwrap();
        let grads = (&loss * 3.0).unwrap().backward().unwrap();
        let flat = |t: &Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let value = loss.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
        (value, [&x, &w, &b].map(|p| flat(grads.get(p.as_tensor()).unwrap())))
    })
}

#[test]
fn decoder_loss_matches_composed_over_several_chunks() {
    // 600 rows: three chunks of the fused op, the last one short
    for (dtype, tolerance) in [(DType::F64, 1e-10), (DType::F32, 1e-6)] {
        let [(lf, gf), (lc, gc)] = decoder_both(dtype, 600, 24, 97);
        assert_close(&[lf], &[lc], tolerance, "loss");
        for (what, (f, c)) in ["x", "W", "b"].iter().zip(gf.iter().zip(&gc)) {
            assert_close(f, c, tolerance, what);
        }
        // rows of weight 0 get no gradient
        assert!(gf[0][3 * 24..4 * 24].iter().all(|&g| g == 0.0));
    }
}

/// Attention over `[3, 5, 8]` q, k, v with 2 heads, rows of 5, 2 and 1 valid keys, with or
/// without dropout factors, by the fused op or the composed one: the context and the
/// gradients of q, k and v under a weighted sum, as f64.
fn attention_both(dtype: DType, dropout: bool) -> [[Vec<f64>; 4]; 2] {
    let (b, l, h, heads) = (3, 5, 8, 2);
    let var = |k: usize| {
        let values: Vec<f64> = (0..b * l * h).map(|i| (((i * k) % 23) as f64 - 11.0) * 0.09).collect();
        Var::from_tensor(&Tensor::from_vec(values, (b, l, h), &Device::Cpu).unwrap().to_dtype(dtype).unwrap()).unwrap()
    };
    let factors: Vec<f64> = (0..b * heads * l * l).map(|i| if i % 4 == 1 { 0.0 } else { 1.25 }).collect();
    let factors = Tensor::from_vec(factors, (b, heads, l, l), &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
    let like = Tensor::zeros((), dtype, &Device::Cpu).unwrap();
    let keys = KeyMask::new(&[5, 2, 1], l, &like).unwrap();
    let w: Vec<f64> = (0..b * l * h).map(|i| ((i * 13 % 7) as f64 - 3.0) * 0.5).collect();
    let w = Tensor::from_vec(w, (b, l, h), &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
    [true, false].map(|fused| {
        let (q, k, v) = (var(31), var(17), var(7));
        let op = if fused { fused_attention } else { composed_attention };
        let dropout = dropout.then_some(&factors);
        let y = op(q.as_tensor(), k.as_tensor(), v.as_tensor(), &keys, heads, dropout).unwrap();
        let grads = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let flat = |t: &Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        [flat(&y), flat(grads.get(&q).unwrap()), flat(grads.get(&k).unwrap()), flat(grads.get(&v).unwrap())]
    })
}

#[test]
fn attention_matches_composed_with_padding_and_dropout() {
    for (dtype, tolerance) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
        for dropout in [false, true] {
            let [fused, composed] = attention_both(dtype, dropout);
            for (what, (a, b)) in ["context", "dq", "dk", "dv"].iter().zip(fused.iter().zip(&composed)) {
                assert_close(a, b, tolerance, &format!("{what} ({dtype:?}, dropout {dropout})"));
            }
        }
    }
}

#[test]
fn attention_gives_keys_beyond_the_valid_length_no_gradient() {
    let [fused, _] = attention_both(DType::F64, true);
    // row 1 has two valid keys: its keys 2..5 get no gradient (k and v), in both heads
    let (l, h) = (5, 8);
    for grad in [&fused[2], &fused[3]] {
        let row = &grad[l * h..2 * l * h];
        assert!(row[2 * h..].iter().all(|&g| g == 0.0), "masked keys have gradients");
        assert!(row[..2 * h].iter().any(|&g| g != 0.0), "the valid keys have none");
    }
}

#[test]
fn linear_matches_composed_over_leading_dimensions() {
    // x [2, 3, 5] through W [4, 5], b [4]: rows from two leading dimensions
    for (dtype, tolerance) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
        let var = |shape: &[usize], k: usize| {
            let n = shape.iter().product::<usize>();
            let values: Vec<f64> = (0..n).map(|i| (((i * k) % 19) as f64 - 9.0) * 0.1).collect();
            Var::from_tensor(&Tensor::from_vec(values, shape, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()).unwrap()
        };
        let [fused, composed] = [true, false].map(|fused| {
            let (x, w, b) = (var(&[2, 3, 5], 7), var(&[4, 5], 11), var(&[4], 5));
            let op = if fused { fused_linear } else { composed_linear };
            let y = op(x.as_tensor(), w.as_tensor(), b.as_tensor()).unwrap();
            assert_eq!(y.dims(), [2, 3, 4]);
            let weights = var(&[2, 3, 4], 13);
            let grads = (&y * weights.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
            let flat = |t: &Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            [flat(&y), flat(grads.get(&x).unwrap()), flat(grads.get(&w).unwrap()), flat(grads.get(&b).unwrap())]
        });
        for (what, (a, b)) in ["output", "dx", "dW", "db"].iter().zip(fused.iter().zip(&composed)) {
            assert_close(a, b, tolerance, &format!("{what} ({dtype:?})"));
        }
    }
}

#[test]
fn add_and_norm_matches_composed_with_and_without_dropout() {
    for (dtype, tolerance) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
        let tensor = |k: usize| {
            let values: Vec<f64> = (0..6 * 9).map(|i| (((i * k) % 17) as f64 - 8.0) * 0.2).collect();
            Tensor::from_vec(values, (6, 9), &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
        };
        let factors = tensor(1).ge(0.0).unwrap().to_dtype(dtype).unwrap().affine(1.25, 0.0).unwrap();
        let (w, b) = (
            tensor(3).narrow(0, 0, 1).unwrap().squeeze(0).unwrap(),
            tensor(5).narrow(0, 1, 1).unwrap().squeeze(0).unwrap(),
        );
        for dropout in [None, Some(&factors)] {
            let [fused, composed] = [true, false].map(|fused| {
                let (y, r) = (Var::from_tensor(&tensor(7)).unwrap(), Var::from_tensor(&tensor(11)).unwrap());
                let out = if fused {
                    fused_row_affine(&fused_add_normalize(&y, &r, dropout, 1e-5).unwrap(), &w, &b).unwrap()
                } else {
                    composed_normalize_last_dim(&composed_add(&y, &r, dropout).unwrap(), 1e-5)
                        .unwrap()
                        .broadcast_mul(&w)
                        .unwrap()
                        .broadcast_add(&b)
                        .unwrap()
                };
                let grads = (&out * tensor(13)).unwrap().sum_all().unwrap().backward().unwrap();
                let flat =
                    |t: &Tensor| t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
                [flat(&out), flat(grads.get(&y).unwrap()), flat(grads.get(&r).unwrap())]
            });
            for (what, (a, c)) in ["output", "dy", "dresidual"].iter().zip(fused.iter().zip(&composed)) {
                assert_close(a, c, tolerance, &format!("{what} ({dtype:?}, dropout {})", dropout.is_some()));
            }
        }
    }
}
