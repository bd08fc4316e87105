//! The all-reduce of data-parallel training: every replica's gradient of a parameter summed,
//! the sum handed back to every replica. With the `nccl` feature and every replica on its own
//! CUDA GPU it is NCCL's all-reduce (through cudarc, on candle's stream of each GPU);
//! otherwise the gradients are added on the first replica's device.

use candle_core::{Device, Tensor};

use crate::error::Result;

/// How the replicas' gradients are summed; chosen once from the replicas' devices.
#[derive(Debug)]
pub enum GradientSum {
    /// Copy every gradient to this device, add them there.
    OnDevice(Device),
    /// NCCL all-reduce, one communicator a GPU.
    #[cfg(feature = "nccl")]
    Nccl(nccl::Communicators),
}

impl GradientSum {
    /// NCCL when built with it and `devices` are two or more distinct CUDA GPUs, else the sum
    /// on `devices[0]`. Fails if NCCL cannot set up its communicators.
    pub fn for_devices(devices: &[Device]) -> Result<Self> {
        #[cfg(feature = "nccl")]
        if let Some(comms) = nccl::Communicators::for_devices(devices)? {
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
            #[cfg(feature = "nccl")]
            Self::Nccl(comms) => comms.all_reduce(grads),
        }
    }
}

#[cfg(feature = "nccl")]
pub mod nccl {
    //! NCCL communicators over candle's CUDA devices and an all-reduce of f32 tensors.

    use candle_core::cuda_backend::cudarc::nccl::{result as nccl, Comm, ReduceOp};
    use candle_core::{CpuStorage, CudaStorage, CustomOp1, Device, Layout, Shape, Tensor};

    use crate::error::{Error, Result};

    fn nccl_error(what: &str, e: impl std::fmt::Debug) -> Error {
        Error::Internal(format!("NCCL {what} failed: {e:?}"))
    }

    /// One NCCL communicator a GPU, each on candle's stream for that GPU (so the all-reduce is
    /// ordered with the kernels before and after it).
    pub struct Communicators(Vec<Comm>);

    // SAFETY: the communicators are used only through `&self` of the `DataParallel` owning
    // them, which callers serialise (`&mut self` in `train_step`, a mutex in the binding);
    // NCCL allows a communicator to be used from any thread, one call at a time.
    unsafe impl Send for Communicators {}
    // SAFETY: as above: no two threads call into the communicators at once.
    unsafe impl Sync for Communicators {}

    impl std::fmt::Debug for Communicators {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let gpus: Vec<usize> = self.0.iter().map(Comm::ordinal).collect();
            f.debug_struct("Communicators").field("gpus", &gpus).finish()
        }
    }

    impl Communicators {
        /// Communicators for `devices` when they are two or more distinct CUDA GPUs, else
        /// `None` (NCCL takes each GPU once).
        pub fn for_devices(devices: &[Device]) -> Result<Option<Self>> {
            let streams: Option<Vec<_>> = devices
                .iter()
                .map(|d| match d {
                    Device::Cuda(cuda) => Some(cuda.cuda_stream()),
                    _ => None,
                })
                .collect();
            let Some(streams) = streams else { return Ok(None) };
            let mut ordinals: Vec<usize> = streams.iter().map(|s| s.context().ordinal()).collect();
            ordinals.sort_unstable();
            ordinals.dedup();
            if streams.len() < 2 || ordinals.len() != streams.len() {
                return Ok(None);
            }
            Comm::from_devices(streams).map(|c| Some(Self(c))).map_err(|e| nccl_error("communicator setup", e))
        }

        /// The element-wise sum of `grads` (one f32 tensor a GPU, in communicator order),
        /// once a GPU. One NCCL group call, so a single thread can drive every GPU.
        pub fn all_reduce(&self, grads: &[Tensor]) -> Result<Vec<Tensor>> {
            if grads.len() != self.0.len() {
                return Err(Error::Internal(format!(
                    "all-reduce of {} tensors over {} GPUs",
                    grads.len(),
                    self.0.len()
                )));
            }
            // The inputs live until after the group ends: NCCL launches its kernels there,
            // and a freed CUDA buffer is released in stream order.
            let inputs = grads.iter().map(Tensor::contiguous).collect::<candle_core::Result<Vec<_>>>()?;
            nccl::group_start().map_err(|e| nccl_error("group start", e))?;
            let sums: candle_core::Result<Vec<Tensor>> =
                inputs.iter().zip(&self.0).map(|(g, comm)| g.apply_op1_no_bwd(&AllReduce(comm))).collect();
            let ended = nccl::group_end().map_err(|e| nccl_error("group end", e));
            let sums = sums?;
            ended?;
            drop(inputs);
            Ok(sums)
        }
    }

    /// Enqueues one rank's part of a sum all-reduce into a new buffer.
    struct AllReduce<'a>(&'a Comm);

    impl CustomOp1 for AllReduce<'_> {
        fn name(&self) -> &'static str {
            "nccl-all-reduce"
        }

        fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
            candle_core::bail!("NCCL all-reduce takes CUDA tensors")
        }

        fn cuda_fwd(&self, storage: &CudaStorage, layout: &Layout) -> candle_core::Result<(CudaStorage, Shape)> {
            let Some((start, end)) = layout.contiguous_offsets() else {
                candle_core::bail!("NCCL all-reduce takes contiguous tensors")
            };
            let input = storage.as_cuda_slice::<f32>()?.slice(start..end);
            let mut output = storage.device.alloc_zeros::<f32>(end - start)?;
            self.0
                .all_reduce(&input, &mut output, &ReduceOp::Sum)
                .map_err(|e| candle_core::Error::Msg(format!("NCCL all-reduce failed: {e:?}")))?;
            Ok((CudaStorage::wrap_cuda_slice(output, storage.device.clone()), layout.shape().clone()))
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
