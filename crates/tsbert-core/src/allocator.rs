//! Keeping freed memory for reuse. A training step allocates and frees the same few hundred
//! MB of activations and gradients every time; by default glibc serves each large block with
//! a fresh `mmap` and gives it back on `free`, so every step pays for zeroing new pages
//! (page faults were a quarter of the CPU profile). Raising glibc's thresholds keeps those
//! blocks in the heap, as PyTorch's caching allocators do: measured on the textbook step,
//! backward went from about 2.3 s to 1.45 s on a 2-core machine. The cost is that the
//! process keeps its peak heap size.

/// Makes glibc keep freed blocks up to 1 GiB for reuse (no effect on other C libraries or
/// platforms). Called once by the Node binding when it loads and by the benchmarks; set
/// `TSBERT_SYSTEM_MALLOC=1` to leave the allocator as it is.
pub fn keep_freed_memory() {
    if std::env::var_os("TSBERT_SYSTEM_MALLOC").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
    unsafe {
        const GIB: libc::c_int = 1 << 30;
        libc::mallopt(libc::M_MMAP_THRESHOLD, GIB);
        libc::mallopt(libc::M_TRIM_THRESHOLD, GIB);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}
