//! What a model and a pass over a batch cost, from their sizes, before anything is allocated:
//! the memory they need (a size that cannot fit fails with an error giving the estimate,
//! instead of the kernel's out-of-memory killer ending the process with nothing said), and the
//! multiply-adds of an encoding pass.

use crate::config::BertConfig;
use crate::error::{InputError, Result};
use crate::model::BertModel;

/// Bytes of one f32.
const F32: u128 = 4;

/// Scalars of the model's parameters, counted from their shapes without allocating them.
/// `config` must have passed [`BertConfig::validate`] (its limits keep the shapes small).
pub fn param_count(config: &BertConfig) -> Result<u128> {
    let shapes = BertModel::param_shapes(config)?;
    Ok(shapes.iter().map(|(_, shape)| shape.iter().map(|&d| d as u128).product::<u128>()).sum())
}

/// Bytes of a model's f32 weights.
pub fn weights_bytes(config: &BertConfig) -> Result<u128> {
    Ok(param_count(config)? * F32)
}

/// Bytes of a model ready to train: its f32 weights, their gradients and Adam's two moments.
pub fn trainable_bytes(config: &BertConfig) -> Result<u128> {
    Ok(4 * weights_bytes(config)?)
}

/// Scalars of the encoder's dense weights (the queries, keys, values and output of attention,
/// the two feed-forward layers), which the inference pass may hold a copy of.
pub fn dense_weight_count(config: &BertConfig) -> u128 {
    let [h, f, layers] = [config.hidden, config.ffn_hidden, config.layers].map(|x| x as u128);
    layers * (4 * h * h + 2 * h * f)
}

/// Bytes of the int8 copy of the encoder's dense layers that a quantised model's inference
/// pass makes (`ModelHandle::quantize`): a byte a weight, a scale and a sum a channel (the
/// padding of the kernel's layout not counted).
pub fn int8_copy_bytes(config: &BertConfig) -> u128 {
    let [h, f, layers] = [config.hidden, config.ffn_hidden, config.layers].map(|x| x as u128);
    dense_weight_count(config) + layers * 8 * (5 * h + f)
}

/// Multiply-adds of an encoding pass over `rows` sequences of `seq_len` tokens: per token and
/// block, the four attention projections, the two feed-forward layers and the attention
/// scores and weighted sums.
pub fn pass_macs(config: &BertConfig, rows: usize, seq_len: usize) -> u128 {
    let [b, l, h, f, layers] = [rows, seq_len, config.hidden, config.ffn_hidden, config.layers].map(|x| x as u128);
    b * l * layers * (4 * h * h + 2 * h * f + l * h)
}

/// Bytes of the activations one pass over `rows` sequences of `seq_len` tokens with
/// `predictions` MLM predictions keeps: what the forward pass saves for the backward one (and
/// about as much again for the gradients when `training`). An estimate from the shapes of
/// `model/bert.rs` (per block: about 20 `[B, L, H]` tensors, 6 `[B, heads, L, L]` and 2
/// `[B, L, F]`; the MLM head's logits and their gradient, `[N, V]` each), within a small
/// factor of what the allocator really holds.
pub fn pass_bytes(config: &BertConfig, rows: usize, seq_len: usize, predictions: usize, training: bool) -> u128 {
    let [b, l, n] = [rows, seq_len, predictions].map(|x| x as u128);
    let [h, f, heads, v, layers] =
        [config.hidden, config.ffn_hidden, config.heads, config.vocab_size, config.layers].map(|x| x as u128);
    let block = 20 * b * l * h + 6 * b * heads * l * l + 2 * b * l * f;
    let forward = 4 * b * l * h + layers * block + 2 * n * v;
    F32 * if training { 2 * forward } else { forward }
}

/// `bytes` in the largest decimal unit it reaches, with two decimals (`12.35 GB`, `3.20 MB`,
/// `812 bytes`): a small limit is not shown as `0.00 GB`.
pub fn readable_bytes(bytes: u128) -> String {
    let b = bytes as f64;
    match [(1e9, "GB"), (1e6, "MB"), (1e3, "kB")].into_iter().find(|&(unit, _)| b >= unit) {
        Some((unit, name)) => format!("{:.2} {name}", b / unit),
        None => format!("{bytes} bytes"),
    }
}

/// Checks that `bytes` (what `what` needs) fits in `limit`: a `RangeError`-kind error naming
/// `field` and giving both figures otherwise.
pub fn check_fits(field: &str, what: &str, bytes: u128, limit: Option<u64>) -> std::result::Result<(), InputError> {
    match limit {
        Some(limit) if bytes > u128::from(limit) => Err(InputError::range(
            field,
            format!(
                "{what} needs about {}, more than the {} allowed (the memory limit)",
                readable_bytes(bytes),
                readable_bytes(u128::from(limit))
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_grow_with_the_sizes_and_never_overflow() {
        let textbook = BertConfig::textbook(20256);
        let huge = BertConfig { vocab_size: 1 << 24, max_positions: 1 << 20, hidden: 1 << 16, ..textbook.clone() };
        assert!(trainable_bytes(&huge).unwrap() > trainable_bytes(&textbook).unwrap());
        assert_eq!(trainable_bytes(&textbook).unwrap(), 4 * weights_bytes(&textbook).unwrap());
        // the textbook model's 2 blocks: 4·128² + 2·128·256 weights and 5·128 + 256 channels each
        assert_eq!(int8_copy_bytes(&textbook), 2 * (4 * 128 * 128 + 2 * 128 * 256 + 8 * (5 * 128 + 256)));
        // the textbook model on one sequence of 64 tokens: 17 M multiply-adds
        assert_eq!(pass_macs(&textbook, 1, 64), 64 * 2 * (4 * 128 * 128 + 2 * 128 * 256 + 64 * 128));
        assert!(pass_bytes(&textbook, 512, 64, 5120, true) > pass_bytes(&textbook, 512, 64, 5120, false));
        assert!(check_fits("batch", "this", 2_000_000_001, Some(2_000_000_000))
            .unwrap_err()
            .to_string()
            .contains("2.00 GB"));
        assert!(check_fits("batch", "this", 10, None).is_ok());
        let small = check_fits("batch", "this", 3_000, Some(1_000)).unwrap_err().to_string();
        assert!(small.contains("about 3.00 kB, more than the 1.00 kB allowed"), "{small}");
        assert_eq!(readable_bytes(999), "999 bytes");
    }
}
