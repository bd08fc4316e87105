//! The devices a model can run on: the CPU, or a CUDA GPU where this build has CUDA.

use candle_core::Device;

use crate::error::{InputError, Result};

/// CUDA GPU `ordinal`; a `RangeError`-kind error naming `device` when this build has no CUDA
/// support, and the driver's error when the GPU cannot be opened.
pub fn cuda_device(ordinal: usize) -> Result<Device> {
    if !candle_core::utils::cuda_is_available() {
        let message = format!("'cuda:{ordinal}' asked for, but this build of tsbert has no CUDA support");
        return Err(InputError::range("device", message).into());
    }
    Ok(Device::new_cuda(ordinal)?)
}

/// Number of CUDA GPUs this build can use: 0 without the `cuda` feature; an error saying why
/// when the driver fails to initialise.
pub fn cuda_device_count() -> Result<usize> {
    #[cfg(feature = "cuda")]
    {
        use candle_core::cuda_backend::cudarc::driver::CudaContext;
        let count =
            CudaContext::device_count().map_err(|e| crate::error::Error::Internal(format!("CUDA driver: {e}")))?;
        Ok(usize::try_from(count).unwrap_or(0))
    }
    #[cfg(not(feature = "cuda"))]
    Ok(0)
}
