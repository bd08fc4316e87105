//! The inference pass (outside candle's graph) against the model's candle forward pass in
//! eval mode: the same contextual embeddings for the textbook architecture and BERT's variants,
//! rows of every valid length, one row, several and hundreds; skipping the padding rows, the
//! same valid rows.

use candle_core::{DType, Device, Tensor};
use tsbert_core::config::Activation;
use tsbert_core::model::{inference, BertModel, Mode};
use tsbert_core::params::ParamStore;
use tsbert_core::BertConfig;

/// Max |a − b| / max |b|.
fn rel_error(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn compare(config: &BertConfig, valid_lens: &[usize], l: usize) {
    let mut params = ParamStore::new(7, DType::F32, Device::Cpu);
    let model = BertModel::new(&mut params, config).unwrap();
    let b = valid_lens.len();
    let tokens: Vec<u32> = (0..b * l).map(|i| ((i * 31 + 7) % config.vocab_size) as u32).collect();
    let segments: Vec<u32> = (0..b * l).map(|i| u32::from(i % l >= l / 2)).collect();
    let packed = inference::PackedWeights::of(&model, inference::Precision::F32).unwrap();
    let ids = (tokens.as_slice(), segments.as_slice());
    let fast = inference::encode(&model, &packed, ids, valid_lens, inference::Padding::Computed).unwrap();
    let skipping = inference::encode(&model, &packed, ids, valid_lens, inference::Padding::Zeros).unwrap();
    let like = Tensor::zeros((), DType::F32, &Device::Cpu).unwrap();
    let mask = BertModel::key_mask(valid_lens, l, &like).unwrap();
    let t = Tensor::from_vec(tokens, (b, l), &Device::Cpu).unwrap();
    let s = Tensor::from_vec(segments, (b, l), &Device::Cpu).unwrap();
    let reference =
        model.encode(&t, &s, &mask, &mut Mode::Eval).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(fast.len(), reference.len());
    let error = rel_error(&fast, &reference);
    assert!(error < 2e-6, "{:?} B = {b}: relative error {error}", config.activation);
    // skipping the padding: the valid rows the same (within rounding: fewer rows may take
    // another product kernel), the padding rows zeros
    assert_eq!(skipping.len(), fast.len());
    let h = config.hidden;
    let (mut skipped, mut computed) = (Vec::new(), Vec::new());
    for (r, (row, reference)) in skipping.chunks_exact(h).zip(reference.chunks_exact(h)).enumerate() {
        if r % l < valid_lens[r / l] {
            skipped.extend_from_slice(row);
            computed.extend_from_slice(reference);
        } else {
            assert!(row.iter().all(|&v| v == 0.0), "B = {b}: padding row {r} is not zeros");
        }
    }
    let error = rel_error(&skipped, &computed);
    assert!(error < 2e-6, "{:?} B = {b}, padding skipped: relative error {error}", config.activation);
}

#[test]
fn the_inference_pass_gives_the_eval_forward_pass_of_the_textbook_model() {
    let config = BertConfig { max_positions: 16, ..BertConfig::textbook(50) };
    compare(&config, &[16, 1, 9, 5], 16);
    compare(&config, &[3], 16);
    // 130 × 16 = 2080 rows: chunks of many rows (the panels, not the dot kernel), the last one
    // shorter; skipping the padding, chunks of sequences of every length
    let lens: Vec<usize> = (0..130).map(|i| 1 + i % 16).collect();
    compare(&config, &lens, 16);
}

#[test]
fn the_inference_pass_gives_the_eval_forward_pass_of_berts_variants() {
    for activation in [Activation::Gelu, Activation::GeluTanh] {
        let config = BertConfig {
            hidden: 32,
            ffn_hidden: 48,
            heads: 4,
            layers: 3,
            activation,
            embedding_norm: true,
            layer_norm_eps: 1e-12,
            tie_word_embeddings: true,
            max_positions: 12,
            ..BertConfig::textbook(40)
        };
        compare(&config, &[12, 7, 1], 12);
    }
}

/// The inference pass keeps its own copy of the dense layers (transposed once); every way the
/// weights change — a training step, a parameter set, weights loaded — must reach it: after
/// each, the model encodes as a fresh model holding the same weights does.
#[test]
fn the_inference_pass_follows_every_change_of_the_weights() {
    use tsbert_core::weights::Naming;

    use crate::common::{random_batch, tiny_hf_config, trainer, values};
    let config = tiny_hf_config(0.0);
    let (model, mut trainer) = trainer(config.clone(), 5, 0.05, DType::F32);
    let batch = random_batch(&config, 3, 10, 2, 9);
    let encode = |m: &tsbert_core::ModelHandle| values(&m.encode(&batch.sequences).unwrap());
    let as_fresh = |m: &tsbert_core::ModelHandle| {
        let fresh = crate::common::model(config.clone(), 99, DType::F32);
        fresh.load_weights(&m.save_weights(&Naming::Tsbert).unwrap(), &Naming::Tsbert).unwrap();
        encode(&fresh)
    };
    let mut last = encode(&model);
    let mut check = |what: &str, m: &tsbert_core::ModelHandle| {
        let now = encode(m);
        assert!(now != last, "{what}: the encoding did not change");
        assert!(now == as_fresh(m), "{what}: not what a fresh model with these weights gives");
        last = now;
    };
    trainer.train_step(&model, &batch).unwrap();
    check("a training step", &model);
    let name = "encoder.blks.0.ffn.dense1.weight";
    let n = values(model.params().get(name).unwrap().as_tensor()).len();
    model.set_param(name, &vec![0.01; n]).unwrap();
    check("a parameter set", &model);
    let other = crate::common::model(config.clone(), 6, DType::F32);
    model.load_weights(&other.save_weights(&Naming::Tsbert).unwrap(), &Naming::Tsbert).unwrap();
    check("weights loaded", &model);
}

/// Cosine similarity of two vectors.
fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// q8 (int8 dense layers) against f32 on the Hugging Face fixture model (transformers' weights,
/// GELU, 2 layers): every token's state within cosine 0.99 (the bound the issue sets for
/// sentence embeddings; the states after the last layer norm are what pooling averages), not
/// identical (the products did change), the same with each kernel this CPU has; a quantised
/// model refuses to train, and an f64 model cannot be quantised.
#[test]
fn the_q8_pass_stays_within_cosine_0_99_of_f32_and_refuses_to_train() {
    use tsbert_core::ops::quantized::{CpuKernel, Kernel};

    use crate::common::{hf_model, random_batch, values};
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/model");
    let (model, config) = hf_model(&dir);
    let batch = random_batch(&config, 4, 12, 2, 3);
    let f32_states = values(&model.encode(&batch.sequences).unwrap());
    model.quantize().unwrap();
    assert!(model.is_quantized());
    let q8_states = values(&model.encode(&batch.sequences).unwrap());
    assert!(q8_states != f32_states, "q8 changed nothing");
    let h = config.hidden;
    let worst =
        f32_states.chunks_exact(h).zip(q8_states.chunks_exact(h)).map(|(a, b)| cosine(a, b)).fold(1f64, f64::min);
    assert!(worst >= 0.99, "least cosine of a token's state {worst}");
    assert!(Kernel::detect().is_supported());

    let mut trainer = tsbert_core::Trainer::new(&model, &tsbert_core::TrainerOptions::default()).unwrap();
    let err = trainer.train_step(&model, &batch).unwrap_err().to_string();
    assert!(err.contains("quantised (q8)") && err.contains("cannot train"), "{err}");

    let f64_model = crate::common::model(config.clone(), 1, DType::F64);
    let err = f64_model.quantize().unwrap_err().to_string();
    assert!(err.starts_with("dtype: q8 runs on the CPU from an f32 model"), "{err}");
}

/// A model of `config`'s weights (seeded) loaded to run in q8 from the start, beside the same
/// weights loaded in f32 and quantised after.
fn loaded_in_q8(config: &BertConfig) -> (tsbert_core::ModelHandle, tsbert_core::ModelHandle) {
    use tsbert_core::weights::{Naming, WeightsFile};
    use tsbert_core::{ModelHandle, ModelOptions};
    let bytes = crate::common::model(config.clone(), 3, DType::F32).save_weights(&Naming::Tsbert).unwrap();
    let file = WeightsFile::from_bytes(&bytes).unwrap();
    let options = ModelOptions::default();
    let q8 = ModelHandle::from_weights_q8(config.clone(), &options, &file, config, &Naming::Tsbert).unwrap();
    let f32_model = ModelHandle::from_weights(config.clone(), &options, &file, config, &Naming::Tsbert).unwrap();
    f32_model.quantize().unwrap();
    (q8, f32_model)
}

/// Loaded with dtype q8, a model holds its encoder's dense weights (and its token table, when
/// no tied MLM decoder reads it) in int8 only: with the table kept, it encodes exactly as the
/// same weights loaded in f32 and quantised (the same int8 weights); with the table in int8
/// too, every token's state stays within cosine 0.999 of that (the table's rows quantised as
/// the weights' channels are). It counts every parameter, quantising again changes nothing,
/// and reading those weights, setting any weight (the int8 products copied the biases),
/// saving, loading weights and training are errors saying why.
#[test]
fn a_model_loaded_in_q8_holds_its_dense_weights_in_int8_only() {
    use tsbert_core::weights::Naming;
    use tsbert_core::{Trainer, TrainerOptions};

    use crate::common::{random_batch, tiny_hf_config, values};
    let tied = BertConfig { tie_word_embeddings: true, mlm_head: true, ..tiny_hf_config(0.0) };
    let untied = BertConfig { tie_word_embeddings: false, ..tiny_hf_config(0.0) };
    for config in [tied, untied] {
        let (q8, quantized) = loaded_in_q8(&config);
        let batch = random_batch(&config, 3, 10, 2, 5);
        let states = values(&q8.encode(&batch.sequences).unwrap());
        let reference = values(&quantized.encode(&batch.sequences).unwrap());
        let table = q8.params().get("encoder.token_embedding.weight");
        if config.tie_word_embeddings {
            assert!(table.is_ok(), "the tied decoder's table was taken");
            assert_eq!(states, reference, "the same int8 weights gave other states");
            let positions = [(0, 1), (2, 3)];
            assert_eq!(
                values(&q8.masked_logits(&batch.sequences, &positions).unwrap()),
                values(&quantized.masked_logits(&batch.sequences, &positions).unwrap())
            );
        } else {
            let err = table.unwrap_err().to_string();
            assert!(err.contains("held only by the model's inference pass"), "{err}");
            assert!(states != reference, "the int8 table changed nothing");
            let h = config.hidden;
            let worst =
                states.chunks_exact(h).zip(reference.chunks_exact(h)).map(|(a, b)| cosine(a, b)).fold(1f64, f64::min);
            assert!(worst >= 0.999, "least cosine of a token's state {worst}");
        }
        assert!(q8.is_quantized());
        assert_eq!(q8.quantize().unwrap(), quantized.quantize().unwrap());
        assert_eq!(values(&q8.encode(&batch.sequences).unwrap()), states, "quantising again changed the states");
        assert_eq!(q8.params().count(), quantized.params().count());

        let name = "encoder.blks.1.ffn.dense2.weight";
        let err = q8.params().get(name).unwrap_err().to_string();
        assert!(err.starts_with(&format!("name: '{name}' is held only by the model's inference pass")), "{err}");
        let saved = quantized.save_weights(&Naming::Tsbert).unwrap();
        let refusals = [
            ("be saved", q8.save_weights(&Naming::Tsbert).map(|_| ())),
            ("load other weights", q8.load_weights(&saved, &Naming::Tsbert)),
            ("train", Trainer::new(&q8, &TrainerOptions::default()).map(|_| ())),
            ("have its weights set", q8.set_param(name, &[0.0; 4])),
            // a bias the int8 products hold a copy of
            ("have its weights set", q8.set_param("encoder.blks.0.ffn.dense1.bias", &[0.0; 12])),
        ];
        for (what, result) in refusals {
            let err = result.unwrap_err().to_string();
            assert!(err.starts_with("model: it was loaded with dtype 'q8'") && err.contains(what), "{err}");
        }
    }
}

/// Loaded to infer only, a model holds its encoder's dense weights packed in panels only
/// (where this CPU has a product by packed panels: AVX-512, AVX2): at the rows that take the
/// AVX-512 panels in an f32 model too (from 96), it encodes with the same bits as the same
/// weights loaded in f32; elsewhere (the dot kernel in f32), within rounding.
/// `TSBERT_F32_KERNEL=avx2` runs it with the AVX2 kernel, `packed` as a plain f32 load. Reading or setting those
/// weights, saving, loading weights, training and quantising are errors saying why.
#[test]
fn a_model_loaded_to_infer_only_encodes_as_in_f32_and_refuses_to_change() {
    use tsbert_core::model::inference::HeldForm;
    use tsbert_core::ops::cpu_kernel::CpuKernel;
    use tsbert_core::ops::dots::DotKernel;
    use tsbert_core::weights::{Naming, WeightsFile};
    use tsbert_core::{ModelHandle, ModelOptions, Trainer, TrainerOptions};

    use crate::common::{random_batch, tiny_hf_config, values};
    let config = BertConfig { hidden: 64, ffn_hidden: 96, heads: 4, ..tiny_hf_config(0.0) };
    let bytes = crate::common::model(config.clone(), 3, DType::F32).save_weights(&Naming::Tsbert).unwrap();
    let file = WeightsFile::from_bytes(&bytes).unwrap();
    let options = ModelOptions::default();
    let to_infer =
        ModelHandle::from_weights_to_infer(config.clone(), &options, &file, &config, &Naming::Tsbert).unwrap();
    let f32_model = ModelHandle::from_weights(config.clone(), &options, &file, &config, &Naming::Tsbert).unwrap();
    assert_eq!(to_infer.params().count(), f32_model.params().count());
    let many = random_batch(&config, 12, 10, 2, 5);
    let states = values(&to_infer.encode(&many.sequences).unwrap());
    let max_diff = |a: &[f64], b: &[f64]| a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs()));
    let reference = values(&f32_model.encode(&many.sequences).unwrap());
    if DotKernel::detect() == DotKernel::Avx512 {
        // the f32 model copies AVX-512 panels at 120 rows: the same sums
        assert!(states == reference, "120 rows: other bits (max |Δ| {})", max_diff(&states, &reference));
    } else {
        assert!(max_diff(&states, &reference) < 1e-5, "120 rows: max |Δ| {}", max_diff(&states, &reference));
    }
    let few = random_batch(&config, 3, 10, 2, 6);
    let (a, b) =
        (values(&to_infer.encode(&few.sequences).unwrap()), values(&f32_model.encode(&few.sequences).unwrap()));
    assert!(max_diff(&a, &b) < 1e-5, "30 rows: max |Δ| {}", max_diff(&a, &b));
    assert!(!to_infer.is_quantized());
    let Some(HeldForm::Panels { .. }) = HeldForm::panels() else {
        assert!(to_infer.params().holds_all_values(), "no panels on this CPU: a plain f32 load");
        return;
    };
    let name = "encoder.blks.1.ffn.dense2.weight";
    let err = to_infer.params().get(name).unwrap_err().to_string();
    assert!(err.starts_with(&format!("name: '{name}' is held only by the model's inference pass")), "{err}");
    let saved = f32_model.save_weights(&Naming::Tsbert).unwrap();
    let refusals = [
        ("be saved", to_infer.save_weights(&Naming::Tsbert).map(|_| ())),
        ("load other weights", to_infer.load_weights(&saved, &Naming::Tsbert)),
        ("train", Trainer::new(&to_infer, &TrainerOptions::default()).map(|_| ())),
        ("have its weights set", to_infer.set_param("encoder.blks.0.ffn.dense1.bias", &[0.0; 96])),
        ("be quantised", to_infer.quantize().map(|_| ())),
    ];
    for (what, result) in refusals {
        let err = result.unwrap_err().to_string();
        assert!(err.starts_with("model: it was loaded to infer only") && err.contains(what), "{err}");
    }
    assert_eq!(values(&to_infer.encode(&many.sequences).unwrap()), states, "the refusals changed the states");
}

/// What a model holds, as `held_bytes` counts it (what the addon tells V8): an f32 model its
/// f32 parameters; quantised, the int8 copy of its dense layers beside them once a pass made
/// it; loaded in q8, that same int8 copy instead of the dense layers' f32 weights (and an int8
/// token table, a byte a value and a scale a row, instead of the f32 one, when no tied decoder
/// reads it).
#[test]
fn held_bytes_count_the_int8_copies_instead_of_the_f32_weights_they_replace() {
    use crate::common::{random_batch, tiny_hf_config};
    use tsbert_core::memory;
    let tied = BertConfig { tie_word_embeddings: true, mlm_head: true, ..tiny_hf_config(0.0) };
    let untied = BertConfig { tie_word_embeddings: false, ..tiny_hf_config(0.0) };
    for config in [tied, untied] {
        let (q8, quantized) = loaded_in_q8(&config);
        let f32_bytes = memory::weights_bytes(&config).unwrap() as usize;
        assert_eq!(quantized.held_bytes(), f32_bytes, "before its first pass, a quantised model holds its f32 weights");
        let estimate = memory::int8_copy_bytes(&config);
        assert_eq!(quantized.footprint_bytes(), f32_bytes as u128 + estimate, "its footprint counts the copy to come");
        quantized.encode(&random_batch(&config, 2, 8, 2, 1).sequences).unwrap();
        let int8_copy = quantized.held_bytes() - f32_bytes;
        assert!(int8_copy as u128 >= estimate, "the int8 copy: {int8_copy} bytes, the estimate {estimate}");
        assert_eq!(quantized.footprint_bytes(), quantized.held_bytes() as u128, "the copy made is held");
        assert_eq!(q8.footprint_bytes(), q8.held_bytes() as u128, "a q8 load made its int8 copy as it read");

        let (h, f) = (config.hidden, config.ffn_hidden);
        let dense_f32 = 4 * config.layers * (4 * h * h + 2 * h * f);
        let table_f32 = 4 * config.vocab_size * h;
        let table_int8 = if config.tie_word_embeddings { table_f32 } else { config.vocab_size * (h + 4) };
        assert_eq!(q8.held_bytes(), f32_bytes - dense_f32 - table_f32 + int8_copy + table_int8);
    }
}

/// Only f32 models on the CPU run in q8: an f64 one loaded in q8 is refused by name before
/// its file is read.
#[test]
fn a_q8_load_of_an_f64_model_is_refused() {
    use tsbert_core::weights::{Naming, WeightsFile};
    use tsbert_core::{ModelHandle, ModelOptions};
    let config = crate::common::tiny_hf_config(0.0);
    let bytes = crate::common::model(config.clone(), 3, DType::F32).save_weights(&Naming::Tsbert).unwrap();
    let file = WeightsFile::from_bytes(&bytes).unwrap();
    let options = ModelOptions { dtype: DType::F64, ..ModelOptions::default() };
    let err = ModelHandle::from_weights_q8(config.clone(), &options, &file, &config, &Naming::Tsbert).unwrap_err();
    assert!(err.to_string().starts_with("dtype: q8 runs on the CPU from an f32 model"), "{err}");
}

/// A q8 load reads the weights it quantises a block of rows at a time and checks each block:
/// a file stored in f16 gives the same model as the same values stored in f32; a NaN or an
/// infinity in a dense weight or in the token table is an error naming that tensor.
#[test]
fn a_q8_load_converts_f16_files_and_names_a_weight_that_is_not_finite() {
    use candle_core::Tensor;
    use tsbert_core::weights::{Naming, WeightsFile};
    use tsbert_core::{ModelHandle, ModelOptions};

    use crate::common::{random_batch, tiny_hf_config, values};
    let config = BertConfig { tie_word_embeddings: false, max_positions: 12, ..tiny_hf_config(0.0) };
    let bytes = crate::common::model(config.clone(), 3, DType::F32).save_weights(&Naming::Tsbert).unwrap();
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).unwrap();
    let options = ModelOptions::default();
    let load = |tensors: &std::collections::HashMap<String, Tensor>, q8: bool| {
        let bytes = safetensors::serialize(tensors, None).unwrap();
        let file = WeightsFile::from_bytes(&bytes).unwrap();
        if q8 {
            ModelHandle::from_weights_q8(config.clone(), &options, &file, &config, &Naming::Tsbert)
        } else {
            ModelHandle::from_weights(config.clone(), &options, &file, &config, &Naming::Tsbert)
        }
    };

    let f16: std::collections::HashMap<String, Tensor> =
        tensors.iter().map(|(name, t)| (name.clone(), t.to_dtype(DType::F16).unwrap())).collect();
    let batch = random_batch(&config, 2, 12, 2, 9);
    let widened = f16.iter().map(|(name, t)| (name.clone(), t.to_dtype(DType::F32).unwrap())).collect();
    let (from_f16, from_f32) = (load(&f16, true).unwrap(), load(&widened, true).unwrap());
    let states = values(&from_f16.encode(&batch.sequences).unwrap());
    assert_eq!(states, values(&from_f32.encode(&batch.sequences).unwrap()));
    let f32_model = load(&tensors, false).unwrap();
    assert!(states != values(&f32_model.encode(&batch.sequences).unwrap()), "the q8 load changed nothing");

    for (name, bad) in
        [("encoder.blks.1.ffn.dense1.weight", f32::NAN), ("encoder.token_embedding.weight", f32::INFINITY)]
    {
        let mut broken = tensors.clone();
        let t = &broken[name];
        let mut v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let last = v.len() - 1;
        v[last] = bad; // in the last block read
        broken.insert(name.to_string(), Tensor::from_vec(v, t.dims(), &Device::Cpu).unwrap());
        let err = load(&broken, true).unwrap_err().to_string();
        assert!(err.contains(&format!("'{name}' holds NaN or infinite values")), "{err}");
    }
}
