//! A system library opened at run time, when a feature first needs it, instead of linked into
//! the addon: the addon then loads on machines that lack the library, and the call that needs
//! it fails with an error naming the library and how to get it.

use std::ffi::CString;

/// An opened shared library; its functions stay valid while it lives.
#[derive(Debug)]
pub struct SharedLibrary {
    library: libloading::Library,
    soname: &'static str,
}

impl SharedLibrary {
    /// Opens `soname` from the system's library path (`LD_LIBRARY_PATH`, the loader's cache).
    /// The error names the library, the loader's reason and `how_to_get` it.
    pub fn open(soname: &'static str, how_to_get: &str) -> Result<Self, String> {
        // SAFETY: opening runs the library's initialisers; the libraries opened here (NVIDIA's)
        // have none that depend on the caller.
        match unsafe { libloading::Library::new(soname) } {
            Ok(library) => Ok(Self { library, soname }),
            Err(e) => Err(format!("{soname} did not load ({e}); {how_to_get}")),
        }
    }

    /// The function `name`, as the function pointer type `F`.
    ///
    /// # Safety
    /// `F` must be the C signature the library gives `name`, and the pointer must not be
    /// called after this library is dropped.
    pub unsafe fn function<F: Copy>(&self, name: &str) -> Result<F, String> {
        let symbol = CString::new(name).map_err(|_| format!("{name}: not a symbol name"))?;
        // SAFETY: the caller vouches for the signature and the lifetime.
        unsafe { self.library.get::<F>(symbol.as_bytes_with_nul()) }
            .map(|f| *f)
            .map_err(|e| format!("{} has no {name} ({e}): too old a version?", self.soname))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_named_with_how_to_get_it() {
        let err = SharedLibrary::open("libtsbert-absent.so.7", "install it from somewhere").unwrap_err();
        assert!(err.starts_with("libtsbert-absent.so.7 did not load ("), "{err}");
        assert!(err.ends_with("; install it from somewhere"), "{err}");
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn functions_of_an_opened_library_are_callable_and_missing_ones_are_named() {
        let libm = SharedLibrary::open("libm.so.6", "").unwrap();
        // SAFETY: C's `double cos(double)`; the library outlives the call.
        let cos: unsafe extern "C" fn(f64) -> f64 = unsafe { libm.function("cos") }.unwrap();
        assert_eq!(unsafe { cos(0.0) }, 1.0);
        // SAFETY: never called.
        let err = unsafe { libm.function::<unsafe extern "C" fn()>("tsbert_no_such_function") }.unwrap_err();
        assert!(err.starts_with("libm.so.6 has no tsbert_no_such_function ("), "{err}");
    }
}
