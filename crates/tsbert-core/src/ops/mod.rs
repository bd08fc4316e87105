//! Fused operations with their own backward pass, where composing candle ops costs too much.

pub mod cross_entropy;
pub mod normalize;
mod rows;
pub mod softmax;
