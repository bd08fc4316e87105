//! Kernels picked at run time by what the CPU has, with an environment variable to force one
//! (to test a fallback on a CPU that has more, or to compare kernels).

/// A family of interchangeable kernels for one product, fastest first.
pub trait CpuKernel: Copy + PartialEq + Sized + 'static {
    /// Every kernel, fastest first; the last runs on any CPU.
    const ALL: &'static [Self];
    /// The environment variable that forces a kernel by its [`CpuKernel::name`].
    const VARIABLE: &'static str;

    /// The kernel's name, as [`CpuKernel::VARIABLE`] takes it.
    fn name(self) -> &'static str;

    /// Whether this CPU has the kernel's instructions.
    fn is_supported(self) -> bool;

    /// The kernel [`CpuKernel::VARIABLE`] names if this CPU has it (the last of
    /// [`CpuKernel::ALL`], which any CPU runs, if it lacks it); unset or unknown, the fastest
    /// kernel this CPU has.
    fn detect() -> Self {
        let last = *Self::ALL.last().expect("a kernel family has kernels");
        let forced = std::env::var(Self::VARIABLE).ok();
        match Self::ALL.iter().copied().find(|k| Some(k.name()) == forced.as_deref()) {
            Some(k) if k.is_supported() => k,
            Some(_) => last,
            None => Self::ALL.iter().copied().find(|k| k.is_supported()).unwrap_or(last),
        }
    }
}
