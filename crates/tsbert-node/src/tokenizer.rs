//! `NativeTokenizer`: the core's tokenizer (Hugging Face's `tokenizers`), owned by a
//! JavaScript object.

use std::sync::Arc;

use napi::bindgen_prelude::Unknown;
use napi::{Env, ValueType};
use napi_derive::napi;
use tsbert_core::error::InputError;
use tsbert_core::on_demand_tokenizer::{OnDemandTokenizer, TokenizerSource};
use tsbert_core::tokenizer::{SpecialIds, Text, Tokenizer};

use crate::errors::OrThrow;
use crate::outputs::I32Values;

/// One tokenized sentence or pair, special tokens included.
#[napi(object, object_from_js = false)]
pub struct EncodedJs {
    /// Token ids.
    #[napi(ts_type = "Int32Array")]
    pub ids: I32Values,
    /// Segment ids (0 for the first sentence, 1 for the second).
    #[napi(ts_type = "Int32Array")]
    pub type_ids: I32Values,
    /// The tokens as strings.
    pub tokens: Vec<String>,
    /// `[start, end)` of each token in its text, in UTF-16 code units, two numbers a token.
    #[napi(ts_type = "Int32Array")]
    pub offsets: I32Values,
    /// Tokens cut off to fit the maximum length (0 when it fitted).
    pub overflow: u32,
}

/// The special tokens' ids.
#[napi(object)]
pub struct SpecialIdsJs {
    /// The padding token's id.
    pub pad: u32,
    /// The mask token's id, if the vocabulary has one.
    pub mask: Option<u32>,
    /// The class token's id (`[CLS]`), if the vocabulary has one.
    pub cls: Option<u32>,
    /// The separator's id (`[SEP]`), if the vocabulary has one.
    pub sep: Option<u32>,
    /// The unknown token's id, if the vocabulary has one.
    pub unk: Option<u32>,
}

/// Words split into sub-word ids, end to end.
#[napi(object, object_from_js = false)]
pub struct SplitWordsJs {
    /// The ids of every word, end to end.
    #[napi(ts_type = "Int32Array")]
    pub ids: I32Values,
    /// Word `w` is `ids[starts[w], starts[w + 1])`; one entry more than words.
    #[napi(ts_type = "Int32Array")]
    pub starts: I32Values,
}

/// A tokenizer: Hugging Face's `tokenizer.json`, BERT's WordPiece from a `vocab.txt`, or the
/// textbook's word vocabulary; made at once, or (`onDemand`) checked at once and made at its
/// first use (the core's `OnDemandTokenizer`).
#[napi]
pub struct NativeTokenizer {
    held: Held,
}

/// How a [`NativeTokenizer`] holds its tokenizer (shared with the calls that run off the JS
/// thread).
#[derive(Clone)]
pub(crate) enum Held {
    /// Made.
    Made(Arc<Tokenizer>),
    /// Made at its first use.
    OnDemand(Arc<OnDemandTokenizer>),
}

impl Held {
    /// The tokenizer; made now if it is held on demand and was not yet.
    pub(crate) fn tokenizer(&self) -> tsbert_core::Result<Arc<Tokenizer>> {
        match self {
            Self::Made(tokenizer) => Ok(Arc::clone(tokenizer)),
            Self::OnDemand(source) => source.tokenizer(),
        }
    }

    /// Number of token ids, added tokens included (without making an on-demand tokenizer).
    fn vocab_size(&self) -> usize {
        match self {
            Self::Made(tokenizer) => tokenizer.vocab_size(),
            Self::OnDemand(source) => source.vocab_size(),
        }
    }

    /// The special tokens' ids (without making an on-demand tokenizer that has a padding token).
    fn special_ids(&self) -> tsbert_core::Result<SpecialIds> {
        match self {
            Self::Made(tokenizer) => tokenizer.special_ids(),
            Self::OnDemand(source) => source.special_ids(),
        }
    }

    /// Whether the tokenizer is made.
    fn is_made(&self) -> bool {
        match self {
            Self::Made(_) => true,
            Self::OnDemand(source) => source.is_made(),
        }
    }
}

/// A string, or an array of strings (words already split); anything else a `TypeError` naming
/// `field`.
fn read_text(value: Unknown, field: &str) -> Result<Text, InputError> {
    let wrong = || InputError::type_error(field, "expected a string or an array of strings");
    match value.get_type().map_err(|_| wrong())? {
        // SAFETY (both casts): the value's type was checked just before.
        ValueType::String => Ok(Text::Raw(unsafe { value.cast::<String>() }.map_err(|_| wrong())?)),
        ValueType::Object => Ok(Text::Words(unsafe { value.cast::<Vec<String>>() }.map_err(|_| wrong())?)),
        _ => Err(wrong()),
    }
}

/// `inputs[i]`: `[text]` or `[text, pair]`.
fn read_inputs(inputs: Vec<Unknown>) -> Result<Vec<(Text, Option<Text>)>, InputError> {
    inputs
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let field = format!("inputs[{i}]");
            // SAFETY: a live handle of this call; the cast checks that it is an array.
            let parts: Vec<Unknown> = unsafe { item.cast() }
                .map_err(|_| InputError::type_error(&field, "expected [text] or [text, pair]"))?;
            let mut parts = parts.into_iter();
            let first =
                parts.next().ok_or_else(|| InputError::type_error(&field, "expected [text] or [text, pair]"))?;
            let a = read_text(first, &field)?;
            let b = match parts.next() {
                Some(b) if !matches!(b.get_type(), Ok(ValueType::Undefined | ValueType::Null)) => {
                    Some(read_text(b, &format!("{field}[1]"))?)
                }
                _ => None,
            };
            Ok((a, b))
        })
        .collect()
}

fn ids(values: &[u32]) -> I32Values {
    I32Values(values.iter().map(|&v| v as i32).collect())
}

impl NativeTokenizer {
    /// The tokenizer as held, for a call that runs off the JS thread (and makes it there if
    /// it is held on demand).
    pub(crate) fn held(&self) -> Held {
        self.held.clone()
    }

    /// The tokenizer; made now if it is held on demand and was not yet.
    fn shared(&self) -> tsbert_core::Result<Arc<Tokenizer>> {
        self.held.tokenizer()
    }

    /// A tokenizer made from `source`, now or on demand; `env`'s error when it is none.
    fn from_source(env: &Env, source: TokenizerSource, on_demand: Option<bool>) -> napi::Result<Self> {
        let held = if on_demand == Some(true) {
            OnDemandTokenizer::new(source).map(|source| Held::OnDemand(Arc::new(source)))
        } else {
            source.build().map(|made| Held::Made(Arc::new(made)))
        };
        held.map(|held| Self { held }).or_throw(env)
    }
}

#[napi]
impl NativeTokenizer {
    /// The tokenizer a `tokenizer.json` describes (made at its first use when `onDemand`);
    /// throws (code `TSBERT_CHECKPOINT`) if it is not one.
    #[napi(factory)]
    pub fn from_json(env: Env, json: String, on_demand: Option<bool>) -> napi::Result<Self> {
        Self::from_source(&env, TokenizerSource::Json(json), on_demand)
    }

    /// BERT's WordPiece tokenizer from the lines of a `vocab.txt` (made at its first use when
    /// `onDemand`).
    #[napi(factory)]
    pub fn bert_wordpiece(env: Env, vocab_txt: String, lowercase: bool, on_demand: Option<bool>) -> napi::Result<Self> {
        Self::from_source(&env, TokenizerSource::BertWordpiece { vocab_txt, lowercase }, on_demand)
    }

    /// The textbook's word vocabulary (`tokens` in id order) as a word-level tokenizer.
    #[napi(factory)]
    pub fn word_level(env: Env, tokens: Vec<String>) -> napi::Result<Self> {
        Tokenizer::word_level(&tokens).map(|made| Self { held: Held::Made(Arc::new(made)) }).or_throw(&env)
    }

    /// The tokenizer as a `tokenizer.json`.
    #[napi]
    pub fn to_json(&self, env: Env) -> napi::Result<String> {
        self.shared().and_then(|t| t.to_json()).or_throw(&env)
    }

    /// Number of token ids, added tokens included.
    #[napi(getter)]
    pub fn vocab_size(&self) -> u32 {
        self.held.vocab_size() as u32
    }

    /// The id of `token`, or `null`.
    #[napi]
    pub fn token_to_id(&self, env: Env, token: String) -> napi::Result<Option<u32>> {
        self.shared().map(|t| t.token_to_id(&token)).or_throw(&env)
    }

    /// The token of `id`, or `null`.
    #[napi]
    pub fn id_to_token(&self, env: Env, id: u32) -> napi::Result<Option<String>> {
        self.shared().map(|t| t.id_to_token(id)).or_throw(&env)
    }

    /// Whether the tokenizer is made (always, unless it was held on demand and has not been
    /// used to tokenize).
    #[napi(getter)]
    pub fn is_made(&self) -> bool {
        self.held.is_made()
    }

    /// The special tokens' ids; throws if there is no padding token.
    #[napi]
    pub fn special_ids(&self, env: Env) -> napi::Result<SpecialIdsJs> {
        let ids = self.held.special_ids().or_throw(&env)?;
        Ok(SpecialIdsJs { pad: ids.pad, mask: ids.mask, cls: ids.cls, sep: ids.sep, unk: ids.unk })
    }

    /// Each word alone as sub-word ids, without special tokens.
    #[napi]
    pub fn split_words(&self, env: Env, words: Vec<String>) -> napi::Result<SplitWordsJs> {
        let run = || -> tsbert_core::Result<SplitWordsJs> {
            let (ids, starts) = self.shared()?.split_words(&words)?;
            let count = |n: usize| i32::try_from(n).map_err(|_| InputError::range("words", "more than 2^31 sub-words"));
            Ok(SplitWordsJs {
                ids: I32Values(ids.iter().map(|&i| i as i32).collect()),
                starts: I32Values(starts.into_iter().map(count).collect::<Result<_, _>>()?),
            })
        };
        run().or_throw(&env)
    }

    /// Tokenizes each input, `[text]` or `[text, pair]` (strings, or arrays of words), special
    /// tokens added; cut to `maxLength` tokens when given. A `TypeError` names a bad item.
    #[napi(ts_args_type = "inputs: Array<[string | string[], (string | string[])?]>, maxLength?: number")]
    pub fn encode_batch(
        &self,
        env: Env,
        inputs: Vec<Unknown>,
        max_length: Option<u32>,
    ) -> napi::Result<Vec<EncodedJs>> {
        let run = || -> tsbert_core::Result<Vec<EncodedJs>> {
            let encoded = self.shared()?.encode_batch(read_inputs(inputs)?, max_length.map(|m| m as usize))?;
            Ok(encoded
                .into_iter()
                .map(|e| EncodedJs {
                    ids: ids(&e.ids),
                    type_ids: ids(&e.type_ids),
                    tokens: e.tokens,
                    offsets: I32Values(e.offsets.iter().flat_map(|&(s, t)| [s as i32, t as i32]).collect()),
                    overflow: e.overflow as u32,
                })
                .collect())
        };
        run().or_throw(&env)
    }
}
