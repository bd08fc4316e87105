//! The all-reduce of data-parallel training: every replica's gradient of a parameter summed,
//! the sum handed back to every replica. With every replica on its own CUDA GPU it is NCCL's
//! all-reduce ([`crate::nccl`], opened then); otherwise the gradients are added on the first
//! replica's device.

use candle_core::{Device, Tensor};

use crate::error::Result;

/// How the replicas' gradients are summed; chosen once from the replicas' devices.
#[derive(Debug)]
pub enum GradientSum {
    /// Copy every gradient to this device, add them there.
    OnDevice(Device),
    /// NCCL all-reduce, one communicator a GPU.
    #[cfg(feature = "cuda")]
    Nccl(crate::nccl::Communicators),
}

impl GradientSum {
    /// NCCL when `devices` are two or more distinct CUDA GPUs, else the sum on `devices[0]`.
    /// Fails if NCCL is missing (the error names it and how to get it) or cannot set up its
    /// communicators.
    pub fn for_devices(devices: &[Device]) -> Result<Self> {
        #[cfg(feature = "cuda")]
        if let Some(comms) = crate::nccl::Communicators::for_devices(devices)? {
            return Ok(Self::Nccl(comms));
        }
        Ok(Self::OnDevice(devices[0].clone()))
    }

    /// `grads[r]` is replica r's gradient of one parameter (on replica r's device); returns
    /// their sum once a replica, each on the device of its input.
    pub fn sum(&self, grads: &[Tensor]) -> Result<Vec<Tensor>> {
        match self {
            Self::OnDevice(home) => {
                let mut total = grads[0].to_device(home)?;
                for g in &grads[1..] {
                    total = (total + g.to_device(home)?)?;
                }
                grads.iter().map(|g| Ok(total.to_device(g.device())?)).collect()
            }
            #[cfg(feature = "cuda")]
            Self::Nccl(comms) => comms.all_reduce(grads),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_on_the_first_device_and_gives_every_replica_the_sum() {
        let grads: Vec<Tensor> =
            (1..=3).map(|k| Tensor::new(&[k as f32, 10.0 * k as f32], &Device::Cpu).unwrap()).collect();
        let sum = GradientSum::for_devices(&[Device::Cpu, Device::Cpu, Device::Cpu]).unwrap();
        assert!(matches!(sum, GradientSum::OnDevice(Device::Cpu)));
        let sums = sum.sum(&grads).unwrap();
        assert_eq!(sums.len(), 3);
        for s in sums {
            assert_eq!(s.to_vec1::<f32>().unwrap(), vec![6.0, 60.0]);
        }
    }
}
