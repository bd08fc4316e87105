//! Sentence embeddings: token states pooled as sentence-transformers' `Pooling` module does
//! (the mean over a sequence's real tokens, its first or last token's state, the maximum, the
//! mean over the square root of the length, a position-weighted mean; several modes
//! concatenated), optionally L2-normalised; and [`embed`], from texts to those vectors in one
//! call.

use candle_core::{DType, Tensor, D};

use crate::batch::Sequences;
use crate::error::{InputError, Result};
use crate::model::ModelHandle;
use crate::tokenizer::{Encoded, Text, Tokenizer};

/// How a sequence's token states become one vector (sentence-transformers' pooling modes; the
/// tokens are those inside the valid length, special tokens included, padding not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The mean of the tokens' states (`mean`).
    Mean,
    /// The state of the first token, `[CLS]` / `<cls>` (`cls`).
    Cls,
    /// The maximum of each dimension over the tokens (`max`).
    Max,
    /// The sum of the tokens' states over the square root of their number
    /// (`mean_sqrt_len_tokens`).
    MeanSqrtLen,
    /// The mean weighted by position, the i-th token (from 1) counting i times (`weightedmean`).
    WeightedMean,
    /// The state of the last token (`lasttoken`).
    LastToken,
}

impl Pooling {
    /// The mode of sentence-transformers' name for it (`mean`, `cls`, `max`,
    /// `mean_sqrt_len_tokens`, `weightedmean`, `lasttoken`).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "mean" => Self::Mean,
            "cls" => Self::Cls,
            "max" => Self::Max,
            "mean_sqrt_len_tokens" => Self::MeanSqrtLen,
            "weightedmean" => Self::WeightedMean,
            "lasttoken" => Self::LastToken,
            _ => return None,
        })
    }
}

/// `[B, L, H]` token states of sequences of `valid_lens` real tokens (each at least one) →
/// `[B, modes.len() · H]` in f32, the modes' vectors side by side in the order given, each row
/// divided by its L2 norm (at least 1e-12, as `torch.nn.functional.normalize`) when `normalize`.
pub fn pool(encoded: &Tensor, valid_lens: &[usize], modes: &[Pooling], normalize: bool) -> Result<Tensor> {
    let (b, l, h) = encoded.dims3()?;
    if modes.is_empty() {
        return Err(InputError::range("pooling", "no pooling mode given").into());
    }
    if valid_lens.len() != b || valid_lens.iter().any(|&v| v == 0 || v > l) {
        return Err(InputError::range("validLens", format!("{valid_lens:?} for {b} sequences of {l} positions")).into());
    }
    let x = encoded.to_dtype(DType::F32)?;
    let device = x.device();
    // per-position weights [B, L, 1]: 1 (or the position from 1) inside the valid length, else 0
    let weights = |weighted: bool| -> Result<Tensor> {
        let w: Vec<f32> = valid_lens
            .iter()
            .flat_map(|&v| {
                (0..l).map(move |j| {
                    if j < v {
                        if weighted {
                            (j + 1) as f32
                        } else {
                            1.0
                        }
                    } else {
                        0.0
                    }
                })
            })
            .collect();
        Ok(Tensor::from_vec(w, (b, l, 1), device)?)
    };
    let rows_at = |positions: Vec<u32>| -> Result<Tensor> {
        let at = Tensor::from_vec(positions, b, device)?;
        Ok(x.reshape((b * l, h))?.index_select(&at, 0)?)
    };
    let counts: Vec<f32> = valid_lens.iter().map(|&v| v as f32).collect();
    let counts = Tensor::from_vec(counts, (b, 1), device)?;
    let mut parts = Vec::with_capacity(modes.len());
    for mode in modes {
        parts.push(match mode {
            Pooling::Cls => rows_at((0..b).map(|r| (r * l) as u32).collect())?,
            Pooling::LastToken => {
                rows_at(valid_lens.iter().enumerate().map(|(r, &v)| (r * l + v - 1) as u32).collect())?
            }
            Pooling::Mean => x.broadcast_mul(&weights(false)?)?.sum(1)?.broadcast_div(&counts)?,
            Pooling::MeanSqrtLen => x.broadcast_mul(&weights(false)?)?.sum(1)?.broadcast_div(&counts.sqrt()?)?,
            Pooling::WeightedMean => {
                let w = weights(true)?;
                x.broadcast_mul(&w)?.sum(1)?.broadcast_div(&w.sum(1)?)?
            }
            Pooling::Max => {
                let inside = weights(false)?.ne(0f32)?.broadcast_as((b, l, h))?;
                let none = Tensor::full(f32::NEG_INFINITY, (b, l, h), device)?;
                inside.where_cond(&x, &none)?.max(1)?
            }
        });
    }
    let pooled = Tensor::cat(&parts, 1)?;
    if !normalize {
        return Ok(pooled);
    }
    let norms = pooled.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.maximum(1e-12)?;
    Ok(pooled.broadcast_div(&norms)?)
}

/// How [`embed`] makes one vector a text.
#[derive(Debug, Clone)]
pub struct EmbedOptions {
    /// Tokens a text may have, special tokens included (the model's positions at most).
    pub max_length: usize,
    /// Cut longer texts (`true`) or refuse them.
    pub truncate: bool,
    /// How token states become one vector: each mode's vector, side by side.
    pub pooling: Vec<Pooling>,
    /// Divide each vector by its L2 norm.
    pub normalize: bool,
    /// Texts a pass (sorted by length first, so that little is padding).
    pub batch_size: usize,
}

/// Texts tokenized at once by [`embed`], in passes of its batch size: its memory is bounded by
/// this many texts' tokens, whatever the number of texts.
pub const TEXTS_A_CHUNK: usize = 4096;

/// One vector a text, `texts.len() × width` values in the order given ([`pooled_width`]): each
/// text tokenized by `tokenizer` (special tokens added, cut to `options.max_length` unless
/// `truncate` is off, when a longer one is a `RangeError` naming it; a text of no tokens at all
/// is one too), [`TEXTS_A_CHUNK`] texts at
/// a time, sorted by length into passes of `options.batch_size`, each pass padded to its
/// longest and pooled.
pub fn embed(
    model: &ModelHandle,
    tokenizer: &Tokenizer,
    texts: Vec<String>,
    options: &EmbedOptions,
) -> Result<Vec<f32>> {
    let width = pooled_width(model, options);
    let pad = tokenizer.special_ids()?.pad;
    let mut out = vec![0f32; texts.len() * width];
    let mut texts = texts.into_iter();
    let mut first = 0;
    loop {
        let inputs: Vec<_> = texts.by_ref().take(TEXTS_A_CHUNK).map(|t| (Text::Raw(t), None)).collect();
        if inputs.is_empty() {
            return Ok(out);
        }
        let count = inputs.len();
        let encoded = tokenizer.encode_batch(inputs, Some(options.max_length))?;
        if !options.truncate {
            if let Some((i, e)) = encoded.iter().enumerate().find(|(_, e)| e.overflow > 0) {
                return Err(InputError::range(
                    format!("inputs[{}]", first + i),
                    format!(
                        "{} tokens with the special tokens, but at most {} fit (maxLength)",
                        e.ids.len() + e.overflow,
                        options.max_length
                    ),
                )
                .into());
            }
        }
        if let Some(i) = encoded.iter().position(|e| e.ids.is_empty()) {
            return Err(InputError::range(format!("inputs[{}]", first + i), "the text gives no tokens").into());
        }
        embed_chunk(model, &encoded, pad, options, &mut out[first * width..(first + count) * width])?;
        first += count;
    }
}

/// The values of one text's vector: the hidden size once a pooling mode.
pub fn pooled_width(model: &ModelHandle, options: &EmbedOptions) -> usize {
    model.config().hidden * options.pooling.len()
}

/// The pooled vectors of `encoded` into `out` (a row a text, in their order): sorted by
/// length into passes of `options.batch_size`.
fn embed_chunk(
    model: &ModelHandle,
    encoded: &[Encoded],
    pad: u32,
    options: &EmbedOptions,
    out: &mut [f32],
) -> Result<()> {
    let width = pooled_width(model, options);
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    order.sort_by_key(|&i| encoded[i].ids.len());
    for rows in order.chunks(options.batch_size.max(1)) {
        let seq_len = rows.iter().map(|&i| encoded[i].ids.len()).max().unwrap_or(1).max(1);
        let mut sequences = Sequences {
            batch_size: rows.len(),
            seq_len,
            tokens: vec![pad as i32; rows.len() * seq_len],
            segments: vec![0; rows.len() * seq_len],
            valid_lens: Vec::with_capacity(rows.len()),
        };
        for (row, &i) in rows.iter().enumerate() {
            let e = &encoded[i];
            for (k, (&id, &segment)) in e.ids.iter().zip(&e.type_ids).enumerate() {
                sequences.tokens[row * seq_len + k] = id as i32;
                sequences.segments[row * seq_len + k] = segment as i32;
            }
            sequences.valid_lens.push(e.ids.len() as i32);
        }
        let pooled = model.encode_pooled(&sequences, &options.pooling, options.normalize)?;
        let values = pooled.flatten_all()?.to_vec1::<f32>()?;
        for (row, &i) in rows.iter().enumerate() {
            out[i * width..(i + 1) * width].copy_from_slice(&values[row * width..(row + 1) * width]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// Two sequences of three positions, two dimensions; the second has two real tokens, its
    /// padding state (99, -99) must never show.
    fn states() -> Tensor {
        let v = [1., 2., 3., -4., 5., 6., /* second */ -1., 0.5, 7., 2., 99., -99.];
        Tensor::from_vec(v.to_vec(), (2, 3, 2), &Device::Cpu).unwrap()
    }

    fn pooled(modes: &[Pooling], normalize: bool) -> Vec<Vec<f32>> {
        pool(&states(), &[3, 2], modes, normalize).unwrap().to_vec2().unwrap()
    }

    #[test]
    fn every_mode_pools_the_real_tokens_as_sentence_transformers_does() {
        assert_eq!(pooled(&[Pooling::Cls], false), [[1., 2.], [-1., 0.5]]);
        assert_eq!(pooled(&[Pooling::LastToken], false), [[5., 6.], [7., 2.]]);
        assert_eq!(pooled(&[Pooling::Max], false), [[5., 6.], [7., 2.]]);
        assert_eq!(pooled(&[Pooling::Mean], false), [[3., 4. / 3.], [3., 1.25]]);
        let r3 = 3f32.sqrt();
        let r2 = 2f32.sqrt();
        assert_eq!(pooled(&[Pooling::MeanSqrtLen], false), [[9. / r3, 4. / r3], [6. / r2, 2.5 / r2]]);
        // weights 1, 2, 3 and 1, 2
        assert_eq!(pooled(&[Pooling::WeightedMean], false), [[22. / 6., 12. / 6.], [13. / 3., 4.5 / 3.]]);
    }

    #[test]
    fn modes_are_concatenated_in_the_order_given_then_normalised_together() {
        assert_eq!(pooled(&[Pooling::Cls, Pooling::Max], false), [[1., 2., 5., 6.], [-1., 0.5, 7., 2.]]);
        let both = pooled(&[Pooling::LastToken, Pooling::Cls], true);
        let n = (25f32 + 36. + 1. + 4.).sqrt();
        assert_eq!(both[0], [5. / n, 6. / n, 1. / n, 2. / n]);
        let norm: f32 = both[1].iter().map(|v| v * v).sum();
        assert!((norm - 1.).abs() < 1e-6);
    }

    #[test]
    fn names_are_sentence_transformers_and_bad_lengths_are_refused() {
        assert_eq!(Pooling::from_name("mean_sqrt_len_tokens"), Some(Pooling::MeanSqrtLen));
        assert_eq!(Pooling::from_name("weightedmean"), Some(Pooling::WeightedMean));
        assert_eq!(Pooling::from_name("average"), None);
        assert!(pool(&states(), &[3, 0], &[Pooling::Mean], false).is_err());
        assert!(pool(&states(), &[4, 1], &[Pooling::Mean], false).is_err());
        assert!(pool(&states(), &[3, 2], &[], false).is_err());
    }
}
