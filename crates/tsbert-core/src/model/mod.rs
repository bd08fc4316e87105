//! The BERT model: [`bert`] holds the architecture top to bottom (embeddings, attention,
//! encoder blocks, the MLM and NSP heads); [`layers`] the dense layer, layer norm and dropout
//! they are built from; [`packing`] the valid tokens of a padded batch, which training passes
//! run alone; [`inference`] the encoder's f32 CPU pass outside candle's graph that
//! eval mode runs; [`handle`] the model placed on its devices, with the passes users run.

pub mod bert;
pub mod handle;
pub mod inference;
pub mod layers;
pub mod packing;

pub use bert::BertModel;
pub use handle::{EvalMetrics, EvalSums, ForwardOutputs, ModelHandle, ModelOptions, StepLosses};
pub use layers::Mode;
