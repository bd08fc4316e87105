//! NCCL, for summing gradients over several GPUs: `libnccl.so.2` is opened the first time
//! communicators are set up, not linked into the addon, so that one GPU needs only the driver
//! and the CUDA runtime libraries. Binds the six functions tsbert calls, through NCCL's C API
//! (the `nccl.h` of NCCL 2.x); the all-reduce runs on candle's stream of each GPU, ordered with
//! the kernels before and after it.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::{Arc, OnceLock};

use candle_core::cuda_backend::cudarc::driver::{CudaStream, DevicePtr, DevicePtrMut};
use candle_core::{CpuStorage, CudaStorage, CustomOp1, Device, Layout, Shape, Tensor};

use crate::error::{Error, InputError, Result};
use crate::shared_library::SharedLibrary;

/// `ncclComm_t`: an opaque communicator.
type RawComm = *mut c_void;
/// `ncclResult_t`; `ncclSuccess` is 0.
type Status = c_int;
/// `ncclFloat32` of `ncclDataType_t`.
const FLOAT32: c_int = 7;
/// `ncclSum` of `ncclRedOp_t`.
const SUM: c_int = 0;

/// The library's name, and what to do when it is missing.
const SONAME: &str = "libnccl.so.2";
const HOW_TO_GET: &str = "training over several GPUs sums the gradients with NCCL: install it \
     (pip install nvidia-nccl-cu13, then add its nvidia/nccl/lib folder to LD_LIBRARY_PATH; or \
     your distribution's libnccl2 package), or train on one GPU";

/// The NCCL functions tsbert calls, valid while `_library` is open.
struct Api {
    _library: SharedLibrary,
    comm_init_all: unsafe extern "C" fn(*mut RawComm, c_int, *const c_int) -> Status,
    comm_destroy: unsafe extern "C" fn(RawComm) -> Status,
    all_reduce: unsafe extern "C" fn(*const c_void, *mut c_void, usize, c_int, c_int, RawComm, *mut c_void) -> Status,
    group_start: unsafe extern "C" fn() -> Status,
    group_end: unsafe extern "C" fn() -> Status,
    error_string: unsafe extern "C" fn(Status) -> *const c_char,
}

impl Api {
    /// The process's NCCL, opened on first use; the error says what is missing.
    fn get() -> Result<&'static Api> {
        static API: OnceLock<std::result::Result<Api, String>> = OnceLock::new();
        API.get_or_init(Self::open).as_ref().map_err(|e| InputError::range("device", e.clone()).into())
    }

    fn open() -> std::result::Result<Api, String> {
        let library = SharedLibrary::open(SONAME, HOW_TO_GET)?;
        // SAFETY: each signature is the one nccl.h declares; the pointers live in `Api`
        // beside the library, which is never closed (the `OnceLock` is static).
        unsafe {
            Ok(Api {
                comm_init_all: library.function("ncclCommInitAll")?,
                comm_destroy: library.function("ncclCommDestroy")?,
                all_reduce: library.function("ncclAllReduce")?,
                group_start: library.function("ncclGroupStart")?,
                group_end: library.function("ncclGroupEnd")?,
                error_string: library.function("ncclGetErrorString")?,
                _library: library,
            })
        }
    }

    /// `status` as this crate's error, naming the call that failed.
    fn check(&self, what: &str, status: Status) -> std::result::Result<(), String> {
        if status == 0 {
            return Ok(());
        }
        // SAFETY: NCCL returns a static C string for every status.
        let reason = unsafe { CStr::from_ptr((self.error_string)(status)) };
        Err(format!("NCCL {what} failed: {} (ncclResult_t {status})", reason.to_string_lossy()))
    }
}

/// One NCCL communicator a GPU, in the order of the devices they were made for.
pub struct Communicators {
    api: &'static Api,
    comms: Vec<RawComm>,
    ordinals: Vec<usize>,
}

// SAFETY: the communicators are used only through `&self` of the trainer owning them, which
// callers serialise (`&mut self` in `train_step`, a mutex in the binding); NCCL allows a
// communicator to be used from any thread, one call at a time.
unsafe impl Send for Communicators {}
// SAFETY: as above: no two threads call into the communicators at once.
unsafe impl Sync for Communicators {}

impl std::fmt::Debug for Communicators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Communicators").field("gpus", &self.ordinals).finish()
    }
}

impl Communicators {
    /// Communicators for `devices` when they are two or more distinct CUDA GPUs, else `None`
    /// (NCCL takes each GPU once). Opens NCCL then: a `RangeError`-kind error on `device`
    /// names the missing library and how to get it.
    pub fn for_devices(devices: &[Device]) -> Result<Option<Self>> {
        let ordinals: Option<Vec<usize>> = devices
            .iter()
            .map(|d| match d {
                Device::Cuda(cuda) => Some(cuda.cuda_stream().context().ordinal()),
                _ => None,
            })
            .collect();
        let Some(ordinals) = ordinals else { return Ok(None) };
        let mut distinct = ordinals.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if ordinals.len() < 2 || distinct.len() != ordinals.len() {
            return Ok(None);
        }
        let api = Api::get()?;
        let list: Vec<c_int> = ordinals.iter().map(|&o| o as c_int).collect();
        let mut comms = vec![std::ptr::null_mut(); list.len()];
        // SAFETY: `comms` has room for one communicator per entry of `list`.
        let status = unsafe { (api.comm_init_all)(comms.as_mut_ptr(), list.len() as c_int, list.as_ptr()) };
        api.check("communicator setup", status).map_err(Error::Internal)?;
        Ok(Some(Self { api, comms, ordinals }))
    }

    /// The element-wise sum of `grads` (one f32 tensor a GPU, in communicator order), once a
    /// GPU. One NCCL group call, so a single thread drives every GPU.
    pub fn all_reduce(&self, grads: &[Tensor]) -> Result<Vec<Tensor>> {
        if grads.len() != self.comms.len() {
            return Err(Error::Internal(format!(
                "all-reduce of {} tensors over {} GPUs",
                grads.len(),
                self.comms.len()
            )));
        }
        // The inputs live until after the group ends: NCCL launches its kernels there, and a
        // freed CUDA buffer is released in stream order.
        let inputs = grads.iter().map(Tensor::contiguous).collect::<candle_core::Result<Vec<_>>>()?;
        // SAFETY: no arguments; paired with the group end below.
        self.api.check("group start", unsafe { (self.api.group_start)() }).map_err(Error::Internal)?;
        let sums: candle_core::Result<Vec<Tensor>> = inputs
            .iter()
            .zip(&self.comms)
            .map(|(g, &comm)| g.apply_op1_no_bwd(&AllReduce { api: self.api, comm }))
            .collect();
        // SAFETY: closes the group opened above, also when an enqueue failed.
        let ended = self.api.check("group end", unsafe { (self.api.group_end)() });
        let sums = sums?;
        ended.map_err(Error::Internal)?;
        drop(inputs);
        Ok(sums)
    }
}

impl Drop for Communicators {
    fn drop(&mut self) {
        for &comm in &self.comms {
            // SAFETY: made by `ncclCommInitAll`, destroyed once; a failure leaves nothing to do.
            let _ = unsafe { (self.api.comm_destroy)(comm) };
        }
    }
}

/// Enqueues one GPU's part of a sum all-reduce into a new buffer, on candle's stream there.
struct AllReduce {
    api: &'static Api,
    comm: RawComm,
}

impl AllReduce {
    fn enqueue(
        &self,
        stream: &Arc<CudaStream>,
        input: &impl DevicePtr<f32>,
        output: &mut impl DevicePtrMut<f32>,
    ) -> candle_core::Result<()> {
        let count = input.len();
        let (src, _read) = input.device_ptr(stream);
        let (dst, _written) = output.device_ptr_mut(stream);
        // SAFETY: `src` and `dst` hold `count` f32s on this communicator's GPU; the guards
        // order the stream with earlier and later uses of both buffers.
        let status = unsafe {
            (self.api.all_reduce)(
                src as *const c_void,
                dst as *mut c_void,
                count,
                FLOAT32,
                SUM,
                self.comm,
                stream.cu_stream() as *mut c_void,
            )
        };
        self.api.check("all-reduce", status).map_err(candle_core::Error::Msg)
    }
}

impl CustomOp1 for AllReduce {
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
        self.enqueue(&storage.device.cuda_stream(), &input, &mut output)?;
        Ok((CudaStorage::wrap_cuda_slice(output, storage.device.clone()), layout.shape().clone()))
    }
}
