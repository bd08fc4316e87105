//! Choosing the candle device from a user-facing name.

use candle_core::Device;

use crate::error::{InputError, Result};

/// Parses `"cpu"`, `"cuda"` or `"cuda:N"` into a candle [`Device`]. CUDA names fail with a
/// clear error when the crate was built without the `cuda` feature or no GPU is present.
pub fn parse_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        _ => {
            let ordinal = match name.strip_prefix("cuda") {
                Some("") => 0,
                Some(rest) => rest
                    .strip_prefix(':')
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or_else(|| InputError::range("device", format!("unknown device '{name}'")))?,
                None => {
                    return Err(InputError::range(
                        "device",
                        format!("unknown device '{name}' (expected 'cpu', 'cuda' or 'cuda:N')"),
                    )
                    .into())
                }
            };
            if !candle_core::utils::cuda_is_available() {
                return Err(InputError::range(
                    "device",
                    format!("'{name}' asked for, but this build of tsbert has no CUDA support"),
                )
                .into());
            }
            Ok(Device::new_cuda(ordinal)?)
        }
    }
}

/// Number of CUDA GPUs this build can use: 0 without the `cuda` feature, or when the driver
/// reports none (or fails to initialise: then the error says why).
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
