//! Int8 matrix products for the inference pass's q8 mode: a weight quantised once, per output
//! channel (symmetric, `w ≈ scale[o] · q[o, k]`, `q` in −127..=127), the activations per row at
//! each product (symmetric, `x ≈ s[r] · p[r, k]`), the sums of products in int32 — exact, so every
//! kernel gives the same bits — and `out = b + s[r] · scale[o] · Σₖ p·q` in f32.
//!
//! Kernels, picked once at run time by what the CPU has ([`CpuKernel::detect`]; the environment
//! variable `TSBERT_Q8_KERNEL=portable|avx2|avx512-vnni|neon-dot` forces one, a kernel the CPU
//! lacks falls back to the portable one): AVX-512 VNNI (`vpdpbusd`: 16 output channels × 4
//! unsigned × signed byte products a step, the weight stored interleaved for it — 16 channels'
//! 4 values of `k` side by side — so that sums stay in their lanes and need no horizontal
//! reduction; the activations offset by 128 to be unsigned and the offset taken back with the
//! weight's row sums), arm64's dot-product instructions (`udot`: 4 channels × 4 unsigned byte
//! products a step on the same interleaved layout in blocks of 4 channels, the weight stored
//! offset by 128 too and that offset taken back with each activation row's sum), AVX2 (the
//! portable loop compiled for AVX2, which the compiler turns into `vpmaddwd`), and the portable
//! loop everywhere else.

use rayon::prelude::*;

use crate::config::Activation;
use crate::ops::activation::activate;

pub use crate::ops::cpu_kernel::CpuKernel;

/// Values of `k` a stored row is padded to a multiple of (zeros, which add nothing).
const K_BLOCK: usize = 64;
/// Output channels a parallel task computes (its weights stay in the core's cache).
const OUTPUTS_A_TASK: usize = 64;
/// Rows of activations a kernel call takes together (each weight load used by as many).
const ROWS_A_TILE: usize = 4;
/// Output channels of one `vpdpbusd` (the VNNI layout's block).
const LANES: usize = 16;
/// Output channels of one `udot` (the arm64 layout's block).
const NEON_LANES: usize = 4;
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
    /// arm64's `udot` (the dot-product extension, ARMv8.2 and later).
    NeonDot,
}

impl Kernel {
    /// The output channels of a block of its interleaved layout (16 channels' or 4 channels'
    /// 4 values of `k` side by side), or `None` for row-major.
    fn block(self) -> Option<usize> {
        match self {
            Self::Avx512Vnni => Some(LANES),
            Self::NeonDot => Some(NEON_LANES),
            Self::Portable | Self::Avx2 => None,
        }
    }

    /// How a quantised value `q` is stored for it: as is, or offset by 128 into an unsigned
    /// byte (`udot` multiplies unsigned bytes).
    fn stored(self, q: i32) -> i8 {
        match self {
            Self::NeonDot => (q + 128) as u8 as i8,
            _ => q as i8,
        }
    }
}

impl CpuKernel for Kernel {
    const ALL: &'static [Self] = &[Self::Avx512Vnni, Self::NeonDot, Self::Avx2, Self::Portable];
    const VARIABLE: &'static str = "TSBERT_Q8_KERNEL";

    fn name(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            Self::Avx2 => "avx2",
            Self::Avx512Vnni => "avx512-vnni",
            Self::NeonDot => "neon-dot",
        }
    }

    fn is_supported(self) -> bool {
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
            #[cfg(target_arch = "aarch64")]
            Self::NeonDot => std::arch::is_aarch64_feature_detected!("dotprod"),
            _ => false,
        }
    }
}

/// A `[out, in]` weight quantised per output channel, each row padded with zeros to a multiple
/// of [`K_BLOCK`], laid out for its kernel.
pub(crate) struct QuantizedMatrix {
    /// `[out, k_padded]` row-major; for an interleaved layout ([`Kernel::Avx512Vnni`],
    /// [`Kernel::NeonDot`]) `[⌈out/c⌉, k_padded/4, c, 4]` for blocks of `c` channels (zeros for
    /// the channels past `out`); each value as [`Kernel::stored`] stores it.
    values: Vec<i8>,
    /// The kernel that multiplies by it (one this CPU has).
    kernel: Kernel,
    /// `[out]`: `w[o, k] ≈ scales[o] · values[o, k]`.
    scales: Vec<f32>,
    /// `[out]`: `Σₖ values[o, k]` (what an offset of the activations adds).
    sums: Vec<i32>,
    n_in: usize,
}

/// A lookup table (`[rows, width]`, an embedding table) quantised row by row, as the weights
/// are per output channel (`table[r, j] ≈ scales[r] · values[r, j]`): a quarter of its f32
/// size, read back a row at a time.
pub(crate) struct QuantizedTable {
    /// `[rows, width]` row-major.
    values: Vec<i8>,
    /// `[rows]`.
    scales: Vec<f32>,
    width: usize,
}

impl QuantizedTable {
    /// An empty table of rows of `width` values, with room for `rows`.
    pub(crate) fn new(width: usize, rows: usize) -> Self {
        Self { values: Vec::with_capacity(rows * width), scales: Vec::with_capacity(rows), width }
    }

    /// Appends the rows of `block` (whole rows, row-major), quantised.
    pub(crate) fn push(&mut self, block: &[f32]) {
        for row in block.chunks_exact(self.width) {
            let at = self.values.len();
            self.values.resize(at + self.width, 0);
            let out = &mut self.values[at..];
            self.scales.push(quantize_row(row, |j, q| out[j] = q as i8));
        }
    }

    /// Row `r`'s quantised values and scale.
    pub(crate) fn row(&self, r: usize) -> (&[i8], f32) {
        (&self.values[r * self.width..(r + 1) * self.width], self.scales[r])
    }

    /// Rows.
    pub(crate) fn rows(&self) -> usize {
        self.scales.len()
    }

    /// Bytes it holds (its values and scales).
    pub(crate) fn bytes(&self) -> usize {
        self.values.len() + 4 * self.scales.len()
    }
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

/// The scale of `values`: the largest magnitude over [`Q_MAX`] (1 for all zeros).
#[inline(always)]
fn row_scale(values: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = values.chunks_exact(16);
    for c in &mut chunks {
        for i in 0..16 {
            lanes[i] = lanes[i].max(c[i].abs());
        }
    }
    let largest = chunks.remainder().iter().fold(lanes.iter().fold(0f32, |m, &v| m.max(v)), |m, v| m.max(v.abs()));
    if largest > 0.0 && largest.is_finite() {
        largest / Q_MAX
    } else {
        1.0
    }
}

/// `v · inv` rounded to the nearest integer (ties to even) in −127..=127 (0 for NaN): the
/// integer read from the bits of the rounded sum, not by a float-to-int conversion, which
/// kept the compiler from vectorising the activations' quantisation (1.15 against 0.19 ns a
/// value, AVX-512, one thread).
#[inline(always)]
fn quantized(v: f32, inv: f32) -> i32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2²³: adding it rounds a value under 2²² to an integer
    let q = (v * inv).clamp(-Q_MAX, Q_MAX);
    if q.is_nan() {
        return 0;
    }
    (q + ROUND).to_bits() as i32 - ROUND.to_bits() as i32
}

/// The scale of `values` ([`row_scale`]) and the quantised values through `put`.
#[inline(always)]
fn quantize_row(values: &[f32], mut put: impl FnMut(usize, i32)) -> f32 {
    let scale = row_scale(values);
    let inv = 1.0 / scale;
    for (k, &v) in values.iter().enumerate() {
        put(k, quantized(v, inv));
    }
    scale
}

impl QuantizedMatrix {
    /// The weight whose rows are those of `parts` in order (each `[rows, n_in]` row-major: the
    /// layers of a product side by side, read where they are), quantised for `kernel` (the
    /// portable one if this CPU lacks it).
    pub(crate) fn of(parts: &[&[f32]], n_in: usize, kernel: Kernel) -> Self {
        let n_out = parts.iter().map(|p| p.len() / n_in).sum::<usize>();
        let mut matrix = Self::zeros(n_out, n_in, kernel);
        let mut first = 0;
        for part in parts {
            matrix.set_rows(first, part);
            first += part.len() / n_in;
        }
        matrix
    }

    /// An `[n_out, n_in]` weight of zeros for `kernel` (the portable one if this CPU lacks
    /// it), to be filled by [`QuantizedMatrix::set_rows`].
    pub(crate) fn zeros(n_out: usize, n_in: usize, kernel: Kernel) -> Self {
        let kernel = if kernel.is_supported() { kernel } else { Kernel::Portable };
        let kp = padded(n_in);
        let stored = kernel.block().map_or(n_out, |c| n_out.div_ceil(c) * c);
        let values = vec![kernel.stored(0); stored * kp];
        Self { values, kernel, scales: vec![1.0; n_out], sums: vec![0; n_out], n_in }
    }

    /// Quantises `rows` (whole rows of `n_in` values, row-major) into rows `first..` of the
    /// weight: a weight can be filled a block of rows at a time, as it is read.
    pub(crate) fn set_rows(&mut self, first: usize, rows: &[f32]) {
        let (n_in, kp, kernel) = (self.n_in, padded(self.n_in), self.kernel);
        for (i, row) in rows.chunks_exact(n_in).enumerate() {
            let o = first + i;
            let mut sum = 0;
            let values = &mut self.values;
            self.scales[o] = quantize_row(row, |k, q| {
                let at = match kernel.block() {
                    Some(c) => (((o / c) * (kp / 4) + k / 4) * c + o % c) * 4 + k % 4,
                    None => o * kp + k,
                };
                values[at] = kernel.stored(q);
                sum += q;
            });
            self.sums[o] = sum;
        }
    }

    /// Output channels.
    pub(crate) fn n_out(&self) -> usize {
        self.scales.len()
    }

    /// Input values a row.
    pub(crate) fn n_in(&self) -> usize {
        self.n_in
    }

    /// Bytes it holds (its values as laid out, padding included, its scales and sums).
    pub(crate) fn bytes(&self) -> usize {
        self.values.len() + 4 * (self.scales.len() + self.sums.len())
    }
}

widest_vectors! {
    /// One row of activations quantised into `out` (offset by 128), its scale returned; compiled
    /// for the widest vectors the CPU has (the same arithmetic, so the same bits, on every CPU).
    fn quantize_activations(out: &mut [u8], row: &[f32]) -> f32 {
        let scale = row_scale(row);
        let inv = 1.0 / scale;
        for (o, &v) in out.iter_mut().zip(row) {
            *o = (quantized(v, inv) + 128) as u8;
        }
        scale
    }
}

widest_vectors! {
    /// `row[o] = bias[o] + sx · scales[o] · (sums[o] − 128 · offsets[o])`: a row's int32 sums back
    /// to f32 (the activations' offset of 128 taken back), compiled as [`quantize_activations`] is.
    fn scale_sums(row: &mut [f32], sums: &[i32], sx: f32, (bias, scales, offsets): (&[f32], &[f32], &[i32])) {
        for ((((o, &sum), &b), &sw), &offset) in row.iter_mut().zip(sums).zip(bias).zip(scales).zip(offsets) {
            *o = b + sx * sw * (sum - 128 * offset) as f32;
        }
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
            *scale = quantize_activations(out, row);
        });
        Self { values, scales }
    }
}

/// `out[r, o] = activation(bias[o] + s[r] · scale[o] · Σₖ p[r, k] · q[o, k])`: `out` `[rows,
/// n_out]` row-major, by `w`'s kernel, the activation (if any) applied by the task that computed
/// the values, while they are in its cache.
pub(crate) fn quantized_product(
    out: &mut [f32],
    x: &QuantizedRows,
    w: &QuantizedMatrix,
    bias: &[f32],
    activation: Option<Activation>,
) {
    let kernel = w.kernel;
    let (n_out, kp) = (w.n_out(), padded(w.n_in));
    let rows = x.scales.len();
    assert!(out.len() >= rows * n_out && x.values.len() == rows * kp && bias.len() == n_out);
    let out_ptr = SharedOut(out.as_mut_ptr());
    (0..n_out.div_ceil(OUTPUTS_A_TASK)).into_par_iter().for_each(|task| {
        let outputs = task * OUTPUTS_A_TASK..((task + 1) * OUTPUTS_A_TASK).min(n_out);
        // an interleaved layout holds whole blocks of channels
        let computed = kernel.block().map_or(outputs.len(), |c| outputs.len().div_ceil(c) * c);
        let mut sums = vec![0i32; ROWS_A_TILE * computed];
        let wr = &w.values[outputs.start * kp..(outputs.start + computed) * kp];
        let (bias, scales, offsets) = (&bias[outputs.clone()], &w.scales[outputs.clone()], &w.sums[outputs.clone()]);
        let tiles = x.values.chunks(ROWS_A_TILE * kp).zip(x.scales.chunks(ROWS_A_TILE));
        for (tile, (xs, row_scales)) in tiles.enumerate() {
            let sums = &mut sums[..row_scales.len() * computed];
            // SAFETY: the matrix's kernel is one this CPU has (checked when it was made).
            unsafe { dots_unchecked(sums, xs, row_scales.len(), wr, kernel) };
            for (i, (&sx, sums)) in row_scales.iter().zip(sums.chunks_exact(computed)).enumerate() {
                let r = tile * ROWS_A_TILE + i;
                // SAFETY: `out` holds rows × n_out values (asserted); each task writes its own
                // columns of each row, so the slices of two tasks never overlap.
                let row =
                    unsafe { std::slice::from_raw_parts_mut(out_ptr.at(r * n_out + outputs.start), outputs.len()) };
                scale_sums(row, sums, sx, (bias, scales, offsets));
                if let Some(activation) = activation {
                    activate(row, activation);
                }
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

/// `sums[r, i] = Σₖ x[r, k] · w[i, k]` for the `rows` rows of `x` (unsigned, `[rows, k]`;
/// `sums` `[rows, n]`; `w` `[n, k]` in `kernel`'s layout, `n` a multiple of its block when it
/// is interleaved), exactly.
///
/// # Safety
/// The CPU must have `kernel`'s instructions ([`Kernel::is_supported`]).
unsafe fn dots_unchecked(sums: &mut [i32], x: &[u8], rows: usize, w: &[i8], kernel: Kernel) {
    assert!(rows > 0 && x.len().is_multiple_of(rows) && sums.len().is_multiple_of(rows));
    let (k, n) = (x.len() / rows, sums.len() / rows);
    assert!(k.is_multiple_of(K_BLOCK) && w.len() == n * k);
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as the caller promises.
        Kernel::Avx512Vnni => unsafe { dots_vnni(sums, x, rows, w) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Kernel::Avx2 => unsafe { dots_avx2(sums, x, rows, w) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: as above.
        Kernel::NeonDot => unsafe { dots_neon(sums, x, rows, w) },
        _ => dots_portable(sums, x, rows, w),
    }
}

/// The portable loop: 32 products at a time in i32 lanes, which the compiler vectorises, a
/// row at a time.
#[inline(always)]
fn dots_portable(sums: &mut [i32], x: &[u8], rows: usize, w: &[i8]) {
    let k = x.len() / rows;
    for (sums, x) in sums.chunks_exact_mut(sums.len() / rows).zip(x.chunks_exact(k)) {
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
}

/// [`dots_portable`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dots_avx2(sums: &mut [i32], x: &[u8], rows: usize, w: &[i8]) {
    dots_portable(sums, x, rows, w);
}

/// The loop of an interleaved kernel over tiles of up to [`ROWS_A_TILE`] rows × 4 blocks of
/// `$lanes` channels: `sums` `[rows, n]` from the `rows` rows of `x` (`[rows, k]`) and the
/// weight at `w` (`n / $lanes` blocks of `k · $lanes` bytes), each tile by
/// `Tile::$run::<R, B>`. (A macro: the tiles' functions take their sizes as const parameters
/// and need the kernel's target features, which a generic function could not pass on.)
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! interleaved_tiles {
    ($run:ident, $lanes:expr, $sums:expr, $x:expr, $rows:expr, $w:expr) => {{
        let (sums, x, rows, w): (&mut [i32], &[u8], usize, _) = ($sums, $x, $rows, $w);
        let (k, n, lanes) = (x.len() / rows, sums.len() / rows, $lanes);
        let tile = Tile { steps: k / 4, x_stride: k, sums_stride: n };
        let (xp, sp) = (x.as_ptr(), sums.as_mut_ptr());
        // SAFETY (every call): `w` holds n / lanes blocks of k/4 steps of 4 · lanes bytes, `x`
        // `rows` rows of k bytes and `sums` `rows` rows of n values (asserted by the caller);
        // each tile reads and writes within them.
        let mut b = 0;
        while b < n / lanes {
            let (wb, sb) = (unsafe { w.add(b * k * lanes) }, unsafe { sp.add(b * lanes) });
            let wide = n / lanes - b >= 4;
            let mut r = 0;
            while r < rows {
                let (xr, sr) = (unsafe { xp.add(r * k) }, unsafe { sb.add(r * n) });
                match (rows - r >= ROWS_A_TILE, wide) {
                    (true, true) => unsafe { tile.$run::<ROWS_A_TILE, 4>(sr, xr, wb) },
                    (true, false) => unsafe { tile.$run::<ROWS_A_TILE, 1>(sr, xr, wb) },
                    (false, true) => unsafe { tile.$run::<1, 4>(sr, xr, wb) },
                    (false, false) => unsafe { tile.$run::<1, 1>(sr, xr, wb) },
                }
                r += if rows - r >= ROWS_A_TILE { ROWS_A_TILE } else { 1 };
            }
            b += if wide { 4 } else { 1 };
        }
    }};
}

/// The sizes an interleaved kernel's tile walks ([`Tile::vnni`], [`Tile::neon`]).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
struct Tile {
    /// Steps of 4 values of `k`.
    steps: usize,
    /// Bytes from one row of `x` to the next.
    x_stride: usize,
    /// Sums from one row of the output to the next.
    sums_stride: usize,
}

/// `vpdpbusd` on the interleaved layout, in tiles of up to [`ROWS_A_TILE`] rows × 4 blocks of
/// 16 channels ([`Tile::vnni`]); the lanes are the sums, with no reduction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dots_vnni(sums: &mut [i32], x: &[u8], rows: usize, w: &[i8]) {
    interleaved_tiles!(vnni, LANES, sums, x, rows, w.as_ptr());
}

#[cfg(target_arch = "x86_64")]
impl Tile {
    /// `R` rows × `B` blocks of 16 channels: each step loads the `B` blocks' 64 bytes once and
    /// broadcasts each row's 4 bytes once, `R · B` `vpdpbusd`s into as many registers (each
    /// weight load used by `R` rows: at one row a step the kernel waited on the cache).
    ///
    /// # Safety
    /// The CPU must have AVX-512 VNNI; `x` must hold `R` rows of `steps · 4` bytes at
    /// `x_stride`, `w` `B` blocks of `steps · 64` bytes end to end, `sums` `R` rows of `16 · B`
    /// values at `sums_stride`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn vnni<const R: usize, const B: usize>(&self, sums: *mut i32, x: *const u8, w: *const i8) {
        use std::arch::x86_64::*;
        let block_len = self.steps * 64;
        let mut acc = [[_mm512_setzero_si512(); B]; R];
        for q in 0..self.steps {
            // SAFETY: within the sizes the caller promises.
            unsafe {
                let mut wv = [_mm512_setzero_si512(); B];
                for (j, v) in wv.iter_mut().enumerate() {
                    *v = _mm512_loadu_si512(w.add(j * block_len + q * 64).cast());
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    let xb = _mm512_set1_epi32(x.add(r * self.x_stride + 4 * q).cast::<i32>().read_unaligned());
                    for (a, &v) in acc.iter_mut().zip(&wv) {
                        *a = _mm512_dpbusd_epi32(*a, xb, v);
                    }
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (j, &a) in acc.iter().enumerate() {
                // SAFETY: as above.
                unsafe { _mm512_storeu_si512(sums.add(r * self.sums_stride + j * LANES).cast(), a) };
            }
        }
    }
}

/// `udot` on the interleaved layout of blocks of 4 channels stored offset by 128, in tiles of
/// up to [`ROWS_A_TILE`] rows × 4 blocks ([`Tile::neon`]): the lanes are the sums of
/// `x · (q + 128)`, from which `128 · Σₖ x` of each row is taken back (exact in 32 bits:
/// `k` ≤ 2¹⁴ values of at most 255 · 255).
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon,dotprod")]
unsafe fn dots_neon(sums: &mut [i32], x: &[u8], rows: usize, w: &[i8]) {
    interleaved_tiles!(neon, NEON_LANES, &mut *sums, x, rows, w.as_ptr().cast::<u8>());
    let (k, n) = (x.len() / rows, sums.len() / rows);
    for (row, x) in sums.chunks_exact_mut(n).zip(x.chunks_exact(k)) {
        let offset = 128 * x.iter().map(|&v| i32::from(v)).sum::<i32>();
        for s in row {
            *s -= offset;
        }
    }
}

#[cfg(target_arch = "aarch64")]
impl Tile {
    /// `R` rows × `B` blocks of 4 channels: each step loads the `B` blocks' 16 bytes once and
    /// copies each row's 4 bytes to every lane once, `R · B` `udot`s into as many registers.
    ///
    /// # Safety
    /// The CPU must have the dot-product extension; `x` must hold `R` rows of `steps · 4`
    /// bytes at `x_stride`, `w` `B` blocks of `steps · 16` bytes end to end, `sums` `R` rows
    /// of `4 · B` values at `sums_stride`.
    #[inline]
    #[target_feature(enable = "neon,dotprod")]
    unsafe fn neon<const R: usize, const B: usize>(&self, sums: *mut i32, x: *const u8, w: *const u8) {
        use std::arch::aarch64::*;
        let block_len = self.steps * 16;
        let mut acc = [[vdupq_n_u32(0); B]; R];
        for q in 0..self.steps {
            // SAFETY: within the sizes the caller promises.
            unsafe {
                let mut wv = [vdupq_n_u8(0); B];
                for (j, v) in wv.iter_mut().enumerate() {
                    *v = vld1q_u8(w.add(j * block_len + q * 16));
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    let xb = vreinterpretq_u8_u32(vdupq_n_u32(
                        x.add(r * self.x_stride + 4 * q).cast::<u32>().read_unaligned(),
                    ));
                    for (a, &v) in acc.iter_mut().zip(&wv) {
                        *a = udot(*a, xb, v);
                    }
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (j, &a) in acc.iter().enumerate() {
                // SAFETY: as above.
                unsafe { vst1q_s32(sums.add(r * self.sums_stride + j * NEON_LANES), vreinterpretq_s32_u32(a)) };
            }
        }
    }
}

/// `acc + Σ` of each lane's 4 byte products of `a` and `b` (`udot`; its intrinsic is not
/// stable in this Rust).
///
/// # Safety
/// The CPU must have the dot-product extension.
#[cfg(target_arch = "aarch64")]
#[inline]
#[target_feature(enable = "neon,dotprod")]
unsafe fn udot(
    acc: std::arch::aarch64::uint32x4_t,
    a: std::arch::aarch64::uint8x16_t,
    b: std::arch::aarch64::uint8x16_t,
) -> std::arch::aarch64::uint32x4_t {
    let mut acc = acc;
    // SAFETY: register operands only; the caller promises the instruction exists.
    unsafe {
        std::arch::asm!(
            "udot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    const KERNELS: [Kernel; 4] = [Kernel::Portable, Kernel::Avx2, Kernel::Avx512Vnni, Kernel::NeonDot];

    /// The row-major kernels' sums against a plain loop, including extreme values
    /// (255 × −127 everywhere).
    #[test]
    fn the_row_major_kernels_give_the_exact_sums() {
        let k = 3 * K_BLOCK;
        let x: Vec<u8> = (0..k).map(|i| (i * 37 % 256) as u8).collect();
        let w: Vec<i8> = (0..7 * k).map(|i| ((i * 53 % 255) as i32 - 127) as i8).collect();
        let exact: Vec<i32> =
            w.chunks_exact(k).map(|row| row.iter().zip(&x).map(|(&a, &b)| i32::from(a) * i32::from(b)).sum()).collect();
        let extreme = (vec![255u8; k], vec![-127i8; 5 * k]);
        for kernel in [Kernel::Portable, Kernel::Avx2].into_iter().filter(|k| k.is_supported()) {
            let mut sums = vec![0; 7];
            // SAFETY: a kernel this CPU has.
            unsafe { dots_unchecked(&mut sums, &x, 1, &w, kernel) };
            assert_eq!(sums, exact, "{kernel:?}");
            let mut sums = vec![0; 5];
            // SAFETY: as above.
            unsafe { dots_unchecked(&mut sums, &extreme.0, 1, &extreme.1, kernel) };
            assert!(sums.iter().all(|&s| s == -255 * 127 * k as i32), "{kernel:?}: {sums:?}");
        }
    }

    /// Rows `[rows, n_in]` and a weight `[n_out, n_in]` of varied values of both signs.
    fn inputs(rows: usize, n_in: usize, n_out: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let x = (0..rows * n_in).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 3.0).collect();
        let w = (0..n_out * n_in).map(|i| (i * 104_729 % 997) as f32 / 498.5 - 1.0).collect();
        let bias = (0..n_out).map(|o| o as f32 * 0.01).collect();
        (x, w, bias)
    }

    /// Every kernel this CPU has (each with its own layout) gives the portable kernel's bits:
    /// the int32 sums are exact and the rest is the same arithmetic. Sizes that are not
    /// multiples of the blocks (130 channels: two partial blocks of 16; 70 inputs; 5 and 9 rows:
    /// tiles of 4 rows and single rows) and the extremes of the range included.
    #[test]
    fn every_kernel_gives_the_portable_kernels_bits() {
        for (rows, n_in, n_out) in [(5, 70, 130), (3, 384, 64), (1, 64, 1), (9, 200, 300)] {
            let (x, w, bias) = inputs(rows, n_in, n_out);
            let extreme_x: Vec<f32> = (0..rows * n_in).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
            let extreme_w = vec![-1.0f32; n_out * n_in];
            for (x, w) in [(&x, &w), (&extreme_x, &extreme_w)] {
                let qx = QuantizedRows::of(x, n_in);
                let run = |kernel| {
                    let mut out = vec![0f32; rows * n_out];
                    quantized_product(&mut out, &qx, &QuantizedMatrix::of(&[w.as_slice()], n_in, kernel), &bias, None);
                    out
                };
                let portable = run(Kernel::Portable);
                // TSBERT_Q8_KERNELS_EXPECTED (names, comma-separated) makes a kernel this CPU
                // lacks a failure rather than a skip: for runs on a given CPU (arm64 under qemu)
                if let Ok(expected) = std::env::var("TSBERT_Q8_KERNELS_EXPECTED") {
                    for name in expected.split(',') {
                        let kernel = KERNELS.into_iter().find(|k| k.name() == name).expect("a kernel's name");
                        assert!(kernel.is_supported(), "{name}: not on this CPU");
                    }
                }
                for kernel in KERNELS.into_iter().filter(|k| k.is_supported()) {
                    assert!(run(kernel) == portable, "{kernel:?} [{rows}, {n_in}] → {n_out}");
                }
            }
        }
    }

    /// Every value of a row of activations quantised (by the CPU's clone) is `v / scale`
    /// clamped to ±127 and rounded to the nearest integer, ties to even, NaN to 0.
    #[test]
    fn activations_round_to_the_nearest_integer_ties_to_even() {
        let mut row: Vec<f32> = (0..4001).map(|i| (i as f32 - 2000.0) * 0.0637).collect();
        row.extend([0.5, 1.5, 2.5, -0.5, -1.5, 126.5, -126.5, 127.0, f32::NAN, -0.0]);
        let (n, kp) = (row.len(), padded(row.len()));
        let q = QuantizedRows::of(&row, n);
        let inv = 1.0 / q.scales[0];
        let largest = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert_eq!(q.scales[0], largest / Q_MAX, "the row's largest magnitude over 127");
        for (k, &v) in row.iter().enumerate() {
            let x = f64::from(v * inv).clamp(-127.0, 127.0);
            let expected = if x.is_nan() { 0 } else { x.round_ties_even() as i32 };
            assert_eq!(i32::from(q.values[k]) - 128, expected, "{v}");
        }
        assert!(q.values[n..kp].iter().all(|&p| p == 128), "the padding is zero");
        // ties: a row scaled by exactly 1 (largest 127) rounds halves to even
        let ties = [127.0f32, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5];
        let q = QuantizedRows::of(&ties, ties.len());
        let got: Vec<i32> = q.values[..ties.len()].iter().map(|&p| i32::from(p) - 128).collect();
        assert_eq!(got, [127, 0, 2, 2, 0, -2, -2, 126]);
    }

    /// With an activation, each value is the activation of the value without it, the same bits
    /// (computed by the task that scaled it instead of a pass of its own).
    #[test]
    fn the_activation_is_applied_to_the_values_the_product_gives() {
        let (rows, n_in, n_out) = (9, 200, 300);
        let (x, w, bias) = inputs(rows, n_in, n_out);
        let (qx, qw) = (QuantizedRows::of(&x, n_in), QuantizedMatrix::of(&[&w], n_in, Kernel::detect()));
        let mut plain = vec![0f32; rows * n_out];
        quantized_product(&mut plain, &qx, &qw, &bias, None);
        for activation in [Activation::Gelu, Activation::GeluTanh, Activation::Relu] {
            let mut expected = plain.clone();
            activate(&mut expected, activation);
            let mut got = vec![0f32; rows * n_out];
            quantized_product(&mut got, &qx, &qw, &bias, Some(activation));
            assert!(got == expected, "{activation:?}");
        }
    }

    /// The quantised product against the f32 one: within the rounding the scales allow.
    #[test]
    fn the_quantized_product_is_within_its_rounding_of_the_f32_one() {
        let (rows, n_in, n_out) = (5, 70, 130);
        let (x, w, bias) = inputs(rows, n_in, n_out);
        let qx = QuantizedRows::of(&x, n_in);
        let qw = QuantizedMatrix::of(&[&w], n_in, Kernel::detect());
        let mut out = vec![0f32; rows * n_out];
        quantized_product(&mut out, &qx, &qw, &bias, None);
        for r in 0..rows {
            for o in 0..n_out {
                let (xr, wo) = (&x[r * n_in..(r + 1) * n_in], &w[o * n_in..(o + 1) * n_in]);
                let exact: f32 = bias[o] + xr.iter().zip(wo).map(|(a, b)| a * b).sum::<f32>();
                // each product is off by at most |x|·Δw + |w|·Δx + Δx·Δw, Δ half a step
                let (sx, sw) = (qx.scales[r], qw.scales[o]);
                let bound: f32 =
                    xr.iter().zip(wo).map(|(a, b)| a.abs() * sw / 2.0 + b.abs() * sx / 2.0 + sx * sw / 4.0).sum();
                let got = out[r * n_out + o];
                assert!((got - exact).abs() <= bound * 1.001 + 1e-5, "[{r}, {o}]: {got} vs {exact}");
            }
        }
    }
}
