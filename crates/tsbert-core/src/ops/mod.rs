//! Fused operations with their own backward pass, where composing candle ops costs too much.

pub mod cross_entropy;
pub mod normalize;
pub mod row_affine;
mod rows;
pub mod softmax;

use candle_core::{DType, Tensor};

/// Whether `x` takes the fused CPU kernels of this module (f32 or f64 on the CPU); other
/// devices and dtypes take the composed candle ops.
pub fn runs_fused(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}
