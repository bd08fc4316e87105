//! [`OnDemandTokenizer`]: a tokenizer checked when it is made, then held as its source (the
//! text of a `tokenizer.json` or of a `vocab.txt`) until something tokenizes with it. A model
//! loaded from a folder and given token ids never tokenizes, and BERT's 30,522-token
//! vocabulary, made, holds about 5 MiB of maps (its text: a tenth of that).

use std::sync::{Arc, Mutex, PoisonError};

use crate::allocator::releasing_freed_memory;
use crate::error::Result;
use crate::tokenizer::{SpecialIds, Tokenizer};

/// What a tokenizer is made from.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenizerSource {
    /// The text of a `tokenizer.json` ([`Tokenizer::from_json`]).
    Json(String),
    /// The text of a `vocab.txt`, and whether BERT's normalisation lowercases
    /// ([`Tokenizer::bert_wordpiece`]).
    BertWordpiece {
        /// One token a line, ids by line.
        vocab_txt: String,
        /// `do_lower_case`.
        lowercase: bool,
    },
}

impl TokenizerSource {
    /// The tokenizer the source describes; a [`crate::error::Error::Checkpoint`] when it
    /// describes none.
    pub fn build(&self) -> Result<Tokenizer> {
        match self {
            Self::Json(json) => Tokenizer::from_json(json),
            Self::BertWordpiece { vocab_txt, lowercase } => Tokenizer::bert_wordpiece(vocab_txt, *lowercase),
        }
    }
}

/// A tokenizer made at its first use from a source checked when this was made (see the
/// module). Its vocabulary's size and special tokens are known without making it.
#[derive(Debug)]
pub struct OnDemandTokenizer {
    source: TokenizerSource,
    vocab_size: usize,
    /// `None` when the vocabulary has no padding token (the error is [`Tokenizer::special_ids`]'s).
    special_ids: Option<SpecialIds>,
    made: Mutex<Option<Arc<Tokenizer>>>,
}

impl OnDemandTokenizer {
    /// `source` checked: the tokenizer is made once (its error, if any, returned now), its
    /// vocabulary's size and special tokens noted, and it is dropped, its memory given back.
    pub fn new(source: TokenizerSource) -> Result<Self> {
        let (vocab_size, special_ids) = releasing_freed_memory(|| {
            let tokenizer = source.build()?;
            Ok::<_, crate::error::Error>((tokenizer.vocab_size(), tokenizer.special_ids().ok()))
        })?;
        Ok(Self { source, vocab_size, special_ids, made: Mutex::new(None) })
    }

    /// Number of token ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// [`Tokenizer::special_ids`], without making the tokenizer when it has a padding token.
    pub fn special_ids(&self) -> Result<SpecialIds> {
        match self.special_ids {
            Some(ids) => Ok(ids),
            None => self.tokenizer()?.special_ids(),
        }
    }

    /// The tokenizer, made now on its first use and kept from then on.
    pub fn tokenizer(&self) -> Result<Arc<Tokenizer>> {
        let mut made = self.made.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tokenizer) = made.as_ref() {
            return Ok(Arc::clone(tokenizer));
        }
        let tokenizer = Arc::new(self.source.build()?);
        *made = Some(Arc::clone(&tokenizer));
        Ok(tokenizer)
    }

    /// Whether the tokenizer has been made (something tokenized with it).
    pub fn is_made(&self) -> bool {
        self.made.lock().unwrap_or_else(PoisonError::into_inner).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    const VOCAB: &str = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncrane\n##s\nfly\n";

    fn wordpiece(vocab_txt: &str) -> TokenizerSource {
        TokenizerSource::BertWordpiece { vocab_txt: vocab_txt.to_string(), lowercase: true }
    }

    #[test]
    fn knows_its_vocabulary_without_being_made_and_tokenizes_as_the_tokenizer_made_at_once() {
        let lazy = OnDemandTokenizer::new(wordpiece(VOCAB)).unwrap();
        let eager = Tokenizer::bert_wordpiece(VOCAB, true).unwrap();
        assert_eq!(lazy.vocab_size(), eager.vocab_size());
        assert_eq!(lazy.special_ids().unwrap(), eager.special_ids().unwrap());
        assert!(!lazy.is_made());
        let words = ["Cranes".to_string(), "fly".to_string()];
        assert_eq!(lazy.tokenizer().unwrap().split_words(&words).unwrap(), eager.split_words(&words).unwrap());
        assert!(lazy.is_made());
        assert!(Arc::ptr_eq(&lazy.tokenizer().unwrap(), &lazy.tokenizer().unwrap()), "made once, then kept");
    }

    #[test]
    fn a_bad_source_is_refused_when_made_not_at_its_first_use() {
        let refused = OnDemandTokenizer::new(TokenizerSource::Json("{\"model\": 3}".into())).unwrap_err();
        assert!(matches!(refused, Error::Checkpoint(_)), "{refused:?}");
        let refused = OnDemandTokenizer::new(wordpiece("[PAD]\n[CLS]\nthe\n")).unwrap_err();
        assert!(refused.to_string().contains("[SEP]"), "{refused}");
    }

    #[test]
    fn a_vocabulary_without_padding_says_so_when_asked_for_its_special_tokens() {
        let lazy = OnDemandTokenizer::new(wordpiece("[UNK]\n[CLS]\n[SEP]\nthe\n")).unwrap();
        let eager = Tokenizer::bert_wordpiece("[UNK]\n[CLS]\n[SEP]\nthe\n", true).unwrap();
        assert_eq!(lazy.special_ids().unwrap_err().to_string(), eager.special_ids().unwrap_err().to_string());
    }
}
