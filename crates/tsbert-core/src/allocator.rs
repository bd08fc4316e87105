//! The memory allocator of tsbert's binaries. A training step allocates and frees the same
//! few hundred MB of activations and gradients every time. glibc's malloc serves each large
//! block with a fresh `mmap` and unmaps it on `free`, so every step paid for zeroing new pages;
//! raising its thresholds helped only on the main thread, while Node runs the step on a
//! worker thread, whose arena grows in heaps of at most 64 MiB (measured through the addon:
//! 6.7 s a step, a third of it clearing pages, against 2.5 s for the same step on the main
//! thread of the Rust benchmark). mimalloc with purging turned off keeps freed memory for
//! reuse on every thread, as PyTorch's caching allocators do. The cost is that the process
//! keeps its peak heap size.
//!
//! A binary opts in with `#[global_allocator] static GLOBAL: Allocator = Allocator;` and calls
//! [`keep_freed_memory`] once at start.

/// The global allocator type for tsbert's binaries (the Node addon, the benchmarks).
pub use mimalloc::MiMalloc as Allocator;

/// `mi_option_arena_eager_commit`, `mi_option_purge_decommits` and `mi_option_purge_delay` in
/// the `mi_option_t` enum of mimalloc.h (the same indices in mimalloc 2.1 and 3;
/// libmimalloc-sys is pinned in Cargo.toml so that they stay so).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DECOMMITS: libmimalloc_sys::mi_option_t = 5;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes [`Allocator`] keep freed memory for reuse instead of returning it to the OS: no
/// delayed purging, and what mimalloc still purges is only marked reusable (`MADV_FREE`, which
/// the kernel reclaims only under memory pressure) instead of decommitted, whose next use
/// faults in and clears fresh pages (measured on the textbook step: 2.3 s with both settings,
/// 2.9 s with the first alone). Set `TSBERT_RELEASE_MEMORY=1` to keep mimalloc's defaults.
///
/// Arenas are committed as they are used, not eagerly: committed at once, the parts of an
/// arena's blocks that no allocation touched were resident anyway (a loaded BERT-base-sized
/// model: 590 MiB resident, 528 MiB committed on use; no change measured in a training step).
pub fn keep_freed_memory() {
    // SAFETY: mi_option_set only stores an option value; it is safe to call at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) };
    if std::env::var_os("TSBERT_RELEASE_MEMORY").is_some() {
        return;
    }
    // SAFETY: mi_option_set only stores an option value; it is safe to call at any time.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DECOMMITS, 0);
    }
}

/// Loads running [`releasing_freed_memory`] now, and the purge settings they replaced.
static RELEASING: std::sync::Mutex<(usize, [std::os::raw::c_long; 2])> = std::sync::Mutex::new((0, [0; 2]));

/// Runs `work` with [`Allocator`] returning freed memory to the OS at once (no purge delay,
/// decommitting), then puts back the settings it had (those of [`keep_freed_memory`]): for
/// work whose large temporaries must not stay resident after it — a model loaded in q8
/// quantises each f32 tensor of its weights file as it is read, and the freed tensors, kept,
/// would have made its memory that of the f32 model (all-MiniLM-L6-v2: 149 against 116 MiB).
/// Other threads' allocations meanwhile release theirs too (slower, never wrong). Nested and
/// concurrent calls restore the settings when the last one ends.
pub fn releasing_freed_memory<T>(work: impl FnOnce() -> T) -> T {
    let options = [MI_OPTION_PURGE_DELAY, MI_OPTION_PURGE_DECOMMITS];
    {
        let mut state = RELEASING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.0 == 0 {
            // SAFETY: mi_option_get and mi_option_set only read and store option values.
            unsafe {
                state.1 = options.map(|o| libmimalloc_sys::mi_option_get(o));
                libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
                libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DECOMMITS, 1);
            }
        }
        state.0 += 1;
    }
    let out = work();
    let mut state = RELEASING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    state.0 -= 1;
    if state.0 == 0 {
        for (option, value) in options.into_iter().zip(state.1) {
            // SAFETY: as above.
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purging_and_eager_commit_are_turned_off_but_while_releasing_freed_memory() {
        keep_freed_memory();
        // SAFETY: reading option values.
        unsafe {
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY), -1);
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DECOMMITS), 0);
            assert_eq!(libmimalloc_sys::mi_option_get(MI_OPTION_ARENA_EAGER_COMMIT), 0);
        }
        // (one test: the options are global, and tests run in parallel)
        let read = || unsafe {
            // SAFETY: reading option values.
            [MI_OPTION_PURGE_DELAY, MI_OPTION_PURGE_DECOMMITS].map(|o| libmimalloc_sys::mi_option_get(o))
        };
        let inner = releasing_freed_memory(|| releasing_freed_memory(read));
        assert_eq!(inner, [0, 1]);
        assert_eq!(read(), [-1, 0]);
    }
}
