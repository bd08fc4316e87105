//! napi's link setup, and for the CUDA build on Linux two link arguments:
//! - `libcuda.so.1` kept as a needed library: candle calls the driver's functions, but when the
//!   build links against a stub `libcuda.so` (scripts/build-cuda.sh, on machines without a
//!   driver) the linker's `--as-needed` finds nothing in it and drops it, leaving `cuInit` & co.
//!   unbound: the addon would load anywhere and crash at the first CUDA call.
//! - `-z now`: every symbol bound when the addon loads, so a driver that lacks one fails the load
//!   (and tsbert falls back to the CPU build, saying why) instead of aborting Node mid-run.

fn main() {
    napi_build::setup();
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if linux && std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        println!("cargo:rustc-cdylib-link-arg=-Wl,--push-state,--no-as-needed,-lcuda,--pop-state");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,now");
    }
}
