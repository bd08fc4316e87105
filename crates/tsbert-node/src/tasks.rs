//! Core work handed from the JS thread to libuv's thread pool and from there to the compute
//! threads (rayon's pool, which candle, gemm and the fused kernels split their work over), with
//! panics caught and errors kept typed. Run there, every parallel part of a call starts from a
//! compute thread, which is cheap; started from a libuv thread, each would hand its work over
//! and wait (dozens of hand-overs a call: most of the time of a call on one sequence).
//!
//! Whatever lock a call needs is taken before its work enters the compute threads, never on
//! one: a compute thread waiting in a parallel section runs other queued work meanwhile, and if
//! that work waited for a lock that the section's own call holds, neither would ever go on.

use std::panic::{catch_unwind, AssertUnwindSafe};

use napi::bindgen_prelude::{AsyncTask, ToNapiValue, TypeName};
use napi::{sys, Env, Status, Task, ValueType};

use crate::errors::js_error;

/// Runs `job` on rayon's pool (the calling thread waits), a panic becoming an `Internal` error.
/// `job` must take no lock that a call holds while it runs parallel work (see the module's
/// doc).
pub fn run_on_compute_threads<T: Send>(job: impl FnOnce() -> tsbert_core::Result<T> + Send) -> tsbert_core::Result<T> {
    rayon::scope(|_| caught(job))
}

/// Runs `job` here, a panic becoming an `Internal` error.
fn caught<T>(job: impl FnOnce() -> tsbert_core::Result<T>) -> tsbert_core::Result<T> {
    catch_unwind(AssertUnwindSafe(job)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(tsbert_core::Error::Internal(format!("internal error in tsbert (a Rust panic): {what}")))
    })
}

/// A job for a worker thread.
type Job<T> = Box<dyn FnOnce() -> tsbert_core::Result<T> + Send>;

/// One call into the core off the JS thread: its job runs on a libuv thread (where it may wait
/// for a lock, then hand its work to the compute threads). A panic becomes an `Error`; invalid
/// input becomes the `RangeError` / `TypeError` the core asked for.
pub struct CoreTask<T> {
    job: Option<Job<T>>,
    failure: Option<tsbert_core::Error>,
}

impl<T: ToNapiValue + TypeName + Send + 'static> CoreTask<T> {
    /// `job` as a promise-returning task for libuv's pool.
    pub fn spawn(job: impl FnOnce() -> tsbert_core::Result<T> + Send + 'static) -> AsyncTask<Self> {
        AsyncTask::new(Self { job: Some(Box::new(job)), failure: None })
    }
}

impl<T: ToNapiValue + TypeName + Send + 'static> Task for CoreTask<T> {
    type Output = T;
    type JsValue = T;

    fn compute(&mut self) -> napi::Result<T> {
        let job = self.job.take().expect("a task runs once");
        caught(job).map_err(|e| {
            let message = e.to_string();
            self.failure = Some(e);
            napi::Error::new(Status::GenericFailure, message)
        })
    }

    fn resolve(&mut self, _env: Env, output: T) -> napi::Result<T> {
        Ok(output)
    }

    fn reject(&mut self, env: Env, err: napi::Error) -> napi::Result<T> {
        Err(self.failure.take().map_or(err, |f| js_error(&env, f)))
    }
}

/// A result computed now, on the JS thread, or the promise of one computed off it: what a
/// call returns when it chooses by the size of its input.
pub enum NowOrLater<T: ToNapiValue + TypeName + Send + 'static> {
    /// The value itself.
    Now(T),
    /// A promise of it.
    Later(AsyncTask<CoreTask<T>>),
}

impl<T: ToNapiValue + TypeName + Send + 'static> TypeName for NowOrLater<T> {
    fn type_name() -> &'static str {
        T::type_name()
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl<T: ToNapiValue + TypeName + Send + 'static> ToNapiValue for NowOrLater<T> {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        // SAFETY: `env` is the live environment of the call that returns `value`.
        unsafe {
            match value {
                Self::Now(v) => T::to_napi_value(env, v),
                Self::Later(task) => AsyncTask::to_napi_value(env, task),
            }
        }
    }
}
