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
