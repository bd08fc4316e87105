//! The BERT model: [`bert`] holds the architecture top to bottom (embeddings, attention,
//! encoder blocks, the MLM and NSP heads); [`layers`] the dense layer, layer norm and dropout
//! they are built from; [`inference`] the encoder's f32 CPU pass outside candle's graph that
//! eval mode runs.

pub mod bert;
pub mod inference;
pub mod layers;

pub use bert::BertModel;
pub use layers::Mode;
