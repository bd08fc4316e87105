//! The BERT model: embeddings, post-LN encoder blocks, and the MLM and NSP heads.

pub mod add_norm;
pub mod attention;
pub mod bert;
pub mod embeddings;
pub mod encoder_block;
pub mod ffn;
pub mod layer_norm;
pub mod linear;
pub mod mlm_head;
pub mod mode;
pub mod nsp_head;
pub mod softmax;

pub use bert::BertModel;
pub use mode::Mode;
