//! The BERT model: [`bert`] holds the architecture top to bottom (embeddings, attention,
//! encoder blocks, the MLM and NSP heads); [`layers`] the dense layer, layer norm and dropout
//! they are built from.

pub mod bert;
pub mod layers;

pub use bert::BertModel;
pub use layers::Mode;
