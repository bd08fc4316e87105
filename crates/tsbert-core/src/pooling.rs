//! Sentence embeddings: token states pooled by sentence-transformers' recipe (the mean over a
//! sequence's real tokens, or its first token's state), optionally L2-normalised; and
//! [`embed`], from texts to those vectors in one call.

use candle_core::{DType, Tensor, D};

use crate::batch::Sequences;
use crate::error::{InputError, Result};
use crate::model::ModelHandle;
use crate::tokenizer::{Encoded, Text, Tokenizer};

/// How a sequence's token states become one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The mean over the tokens inside the valid length (special tokens included, padding not).
    Mean,
    /// The state of the first token (`[CLS]` / `<cls>`).
    Cls,
}

/// `[B, L, H]` token states of sequences of `valid_lens` real tokens → `[B, H]`, each row
/// divided by its L2 norm (at least 1e-12, as `torch.nn.functional.normalize`) when `normalize`.
pub fn pool(encoded: &Tensor, valid_lens: &[usize], pooling: Pooling, normalize: bool) -> Result<Tensor> {
    let (b, l, _) = encoded.dims3()?;
    let pooled = match pooling {
        Pooling::Cls => encoded.narrow(1, 0, 1)?.squeeze(1)?,
        Pooling::Mean => {
            let mask: Vec<f32> =
                valid_lens.iter().flat_map(|&v| (0..l).map(move |j| f32::from(u8::from(j < v)))).collect();
            let mask = Tensor::from_vec(mask, (b, l, 1), encoded.device())?.to_dtype(encoded.dtype())?;
            let counts: Vec<f32> = valid_lens.iter().map(|&v| v.max(1) as f32).collect();
            let counts = Tensor::from_vec(counts, (b, 1), encoded.device())?.to_dtype(encoded.dtype())?;
            encoded.broadcast_mul(&mask)?.sum(1)?.broadcast_div(&counts)?
        }
    };
    if !normalize {
        return Ok(pooled);
    }
    let norms = pooled.to_dtype(DType::F32)?.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.maximum(1e-12)?;
    Ok(pooled.broadcast_div(&norms.to_dtype(pooled.dtype())?)?)
}

/// How [`embed`] makes one vector a text.
#[derive(Debug, Clone, Copy)]
pub struct EmbedOptions {
    /// Tokens a text may have, special tokens included (the model's positions at most).
    pub max_length: usize,
    /// Cut longer texts (`true`) or refuse them.
    pub truncate: bool,
    /// How token states become one vector.
    pub pooling: Pooling,
    /// Divide each vector by its L2 norm.
    pub normalize: bool,
    /// Texts a pass (sorted by length first, so that little is padding).
    pub batch_size: usize,
}

/// Texts tokenized at once by [`embed`], in passes of its batch size: its memory is bounded by
/// this many texts' tokens, whatever the number of texts.
pub const TEXTS_A_CHUNK: usize = 4096;

/// One vector a text, `texts.len() × hidden` values in the order given: each text
/// tokenized by `tokenizer` (special tokens added, cut to `options.max_length` unless
/// `truncate` is off, when a longer one is a `RangeError` naming it), [`TEXTS_A_CHUNK`] texts at
/// a time, sorted by length into passes of `options.batch_size`, each pass padded to its
/// longest and pooled.
pub fn embed(
    model: &ModelHandle,
    tokenizer: &Tokenizer,
    texts: Vec<String>,
    options: &EmbedOptions,
) -> Result<Vec<f32>> {
    let hidden = model.config().hidden;
    let pad = tokenizer.special_ids()?.pad;
    let mut out = vec![0f32; texts.len() * hidden];
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
        embed_chunk(model, &encoded, pad, options, &mut out[first * hidden..(first + count) * hidden])?;
        first += count;
    }
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
    let hidden = model.config().hidden;
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
        let pooled = model.encode_pooled(&sequences, options.pooling, options.normalize)?;
        let values = pooled.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        for (row, &i) in rows.iter().enumerate() {
            out[i * hidden..(i + 1) * hidden].copy_from_slice(&values[row * hidden..(row + 1) * hidden]);
        }
    }
    Ok(())
}
