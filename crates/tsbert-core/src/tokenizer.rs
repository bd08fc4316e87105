//! Tokenizers, through Hugging Face's `tokenizers` crate: a `tokenizer.json` (WordPiece for
//! BERT, or any other kind it describes), BERT's WordPiece built from a `vocab.txt`, and the
//! textbook's word vocabulary as a word-level tokenizer behind the same interface.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde_json::{json, Value};
use tokenizers::utils::truncation::{truncate_encodings, TruncationDirection, TruncationParams, TruncationStrategy};
use tokenizers::{EncodeInput, InputSequence, PostProcessor};

use crate::allocator::releasing_freed_memory;
use crate::error::{Error, InputError, Result};

/// Text to tokenize: a raw string, or words already split (each still normalised and split
/// into sub-words by the tokenizer).
#[derive(Debug, Clone, PartialEq)]
pub enum Text {
    /// A raw string.
    Raw(String),
    /// Words already split.
    Words(Vec<String>),
}

/// One tokenized sentence or sentence pair, special tokens included.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Segment (token type) ids: 0 for the first sentence, 1 for the second.
    pub type_ids: Vec<u32>,
    /// The tokens as strings.
    pub tokens: Vec<String>,
    /// Each token's `[start, end)` in its text, in UTF-16 code units (JavaScript string
    /// indices); `[0, 0]` for special tokens; for words already split, in the words joined by
    /// single spaces.
    pub offsets: Vec<(usize, usize)>,
    /// Tokens the input had beyond the length it was cut to, special tokens counted once (0
    /// when it fitted).
    pub overflow: usize,
}

/// The special tokens BERT-style inputs need, as ids of the tokenizer's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialIds {
    /// `[PAD]` / `<pad>`.
    pub pad: u32,
    /// `[MASK]` / `<mask>`, if the vocabulary has one.
    pub mask: Option<u32>,
    /// `[CLS]` / `<cls>`, if the vocabulary has one.
    pub cls: Option<u32>,
    /// `[SEP]` / `<sep>`, if the vocabulary has one.
    pub sep: Option<u32>,
    /// `[UNK]` / `<unk>`, if the vocabulary has one.
    pub unk: Option<u32>,
}

/// A tokenizer and what it needs to make model inputs.
pub struct Tokenizer {
    /// The tokenizer its file describes without its post-processor, truncation and padding: a
    /// text's tokens alone. tsbert cuts, adds the special tokens and pads by itself (a
    /// `tokenizer.json` such as all-MiniLM-L6-v2's pads every input to 128 ids). The one copy
    /// of the vocabulary: each `tokenizers::Tokenizer` holds two maps of it, about 5 MiB for
    /// BERT's 30,522 tokens (three copies, kept to tokenize with and to save, took 14.5 MiB).
    bare: tokenizers::Tokenizer,
    /// What the file sets besides: the post-processor (the special tokens and sequence ids,
    /// added once to the text or pair), and the truncation and padding a save writes back.
    post_processor: Option<tokenizers::PostProcessorWrapper>,
    truncation: Option<TruncationParams>,
    padding: Option<tokenizers::PaddingParams>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer").field("vocab_size", &self.vocab_size()).finish()
    }
}

fn bad_file(what: impl std::fmt::Display) -> Error {
    Error::Checkpoint(what.to_string())
}

/// An added special token of a `tokenizer.json`.
fn special(id: usize, content: &str) -> Value {
    json!({ "id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
            "normalized": false, "special": true })
}

/// BERT's template: `cls A sep` and `cls A sep B sep`, the second sentence of segment 1.
fn template(cls: (&str, usize), sep: (&str, usize)) -> Value {
    let token = |t: &str, segment: u32| json!({ "SpecialToken": { "id": t, "type_id": segment } });
    let sequence = |s: &str, segment: u32| json!({ "Sequence": { "id": s, "type_id": segment } });
    let entry = |(t, id): (&str, usize)| (t.to_string(), json!({ "id": t, "ids": [id], "tokens": [t] }));
    json!({
        "type": "TemplateProcessing",
        "single": [token(cls.0, 0), sequence("A", 0), token(sep.0, 0)],
        "pair": [token(cls.0, 0), sequence("A", 0), token(sep.0, 0), sequence("B", 1), token(sep.0, 1)],
        "special_tokens": serde_json::Map::from_iter([entry(cls), entry(sep)]),
    })
}

impl Tokenizer {
    /// The tokenizer a `tokenizer.json` describes. (Making a tokenizer builds and drops
    /// several maps of its vocabulary: that memory is given back at once, see
    /// [`releasing_freed_memory`], as are the other constructors'.)
    pub fn from_json(json: &str) -> Result<Self> {
        releasing_freed_memory(|| {
            let inner =
                json.parse::<tokenizers::Tokenizer>().map_err(|e| bad_file(format!("not a tokenizer.json ({e})")))?;
            Self::new(inner)
        })
    }

    /// `inner` taken apart: its post-processor, truncation and padding kept aside.
    fn new(mut inner: tokenizers::Tokenizer) -> Result<Self> {
        let post_processor = inner.get_post_processor().cloned();
        let truncation = inner.get_truncation().cloned();
        let padding = inner.get_padding().cloned();
        inner.with_truncation(None).map_err(|e| bad_file(format!("the tokenizer's truncation ({e})")))?;
        inner.with_padding(None);
        inner.with_post_processor(None::<tokenizers::PostProcessorWrapper>);
        Ok(Self { bare: inner, post_processor, truncation, padding })
    }

    /// BERT's WordPiece tokenizer from a `vocab.txt` (one token a line, ids by line), with
    /// BERT's normalisation (lowercased and accents stripped when `lowercase`, as
    /// `BertTokenizer`'s `do_lower_case`).
    pub fn bert_wordpiece(vocab_txt: &str, lowercase: bool) -> Result<Self> {
        releasing_freed_memory(|| Self::bert_wordpiece_spec(vocab_txt, lowercase))
    }

    /// [`Tokenizer::bert_wordpiece`]'s work.
    fn bert_wordpiece_spec(vocab_txt: &str, lowercase: bool) -> Result<Self> {
        let tokens: Vec<&str> = vocab_txt.lines().map(|l| l.trim_end_matches('\r')).collect();
        let id = |t: &str| tokens.iter().position(|&x| x == t).ok_or_else(|| bad_file(format!("vocab.txt has no {t}")));
        let (cls, sep, unk) = (id("[CLS]")?, id("[SEP]")?, id("[UNK]")?);
        let vocab: serde_json::Map<String, Value> =
            tokens.iter().enumerate().map(|(i, t)| (t.to_string(), json!(i))).collect();
        let added: Vec<Value> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            .iter()
            .filter_map(|t| tokens.iter().position(|x| x == t).map(|i| special(i, t)))
            .collect();
        let spec = json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": added,
            "normalizer": { "type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                            "strip_accents": null, "lowercase": lowercase },
            "pre_tokenizer": { "type": "BertPreTokenizer" },
            "post_processor": template(("[CLS]", cls), ("[SEP]", sep)),
            "decoder": { "type": "WordPiece", "prefix": "##", "cleanup": true },
            "model": { "type": "WordPiece", "unk_token": tokens[unk], "continuing_subword_prefix": "##",
                       "max_input_chars_per_word": 100, "vocab": vocab },
        });
        Self::from_json(&spec.to_string())
    }

    /// The textbook's word vocabulary (`tokens` in id order, the reserved `<unk>`, `<pad>`,
    /// `<mask>`, `<cls>`, `<sep>` among them) as a word-level tokenizer: lowercased, split on
    /// whitespace, unknown words to `<unk>`, inputs framed as `<cls> a <sep> [b <sep>]`.
    pub fn word_level(tokens: &[String]) -> Result<Self> {
        releasing_freed_memory(|| Self::word_level_spec(tokens))
    }

    /// [`Tokenizer::word_level`]'s work.
    fn word_level_spec(tokens: &[String]) -> Result<Self> {
        let id = |t: &str| {
            tokens.iter().position(|x| x == t).ok_or_else(|| InputError::range("vocab", format!("has no {t}")))
        };
        let (cls, sep) = (id("<cls>")?, id("<sep>")?);
        let added: Vec<Value> = ["<unk>", "<pad>", "<mask>", "<cls>", "<sep>"]
            .iter()
            .map(|t| Ok(special(id(t)?, t)))
            .collect::<Result<_, InputError>>()?;
        let vocab: BTreeMap<&str, usize> = tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
        let spec = json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": added,
            "normalizer": { "type": "Lowercase" },
            "pre_tokenizer": { "type": "WhitespaceSplit" },
            "post_processor": template(("<cls>", cls), ("<sep>", sep)),
            "decoder": null,
            "model": { "type": "WordLevel", "vocab": vocab, "unk_token": "<unk>" },
        });
        Self::from_json(&spec.to_string())
    }

    /// The tokenizer as a `tokenizer.json`.
    pub fn to_json(&self) -> Result<String> {
        let cannot = |e: tokenizers::Error| Error::Internal(format!("cannot write the tokenizer: {e}"));
        releasing_freed_memory(|| {
            let mut whole = self.bare.clone();
            whole.with_post_processor(self.post_processor.clone());
            whole.with_truncation(self.truncation.clone()).map_err(cannot)?;
            whole.with_padding(self.padding.clone());
            whole.to_string(true).map_err(cannot)
        })
    }

    /// Number of token ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.bare.get_vocab_size(true)
    }

    /// The id of `token`, if the vocabulary has it.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.bare.token_to_id(token)
    }

    /// The token of `id`, if there is one.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.bare.id_to_token(id)
    }

    /// The special tokens (BERT's `[PAD]`, `[MASK]`, `[CLS]`, `[SEP]`, `[UNK]` or the textbook's
    /// `<pad>`, …); an error when there is no padding token.
    pub fn special_ids(&self) -> Result<SpecialIds> {
        let first = |names: [&str; 2]| names.iter().find_map(|t| self.token_to_id(t));
        let pad =
            first(["[PAD]", "<pad>"]).ok_or_else(|| bad_file("the tokenizer has no padding token ([PAD] or <pad>)"))?;
        Ok(SpecialIds {
            pad,
            mask: first(["[MASK]", "<mask>"]),
            cls: first(["[CLS]", "<cls>"]),
            sep: first(["[SEP]", "<sep>"]),
            unk: first(["[UNK]", "<unk>"]),
        })
    }

    /// Each of `words` alone as sub-word ids, without special tokens (a corpus's words split
    /// once each for pretraining): the ids end to end, and where each word's start (one entry
    /// more than words).
    pub fn split_words(&self, words: &[String]) -> Result<(Vec<u32>, Vec<usize>)> {
        let inputs: Vec<EncodeInput> = words.iter().map(|w| EncodeInput::Single(w.as_str().into())).collect();
        let encodings = self.bare.encode_batch(inputs, false).map_err(|e| InputError::range("words", e.to_string()))?;
        let mut ids = Vec::new();
        let mut starts = Vec::with_capacity(words.len() + 1);
        for e in &encodings {
            starts.push(ids.len());
            ids.extend_from_slice(e.get_ids());
        }
        starts.push(ids.len());
        Ok((ids, starts))
    }

    /// Tokenizes each input (a text, or a pair), special tokens added. With `max_len`, inputs
    /// longer than it are cut to it (the longer sentence of a pair first, as Hugging Face does)
    /// and `overflow` says by how many tokens. A text over [`MAX_TEXT_BYTES`] is a `RangeError`;
    /// one over [`PIECE_BYTES`] is tokenized a piece at a time (cut at white space), so that the
    /// memory taken is bounded by a piece and by what is kept, whatever the text's length.
    pub fn encode_batch(&self, inputs: Vec<(Text, Option<Text>)>, max_len: Option<usize>) -> Result<Vec<Encoded>> {
        for (i, (a, b)) in inputs.iter().enumerate() {
            for text in std::iter::once(a).chain(b) {
                if let Text::Raw(s) = text {
                    if s.len() > MAX_TEXT_BYTES {
                        return Err(InputError::range(
                            format!("inputs[{i}]"),
                            format!("{} bytes of text, over the {MAX_TEXT_BYTES} a text may have", s.len()),
                        )
                        .into());
                    }
                }
            }
        }
        let pieces = Pieces { bare: &self.bare, keep: max_len };
        let added = |pair: bool| self.post_processor.as_ref().map_or(0, |p| p.added_tokens(pair));
        inputs
            .par_iter()
            .map(|input| {
                let (a, b) = input;
                let (mut first, count_a) = pieces.encode(a)?;
                first.set_sequence_id(0);
                let mut second = b.as_ref().map(|b| pieces.encode(b)).transpose()?;
                if let Some((e, _)) = &mut second {
                    e.set_sequence_id(1);
                }
                // Neither text of a pair keeps more than `max_len` tokens once cut longest-first,
                // so cut each there first: the library's pair truncation makes an overflowing
                // encoding for every window of one text with every window of the other, which
                // took gigabytes for two texts of some thousands of tokens.
                if let Some(max) = max_len {
                    for e in std::iter::once(&mut first).chain(second.as_mut().map(|(e, _)| e)) {
                        e.truncate(max, 0, TruncationDirection::Right);
                        e.take_overflowing();
                    }
                }
                let count_b = second.as_ref().map_or(0, |(_, n)| *n);
                let second = second.map(|(e, _)| e);
                // cut longest-first to what leaves room for the special tokens, as the
                // library's own truncation does before post-processing
                let (first, second) = match max_len {
                    Some(max) => {
                        let n_added = added(second.is_some());
                        let max_length = max.checked_sub(n_added).ok_or_else(|| {
                            InputError::range(
                                "maxLength",
                                format!("{max} leaves no room for the {n_added} special tokens"),
                            )
                        })?;
                        let params = TruncationParams {
                            direction: TruncationDirection::Right,
                            max_length,
                            strategy: TruncationStrategy::LongestFirst,
                            stride: 0,
                        };
                        truncate_encodings(first, second, &params)
                            .map_err(|e| InputError::range("text", e.to_string()))?
                    }
                    None => (first, second),
                };
                let e = self.with_special_tokens(first, second)?;
                let kept = e.get_special_tokens_mask().iter().filter(|&&m| m == 0).count();
                let sequence_ids = e.get_sequence_ids(); // made anew at each call
                let ends = |seq: usize| {
                    (0..e.len()).filter(|&i| sequence_ids[i] == Some(seq)).map(|i| e.get_offsets()[i].1).max()
                };
                let spans = [Utf16Spans::new(a, ends(0)), Utf16Spans::new(b.as_ref().unwrap_or(a), ends(1))];
                let offsets = (0..e.len())
                    .map(|i| match sequence_ids[i] {
                        Some(seq) => spans[seq.min(1)].span(e.get_word_ids()[i], e.get_offsets()[i]),
                        None => (0, 0),
                    })
                    .collect();
                Ok(Encoded {
                    ids: e.get_ids().to_vec(),
                    type_ids: e.get_type_ids().to_vec(),
                    tokens: e.get_tokens().to_vec(),
                    offsets,
                    overflow: (count_a + count_b).saturating_sub(kept),
                })
            })
            .collect()
    }

    /// A text's (or pair's) tokens with the special tokens and sequence ids the
    /// post-processor adds (the texts merged as they are, if there is none).
    fn with_special_tokens(
        &self,
        first: tokenizers::Encoding,
        second: Option<tokenizers::Encoding>,
    ) -> Result<tokenizers::Encoding> {
        let merged = match &self.post_processor {
            Some(p) => p.process(first, second, true),
            None => <dyn PostProcessor>::default_process(std::iter::once(first).chain(second).collect(), true)
                .map(|mut encodings| encodings.remove(0)),
        };
        merged.map_err(|e| InputError::range("text", e.to_string()).into())
    }
}

/// The most bytes (UTF-8) a text to tokenize may have: 64 MiB.
pub const MAX_TEXT_BYTES: usize = 64 << 20;

/// Bytes of text tokenized at once (a tokenization takes about 150 bytes of memory a byte of
/// text): a longer text goes a piece at a time.
pub const PIECE_BYTES: usize = 1 << 16;

/// Texts tokenized without special tokens, a piece at a time when long: the tokens kept up to
/// just past `keep`, the rest only counted.
struct Pieces<'a> {
    bare: &'a tokenizers::Tokenizer,
    keep: Option<usize>,
}

impl Pieces<'_> {
    /// The text's tokens without special tokens (for a long text cut, those up to just past
    /// `keep`) and how many it has in all.
    fn encode(&self, text: &Text) -> Result<(tokenizers::Encoding, usize)> {
        let tokenize = |input: InputSequence| {
            self.bare.encode(input, false).map_err(|e| Error::from(InputError::range("text", e.to_string())))
        };
        let Text::Raw(s) = text else {
            let e = tokenize(sequence(text))?;
            let n = e.len();
            return Ok((e, n));
        };
        if s.len() <= PIECE_BYTES {
            let e = tokenize(InputSequence::from(s.as_str()))?;
            let n = e.len();
            return Ok((e, n));
        }
        let mut kept = tokenizers::Encoding::default();
        let (mut count, mut words, mut start) = (0, 0u32, 0);
        while start < s.len() {
            let end = piece_end(s, start);
            let mut piece = tokenize(InputSequence::from(&s[start..end]))?;
            count += piece.len();
            if self.keep.is_none_or(|keep| kept.len() <= keep) {
                for o in piece.get_offsets_mut() {
                    *o = (o.0 + start, o.1 + start);
                }
                let next = piece.get_word_ids().iter().flatten().max().map_or(0, |w| w + 1);
                for w in piece.get_word_ids_mut().iter_mut().flatten() {
                    *w += words;
                }
                words += next;
                kept.merge_with(piece, false);
            }
            start = end;
        }
        kept.set_sequence_id(0);
        Ok((kept, count))
    }
}

/// Where the piece of `s` that starts at `start` ends: at most [`PIECE_BYTES`] on, before the
/// last white space of its second half (so no word is cut), else at a character's boundary.
fn piece_end(s: &str, start: usize) -> usize {
    let mut end = (start + PIECE_BYTES).min(s.len());
    if end == s.len() {
        return end;
    }
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let half = start + PIECE_BYTES / 2;
    match s[start..end].rfind(char::is_whitespace) {
        Some(at) if start + at > half => start + at,
        _ => end,
    }
}

/// Tokens' byte spans in a text (within a word for words already split) as spans of UTF-16
/// code units in the text (the words joined by single spaces), from a table made once a text
/// (up to the last byte a token ends at, so bounded by what is kept).
enum Utf16Spans<'a> {
    /// A raw string: the UTF-16 units before each byte position.
    Raw(Vec<usize>),
    /// Words: each word, and the UTF-16 units before it.
    Words(&'a [String], Vec<usize>),
}

impl<'a> Utf16Spans<'a> {
    fn new(text: &'a Text, end: Option<usize>) -> Self {
        match text {
            Text::Raw(s) => {
                let end = end.unwrap_or(0).min(s.len());
                let mut units = vec![0; end + 1];
                let mut count = 0;
                for (at, c) in s.char_indices().take_while(|&(at, _)| at < end) {
                    units[at] = count;
                    count += c.len_utf16();
                    for u in &mut units[at + 1..(at + c.len_utf8()).min(end) + 1] {
                        *u = count;
                    }
                }
                Utf16Spans::Raw(units)
            }
            Text::Words(words) => {
                let starts = words
                    .iter()
                    .scan(0, |before, w| {
                        let start = *before;
                        *before += w.encode_utf16().count() + 1;
                        Some(start)
                    })
                    .collect();
                Utf16Spans::Words(words, starts)
            }
        }
    }

    fn span(&self, word: Option<u32>, (start, end): (usize, usize)) -> (usize, usize) {
        let units = |s: &str, byte: usize| s.get(..byte.min(s.len())).map_or(0, |p| p.encode_utf16().count());
        match self {
            Utf16Spans::Raw(table) => {
                let at = |byte: usize| table.get(byte).copied().unwrap_or(0);
                (at(start), at(end))
            }
            Utf16Spans::Words(words, starts) => {
                let w = word.map_or(0, |w| w as usize).min(words.len().saturating_sub(1));
                let before = starts.get(w).copied().unwrap_or(0);
                let word = words.get(w).map_or("", String::as_str);
                (before + units(word, start), before + units(word, end))
            }
        }
    }
}

fn sequence(text: &Text) -> InputSequence<'_> {
    match text {
        Text::Raw(s) => InputSequence::from(s.as_str()),
        Text::Words(words) => InputSequence::PreTokenizedOwned(std::borrow::Cow::Borrowed(words.as_slice())),
    }
}
