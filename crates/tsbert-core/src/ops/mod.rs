//! Fused operations with their own backward pass, where composing candle ops costs too much.
//! Each module holds the fused CPU kernel (`fused_*`), the composed candle version it replaces
//! (`composed_*`: the reference the tests compare against, and what other devices run) and the
//! function the model calls, which picks one by the tensor's device and dtype. Nothing here
//! depends on the model.

pub(crate) mod activation;
pub mod adam_update;
pub mod attention;
pub mod cpu_kernel;
pub mod cross_entropy;
pub mod decoder_loss;
pub mod dots;
pub mod gelu;
pub mod layer_norm;
pub mod linear;
pub(crate) mod matmul;
#[cfg(target_arch = "x86_64")]
pub(crate) mod packed_avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod panel_matrix;
#[cfg(target_arch = "x86_64")]
pub(crate) mod panels;
pub mod quantized;
pub mod row_affine;
pub(crate) mod rows;
pub mod softmax;

use candle_core::{DType, Tensor};

/// Whether `x` takes the fused CPU kernels of this module (f32 or f64 on the CPU); other
/// devices and dtypes take the composed candle ops.
pub fn runs_fused(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}
