//! Parity with Hugging Face itself: a random `BertForPreTraining` and a WordPiece tokenizer
//! saved by transformers and tokenizers (tests/fixtures/hf, made by
//! bench/reference/make_hf_fixtures.py), with the outputs transformers computed. Relative
//! error = max |ours − theirs| / max |theirs|.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use serde_json::Value;
use tsbert_core::batch::Sequences;
use tsbert_core::config::Activation;
use tsbert_core::hf::{config_from_hf, config_to_hf, HfNames};
use tsbert_core::tokenizer::{Text, Tokenizer, MAX_TEXT_BYTES, PIECE_BYTES};
use tsbert_core::weights::{Naming, WeightsFile};
use tsbert_core::{Batch, BertConfig, ModelHandle, Trainer, TrainerOptions};

use crate::common::{hf_model, values};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(fixtures().join(path)).unwrap()
}

fn expected() -> (Value, HashMap<String, Tensor>) {
    let json: Value = serde_json::from_str(&read("expected.json")).unwrap();
    let tensors = candle_core::safetensors::load(fixtures().join("expected.safetensors"), &Device::Cpu).unwrap();
    (json, tensors)
}

fn rel_error(ours: &[f64], theirs: &[f64]) -> f64 {
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
    ours.iter().zip(theirs).fold(0.0_f64, |m, (a, b)| m.max((a - b).abs())) / scale.max(1e-30)
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

/// A model of the fixture folder `dir`, as Hugging Face named it.
fn load(dir: &str) -> (ModelHandle, BertConfig) {
    hf_model(&fixtures().join(dir))
}

/// The fixture batch as tsbert's: MLM predictions where the labels are not -100.
fn batch(json: &Value) -> Batch {
    let b = &json["batch"];
    let rows: Vec<Vec<i64>> = b["inputIds"].as_array().unwrap().iter().map(ints).collect();
    let (n, l) = (rows.len(), rows[0].len());
    let flat = |key: &str| b[key].as_array().unwrap().iter().flat_map(ints).map(|x| x as i32).collect::<Vec<i32>>();
    let mask = flat("attentionMask");
    let labels = flat("labels");
    let (mut pred_positions, mut mlm_labels) = (Vec::new(), Vec::new());
    for row in 0..n {
        for j in 0..l {
            if labels[row * l + j] != -100 {
                pred_positions.push(j as i32);
                mlm_labels.push(labels[row * l + j]);
            }
        }
    }
    let p = pred_positions.len() / n;
    Batch {
        sequences: Sequences {
            batch_size: n,
            seq_len: l,
            tokens: flat("inputIds"),
            segments: flat("tokenTypeIds"),
            valid_lens: mask.chunks(l).map(|r| r.iter().sum()).collect(),
        },
        num_preds: p,
        pred_positions,
        mlm_weights: vec![1.0; n * p],
        mlm_labels,
        nsp_labels: ints(&b["nextSentenceLabels"]).iter().map(|&x| x as i32).collect(),
    }
}

#[test]
fn the_tokenizer_gives_hugging_faces_ids_tokens_and_offsets() {
    let (json, _) = expected();
    let max = json["maxLength"].as_u64().unwrap() as usize;
    let from_json = Tokenizer::from_json(&read("model/tokenizer.json")).unwrap();
    let from_vocab = Tokenizer::bert_wordpiece(&read("model/vocab.txt"), true).unwrap();
    for case in json["tokenized"].as_array().unwrap() {
        let text: Vec<String> =
            case["text"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
        let input = (Text::Raw(text[0].clone()), text.get(1).cloned().map(Text::Raw));
        for tokenizer in [&from_json, &from_vocab] {
            let e = &tokenizer.encode_batch(vec![input.clone()], Some(max)).unwrap()[0];
            let ids: Vec<i64> = e.ids.iter().map(|&i| i64::from(i)).collect();
            assert_eq!(ids, ints(&case["ids"]), "{text:?}");
            assert_eq!(e.type_ids.iter().map(|&i| i64::from(i)).collect::<Vec<_>>(), ints(&case["typeIds"]));
            let tokens: Vec<&str> = case["tokens"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
            assert_eq!(e.tokens, tokens);
        }
        // Python gives offsets in code points; ours are in UTF-16 units (JavaScript's)
        let e = &from_json.encode_batch(vec![input.clone()], Some(max)).unwrap()[0];
        for (k, (ours, theirs)) in e.offsets.iter().zip(case["offsets"].as_array().unwrap()).enumerate() {
            let sentence = if e.type_ids[k] == 1 { &text[1] } else { &text[0] };
            let units = |cp: i64| sentence.chars().take(cp as usize).map(char::len_utf16).sum::<usize>();
            let theirs = ints(theirs);
            assert_eq!(*ours, (units(theirs[0]), units(theirs[1])), "{text:?} token {k}");
        }
    }
    let long = &json["tokenized"][6];
    assert_eq!(ints(&long["ids"]).len(), max, "the over-long input is cut to the model's length");
    // a length that leaves no room for the special tokens is refused, not exceeded
    let pair = (Text::Raw("a crane".into()), Some(Text::Raw("is flying".into())));
    let err = from_json.encode_batch(vec![pair.clone()], Some(2)).unwrap_err().to_string();
    assert!(err.contains("maxLength: 2 leaves no room for the 3 special tokens"), "{err}");
    let e = &from_json.encode_batch(vec![pair], Some(3)).unwrap()[0];
    assert_eq!(e.ids.len(), 3, "only the special tokens fit");
}

#[test]
fn words_split_alone_are_the_pieces_of_a_sentence_without_special_tokens() {
    let tokenizer = Tokenizer::from_json(&read("model/tokenizer.json")).unwrap();
    let special = tokenizer.special_ids().unwrap();
    let words: Vec<String> = ["the", "unbelievable", "crane", ""].iter().map(|w| w.to_string()).collect();
    let (ids, starts) = tokenizer.split_words(&words).unwrap();
    assert_eq!(starts.len(), words.len() + 1);
    assert_eq!(starts[3], starts[4], "an empty word has no piece");
    let sentence = Text::Raw(words.join(" "));
    let whole = &tokenizer.encode_batch(vec![(sentence, None)], None).unwrap()[0].ids;
    assert_eq!(whole.first().copied(), special.cls);
    assert_eq!(whole.last().copied(), special.sep);
    assert_eq!(ids, whole[1..whole.len() - 1], "the pieces between [CLS] and [SEP]");
    assert!(starts[2] - starts[1] > 1, "a rare word splits into several pieces");
    // a tokenizer.json that pads and cuts every input itself (as all-MiniLM-L6-v2's: Fixed 128)
    let mut json: Value = serde_json::from_str(&read("model/tokenizer.json")).unwrap();
    json["padding"] = serde_json::json!({"strategy": {"Fixed": 128}, "direction": "Right", "pad_to_multiple_of": null,
        "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"});
    json["truncation"] =
        serde_json::json!({"direction": "Right", "max_length": 3, "strategy": "LongestFirst", "stride": 0});
    let padded = Tokenizer::from_json(&json.to_string()).unwrap();
    assert_eq!(
        padded.split_words(&words).unwrap(),
        (ids, starts),
        "the file's padding and truncation are not tsbert's"
    );
}

#[test]
fn a_text_longer_than_a_piece_gives_the_tokens_and_count_of_a_whole_tokenization() {
    let tokenizer = Tokenizer::from_json(&read("model/tokenizer.json")).unwrap();
    let sentence = "The crane driver's unbelievable day, in Zürich: 42 cranes! ";
    let short = sentence.repeat(40); // under a piece: tokenized whole
    let long = sentence.repeat(8_000); // 480 kB: a piece at a time
    assert!(short.len() < PIECE_BYTES && long.len() > 4 * PIECE_BYTES);
    let count =
        |text: &str| tokenizer.encode_batch(vec![(Text::Raw(text.into()), None)], None).unwrap()[0].ids.len() - 2;
    let per_sentence = count(sentence);
    for (max, pair) in [(64, None), (512, None), (64, Some("a short second text"))] {
        let encode = |text: &str| {
            let input = (Text::Raw(text.into()), pair.map(|p: &str| Text::Raw(p.into())));
            tokenizer.encode_batch(vec![input], Some(max)).unwrap().remove(0)
        };
        let (a, b) = (encode(&short), encode(&long));
        assert_eq!((&b.ids, &b.type_ids, &b.tokens, &b.offsets), (&a.ids, &a.type_ids, &a.tokens, &a.offsets));
        let pair_tokens = pair.map_or(0, count);
        let special = if pair.is_some() { 3 } else { 2 };
        assert_eq!(b.overflow, 8_000 * per_sentence + pair_tokens + special - max, "max {max}");
    }
    let whole = tokenizer.encode_batch(vec![(Text::Raw(long.clone()), None)], None).unwrap().remove(0);
    assert_eq!(whole.ids.len(), 8_000 * per_sentence + 2, "cut at white space, the pieces count as the whole");
    let over = "a ".repeat(MAX_TEXT_BYTES / 2 + 1);
    let err = tokenizer.encode_batch(vec![(Text::Raw(over), None)], Some(8)).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("inputs[0]: {} bytes of text, over the {MAX_TEXT_BYTES} a text may have", MAX_TEXT_BYTES + 2)
    );
}

/// The MLM logits at `batch`'s predictions out of logits at every position (`[B, L, V]`, as
/// transformers computes them).
fn at_predictions(all: &[f64], batch: &Batch, vocab: usize) -> Vec<f64> {
    let l = batch.sequences.seq_len;
    batch
        .pred_positions
        .iter()
        .enumerate()
        .flat_map(|(i, &pos)| {
            let at = ((i / batch.num_preds) * l + pos as usize) * vocab;
            all[at..at + vocab].to_vec()
        })
        .collect()
}

/// Checks the forward pass of the model in `dir` on the fixture batch against transformers'
/// `hidden`, `mlm_logits` and `nsp_logits` in `want`; returns the model's losses.
fn check_forward(dir: &str, want: &HashMap<String, Tensor>) -> (f64, BertConfig) {
    let (json, _) = expected();
    let (t, config) = load(dir);
    let batch = batch(&json);
    let out = t.forward(&batch).unwrap();
    let err = rel_error(&values(&out.encoded), &values(&want["hidden"]));
    assert!(err <= 1e-5, "{dir}: hidden states: {err:e}");
    let theirs = at_predictions(&values(&want["mlm_logits"]), &batch, config.vocab_size);
    let err = rel_error(&values(&out.mlm_logits), &theirs);
    assert!(err <= 1e-5, "{dir}: MLM logits: {err:e}");
    let err = rel_error(&values(&out.nsp_logits), &values(&want["nsp_logits"]));
    assert!(err <= 1e-5, "{dir}: NSP logits: {err:e}");
    (out.losses.mlm + out.losses.nsp, config)
}

#[test]
fn the_config_and_forward_pass_match_transformers() {
    let (_, want) = expected();
    let (loss, config) = check_forward("model", &want);
    assert_eq!(config.activation, Activation::Gelu);
    assert!(config.embedding_norm && config.tie_word_embeddings && config.mlm_head && config.nsp_head);
    assert_eq!((config.hidden, config.layers, config.heads, config.layer_norm_eps), (32, 2, 4, 1e-12));
    let err = rel_error(&[loss], &values(&want["loss"]));
    assert!(err <= 1e-5, "loss {loss} against {:?}: {err:e}", values(&want["loss"]));
}

#[test]
fn an_untied_decoder_adds_the_bias_transformers_adds() {
    // transformers 5 keeps two MLM biases when the decoder is untied and adds the decoder's
    let want = candle_core::safetensors::load(fixtures().join("expected-untied.safetensors"), &Device::Cpu).unwrap();
    let (_, config) = check_forward("model-untied", &want);
    assert!(!config.tie_word_embeddings);
}

#[test]
fn the_gradients_of_one_step_match_transformers() {
    let (json, want) = expected();
    let (model, config) = load("model");
    let mut t = Trainer::new(&model, &TrainerOptions::default()).unwrap();
    t.compute_gradients(&model, &batch(&json)).unwrap();
    let names = HfNames::for_export(&config);
    let params: Vec<String> = model.params().iter().map(|(n, _)| n.to_string()).collect();
    for name in &params {
        let (ours, theirs) = (
            values(&t.last_grad(&model, name).unwrap().unwrap()),
            values(&want[&format!("grad.{}", names.stored_names(name)[0])]),
        );
        if name.ends_with("W_k.bias") {
            // exactly 0 in exact arithmetic (softmax ignores a shift shared by all keys): both
            // sides hold rounding noise, compared absolutely
            assert!(ours.iter().chain(&theirs).all(|g| g.abs() <= 1e-6), "{name}");
            continue;
        }
        let err = rel_error(&ours, &theirs);
        assert!(err <= 1e-4, "{name}: {err:e}");
    }
}

#[test]
fn a_bare_encoder_loads_without_heads_encodes_alike_and_names_what_it_lacks() {
    let (json, _) = expected();
    let (full, _) = load("model");
    let (bare, config) = load("bare");
    assert!(!config.mlm_head && !config.nsp_head);
    let batch = batch(&json);
    let (a, b) = (full.encode(&batch.sequences).unwrap(), bare.encode(&batch.sequences).unwrap());
    assert_eq!(values(&a), values(&b));
    let err = bare.forward(&batch).unwrap_err().to_string();
    assert!(err.starts_with("model: has no MLM head"), "{err}");
}

#[test]
fn an_export_names_and_configures_what_transformers_loads() {
    for (dir, tied) in [("model", true), ("model-untied", false)] {
        let (t, config) = load(dir);
        let (hf, names) = config_to_hf(&config).unwrap();
        assert_eq!(hf["architectures"][0], "BertForPreTraining");
        assert_eq!((hf["hidden_act"].as_str(), hf["tie_word_embeddings"].as_bool()), (Some("gelu"), Some(tied)));
        let exported = t.save_weights(&Naming::HuggingFace(names)).unwrap();
        let original = std::fs::read(fixtures().join(dir).join("model.safetensors")).unwrap();
        // exactly the tensors transformers' own save_pretrained wrote, with the same values
        // (but the untied decoder's unused bias, written as the one in use)
        let mut ours = WeightsFile::from_bytes(&exported).unwrap().names();
        let mut theirs = WeightsFile::from_bytes(&original).unwrap().names();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "{dir}");
        let (ours, theirs) = (
            candle_core::safetensors::load_buffer(&exported, &Device::Cpu).unwrap(),
            candle_core::safetensors::load_buffer(&original, &Device::Cpu).unwrap(),
        );
        for (name, t) in &theirs {
            let unused = !tied && name == "cls.predictions.bias";
            let want = if unused { &theirs["cls.predictions.decoder.bias"] } else { t };
            assert_eq!(values(&ours[name]), values(want), "{dir}: {name}");
        }
    }
    let textbook = BertConfig::textbook(100);
    let err = config_to_hf(&textbook).unwrap_err().to_string();
    assert!(err.contains("always applies a layer norm after the embeddings"), "{err}");
}

#[test]
fn configs_tsbert_cannot_run_are_named() {
    let stored = vec!["embeddings.word_embeddings.weight".to_string()];
    for (json, message) in [
        (r#"{"model_type": "roberta"}"#, "model_type is 'roberta'"),
        (r#"{"hidden_size": 32}"#, "has no model_type"),
        (r#"{"model_type": "bert", "position_embedding_type": "relative_key"}"#, "position_embedding_type"),
        (r#"{"model_type": "bert", "hidden_act": "swish"}"#, "hidden_act"),
        (r#"{"model_type": "bert", "hidden_size": -3}"#, "hidden_size is not a non-negative integer"),
        ("not json", "not valid JSON"),
    ] {
        let err = config_from_hf(json, &stored).unwrap_err().to_string();
        assert!(err.contains(message), "{json}: {err}");
    }
    // an NSP head without the pooler it reads is named as such (it was blamed on the NSP bias)
    let no_pooler: Vec<String> = ["bert.embeddings.word_embeddings.weight", "cls.seq_relationship.weight"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let err = config_from_hf(r#"{"model_type": "bert"}"#, &no_pooler).unwrap_err().to_string();
    assert!(err.contains("'bert.pooler.dense.weight' is missing: the NSP head"), "{err}");
}
