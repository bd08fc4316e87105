//! Int8 matrix products for the inference pass's q8 mode: a weight quantised once, per output
//! channel (symmetric, `w ≈ scale[o] · q[o, k]`, `q` in −127..=127), the activations per row at
//! each product (symmetric, `x ≈ s[r] · p[r, k]`), the sums of products in int32 — exact, so every
//! kernel gives the same bits — and `out = b + s[r] · scale[o] · Σₖ p·q` in f32.
//!
//! Kernels, picked once at run time by what the CPU has ([`Kernel::detect`]; the environment
//! variable `TSBERT_Q8_KERNEL=portable|avx2|avx512-vnni` forces one, a kernel the CPU lacks
//! falls back to the portable one): AVX-512 VNNI (`vpdpbusd`: 64 unsigned × signed byte
//! products a step, the activations offset by 128 to be unsigned and the offset taken back with
//! the weight's row sums), AVX2 (the portable loop compiled for AVX2, which the compiler turns
//! into `vpmaddwd`), and the portable loop everywhere else (arm64 included: it has no
//! hand-written NEON `sdot` kernel yet).

use rayon::prelude::*;

/// Values of `k` a stored row is padded to a multiple of (zeros, which add nothing).
const K_BLOCK: usize = 64;
/// Output channels a parallel task computes (its weights stay in the core's cache).
const OUTPUTS_A_TASK: usize = 64;
/// Largest magnitude of a quantised value.
const Q_MAX: f32 = 127.0;

/// How the int32 sums are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Plain Rust loops (any CPU).
    Portable,
    /// The portable loops compiled for AVX2.
    Avx2,
    /// AVX-512 VNNI's `vpdpbusd`.
    Avx512Vnni,
}

impl Kernel {
    /// The fastest kernel this CPU runs, or the one `TSBERT_Q8_KERNEL` names if the CPU has it
    /// (else the portable one).
    pub fn detect() -> Self {
        let forced = std::env::var("TSBERT_Q8_KERNEL").ok();
        let wanted = match forced.as_deref() {
            Some("portable") => return Self::Portable,
            Some("avx2") => Self::Avx2,
            Some("avx512-vnni") => Self::Avx512Vnni,
            _ => Self::best(),
        };
        if wanted.is_supported() {
            wanted
        } else {
            Self::Portable
        }
    }

    /// The fastest kernel this CPU has.
    fn best() -> Self {
        [Self::Avx512Vnni, Self::Avx2].into_iter().find(|k| k.is_supported()).unwrap_or(Self::Portable)
    }

    /// The kernel's name, as `TSBERT_Q8_KERNEL` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            Self::Avx2 => "avx2",
            Self::Avx512Vnni => "avx512-vnni",
        }
    }

    /// Whether this CPU has the instructions of the kernel.
    pub fn is_supported(self) -> bool {
        match self {
            Self::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512Vnni => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// A `[out, in]` weight quantised per output channel, each row padded with zeros to a multiple
/// of [`K_BLOCK`].
pub(crate) struct QuantizedMatrix {
    /// `[out, k_padded]`.
    values: Vec<i8>,
    /// `[out]`: `w[o, k] ≈ scales[o] · values[o, k]`.
    scales: Vec<f32>,
    /// `[out]`: `Σₖ values[o, k]` (what an offset of the activations adds).
    sums: Vec<i32>,
    n_in: usize,
}

/// Rows of activations quantised for one product.
pub(crate) struct QuantizedRows {
    /// `[rows, k_padded]`, each value + 128 (unsigned, for `vpdpbusd`).
    values: Vec<u8>,
    /// `[rows]`: `x[r, k] ≈ scales[r] · (values[r, k] − 128)`.
    scales: Vec<f32>,
}

/// `n` rounded up to a multiple of [`K_BLOCK`].
fn padded(n: usize) -> usize {
    n.div_ceil(K_BLOCK) * K_BLOCK
}

/// The scale of `values` (the largest magnitude over [`Q_MAX`]; 1 for all zeros) and the
/// quantised values (rounded to nearest, ties to even) through `put`.
#[inline(always)]
fn quantize_row(values: &[f32], mut put: impl FnMut(usize, i32)) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2²³: adding it rounds a value under 2²² to an integer
    let mut lanes = [0f32; 16];
    let mut chunks = values.chunks_exact(16);
    for c in &mut chunks {
        for i in 0..16 {
            lanes[i] = lanes[i].max(c[i].abs());
        }
    }
    let largest = chunks.remainder().iter().fold(lanes.iter().fold(0f32, |m, &v| m.max(v)), |m, v| m.max(v.abs()));
    let scale = if largest > 0.0 && largest.is_finite() { largest / Q_MAX } else { 1.0 };
    let inv = 1.0 / scale;
    for (k, &v) in values.iter().enumerate() {
        put(k, ((v * inv).clamp(-Q_MAX, Q_MAX) + ROUND - ROUND) as i32);
    }
    scale
}

impl QuantizedMatrix {
    /// `weight` `[n_out, n_in]` row-major, quantised.
    pub(crate) fn of(weight: &[f32], n_out: usize, n_in: usize) -> Self {
        let kp = padded(n_in);
        let mut values = vec![0i8; n_out * kp];
        let (mut scales, mut sums) = (Vec::with_capacity(n_out), Vec::with_capacity(n_out));
        for (row, out) in weight.chunks_exact(n_in).zip(values.chunks_exact_mut(kp)) {
            let mut sum = 0;
            scales.push(quantize_row(row, |k, q| {
                out[k] = q as i8;
                sum += q;
            }));
            sums.push(sum);
        }
        Self { values, scales, sums, n_in }
    }

    /// Output channels.
    pub(crate) fn n_out(&self) -> usize {
        self.scales.len()
    }

    /// Input values a row.
    pub(crate) fn n_in(&self) -> usize {
        self.n_in
    }
}

impl QuantizedRows {
    /// `x` `[rows, n_in]` row-major, quantised row by row.
    pub(crate) fn of(x: &[f32], n_in: usize) -> Self {
        let kp = padded(n_in);
        let rows = x.len() / n_in;
        let mut values = vec![128u8; rows * kp];
        let mut scales = vec![0f32; rows];
        values.par_chunks_mut(kp).zip(x.par_chunks(n_in)).zip(&mut scales).for_each(|((out, row), scale)| {
            *scale = quantize_row(row, |k, q| out[k] = (q + 128) as u8);
        });
        Self { values, scales }
    }
}

/// `out[r, o] = bias[o] + s[r] · scale[o] · Σₖ p[r, k] · q[o, k]`: `out` `[rows, n_out]` row-major.
pub(crate) fn quantized_product(out: &mut [f32], x: &QuantizedRows, w: &QuantizedMatrix, bias: &[f32], kernel: Kernel) {
    let kernel = if kernel.is_supported() { kernel } else { Kernel::Portable };
    let (n_out, kp) = (w.n_out(), padded(w.n_in));
    let rows = x.scales.len();
    assert!(out.len() >= rows * n_out && x.values.len() == rows * kp && bias.len() == n_out);
    let out_ptr = SharedOut(out.as_mut_ptr());
    (0..n_out.div_ceil(OUTPUTS_A_TASK)).into_par_iter().for_each(|task| {
        let outputs = task * OUTPUTS_A_TASK..((task + 1) * OUTPUTS_A_TASK).min(n_out);
        let mut sums = vec![0i32; outputs.len()];
        let wr = &w.values[outputs.start * kp..outputs.end * kp];
        let (bias, scales, offsets) = (&bias[outputs.clone()], &w.scales[outputs.clone()], &w.sums[outputs.clone()]);
        for (r, (xr, &sx)) in x.values.chunks_exact(kp).zip(&x.scales).enumerate() {
            // SAFETY: the kernel is one this CPU has (checked above).
            unsafe { dots_unchecked(&mut sums, xr, wr, kernel) };
            // SAFETY: `out` holds rows × n_out values (asserted); each task writes its own
            // columns of each row, so the slices of two tasks never overlap.
            let row = unsafe { std::slice::from_raw_parts_mut(out_ptr.at(r * n_out + outputs.start), outputs.len()) };
            for ((((o, &sum), &b), &sw), &offset) in row.iter_mut().zip(&sums).zip(bias).zip(scales).zip(offsets) {
                *o = b + sx * sw * (sum - 128 * offset) as f32;
            }
        }
    });
}

/// The output pointer, shared by tasks that write disjoint values.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: tasks write disjoint values (see `quantized_product`).
unsafe impl Send for SharedOut {}
// SAFETY: as above.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    fn at(self, i: usize) -> *mut f32 {
        // SAFETY: callers stay within the buffer.
        unsafe { self.0.add(i) }
    }
}

/// `sums[i] = Σₖ x[k] · w[i, k]` (`x` unsigned, `w` `[sums.len(), x.len()]`), exactly, by
/// `kernel` if this CPU has it, else by the portable one (what the tests call).
#[cfg(test)]
fn dots(sums: &mut [i32], x: &[u8], w: &[i8], kernel: Kernel) {
    let kernel = if kernel.is_supported() { kernel } else { Kernel::Portable };
    // SAFETY: the kernel is one this CPU has.
    unsafe { dots_unchecked(sums, x, w, kernel) }
}

/// [`dots`] by `kernel`.
///
/// # Safety
/// The CPU must have `kernel`'s instructions ([`Kernel::is_supported`]).
unsafe fn dots_unchecked(sums: &mut [i32], x: &[u8], w: &[i8], kernel: Kernel) {
    assert!(x.len().is_multiple_of(K_BLOCK) && w.len() == sums.len() * x.len());
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as the caller promises.
        Kernel::Avx512Vnni => unsafe { dots_vnni(sums, x, w) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Kernel::Avx2 => unsafe { dots_avx2(sums, x, w) },
        _ => dots_portable(sums, x, w),
    }
}

/// The portable loop: 32 products at a time in i32 lanes, which the compiler vectorises.
#[inline(always)]
fn dots_portable(sums: &mut [i32], x: &[u8], w: &[i8]) {
    let k = x.len();
    for (sum, row) in sums.iter_mut().zip(w.chunks_exact(k)) {
        let mut acc = [0i32; 32];
        for (xc, wc) in x.chunks_exact(32).zip(row.chunks_exact(32)) {
            for i in 0..32 {
                acc[i] += i32::from(xc[i]) * i32::from(wc[i]);
            }
        }
        *sum = acc.iter().sum();
    }
}

/// [`dots_portable`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dots_avx2(sums: &mut [i32], x: &[u8], w: &[i8]) {
    dots_portable(sums, x, w);
}

/// `vpdpbusd` over 64 bytes a step, four weight rows at a time (each load of `x` used four
/// times).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dots_vnni(sums: &mut [i32], x: &[u8], w: &[i8]) {
    use std::arch::x86_64::*;
    let k = x.len();
    let done = sums.len() / 4 * 4;
    let mut chunks = sums.chunks_exact_mut(4);
    let (xp, mut wp) = (x.as_ptr(), w.as_ptr());
    for out in &mut chunks {
        let (mut a0, mut a1, mut a2, mut a3) =
            (_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512());
        for j in (0..k).step_by(K_BLOCK) {
            // SAFETY: `k` is a multiple of 64 (K_BLOCK) and `w` holds 4 more rows of `k` from
            // `wp`, so each load is in bounds.
            unsafe {
                let xv = _mm512_loadu_si512(xp.add(j).cast());
                a0 = _mm512_dpbusd_epi32(a0, xv, _mm512_loadu_si512(wp.add(j).cast()));
                a1 = _mm512_dpbusd_epi32(a1, xv, _mm512_loadu_si512(wp.add(k + j).cast()));
                a2 = _mm512_dpbusd_epi32(a2, xv, _mm512_loadu_si512(wp.add(2 * k + j).cast()));
                a3 = _mm512_dpbusd_epi32(a3, xv, _mm512_loadu_si512(wp.add(3 * k + j).cast()));
            }
        }
        out[0] = _mm512_reduce_add_epi32(a0);
        out[1] = _mm512_reduce_add_epi32(a1);
        out[2] = _mm512_reduce_add_epi32(a2);
        out[3] = _mm512_reduce_add_epi32(a3);
        // SAFETY: past the 4 rows just read, within `w` or one past its end.
        wp = unsafe { wp.add(4 * k) };
    }
    for (sum, row) in chunks.into_remainder().iter_mut().zip(w[done * k..].chunks_exact(k)) {
        let mut acc = _mm512_setzero_si512();
        for j in (0..k).step_by(K_BLOCK) {
            // SAFETY: as above.
            let (xv, wv) = unsafe {
                (_mm512_loadu_si512(x.as_ptr().add(j).cast()), _mm512_loadu_si512(row.as_ptr().add(j).cast()))
            };
            acc = _mm512_dpbusd_epi32(acc, xv, wv);
        }
        *sum = _mm512_reduce_add_epi32(acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel this CPU has gives the portable kernel's sums, bit for bit, including
    /// extreme values (255 × −127 everywhere) and a remainder of rows.
    #[test]
    fn every_kernel_gives_the_exact_sums() {
        let k = 3 * K_BLOCK;
        let x: Vec<u8> = (0..k).map(|i| (i * 37 % 256) as u8).collect();
        let w: Vec<i8> = (0..7 * k).map(|i| ((i * 53 % 255) as i32 - 127) as i8).collect();
        let exact: Vec<i32> =
            w.chunks_exact(k).map(|row| row.iter().zip(&x).map(|(&a, &b)| i32::from(a) * i32::from(b)).sum()).collect();
        let extreme = (vec![255u8; k], vec![-127i8; 5 * k]);
        for kernel in [Kernel::Portable, Kernel::Avx2, Kernel::Avx512Vnni] {
            if !kernel.is_supported() {
                continue;
            }
            let mut sums = vec![0; 7];
            dots(&mut sums, &x, &w, kernel);
            assert_eq!(sums, exact, "{kernel:?}");
            let mut sums = vec![0; 5];
            dots(&mut sums, &extreme.0, &extreme.1, kernel);
            assert!(sums.iter().all(|&s| s == -255 * 127 * k as i32), "{kernel:?}: {sums:?}");
        }
    }

    /// The quantised product against the f32 one: within the rounding the scales allow.
    #[test]
    fn the_quantized_product_is_within_its_rounding_of_the_f32_one() {
        let (rows, n_in, n_out) = (5, 70, 130);
        let x: Vec<f32> = (0..rows * n_in).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 3.0).collect();
        let w: Vec<f32> = (0..n_out * n_in).map(|i| (i * 104_729 % 997) as f32 / 498.5 - 1.0).collect();
        let bias: Vec<f32> = (0..n_out).map(|o| o as f32 * 0.01).collect();
        let (qx, qw) = (QuantizedRows::of(&x, n_in), QuantizedMatrix::of(&w, n_out, n_in));
        for kernel in [Kernel::Portable, Kernel::Avx2, Kernel::Avx512Vnni] {
            if !kernel.is_supported() {
                continue;
            }
            let mut out = vec![0f32; rows * n_out];
            quantized_product(&mut out, &qx, &qw, &bias, kernel);
            for r in 0..rows {
                for o in 0..n_out {
                    let (xr, wo) = (&x[r * n_in..(r + 1) * n_in], &w[o * n_in..(o + 1) * n_in]);
                    let exact: f32 = bias[o] + xr.iter().zip(wo).map(|(a, b)| a * b).sum::<f32>();
                    // each product is off by at most |x|·Δw + |w|·Δx + Δx·Δw, Δ half a step
                    let (sx, sw) = (qx.scales[r], qw.scales[o]);
                    let bound: f32 =
                        xr.iter().zip(wo).map(|(a, b)| a.abs() * sw / 2.0 + b.abs() * sx / 2.0 + sx * sw / 4.0).sum();
                    let got = out[r * n_out + o];
                    assert!((got - exact).abs() <= bound * 1.001 + 1e-5, "{kernel:?} [{r}, {o}]: {got} vs {exact}");
                }
            }
        }
    }
}
