//! f32 products `out += x · Wᵀ` by a dense layer's weight in its stored `[out, in]` layout —
//! the model's own tensor, read in place, no copy beside it — as dot products along `in`, for
//! the inference pass. `gemm` reading that layout repacks the whole weight at every call: at
//! the few rows of a short sentence that ran at half the speed of a product by an `[in, out]`
//! copy, which is what the inference pass kept before (a second copy of every dense layer).
//!
//! A tile of 4 rows × 4 output channels a step: 8 vector loads for 16 fused multiply-adds into
//! 16 accumulators of the CPU's widest f32 vectors, the 4 channels' sums of a row reduced
//! together at the end; the 1 to 3 rows left after the last whole tile in one tile of their
//! number (row by row, their loads of the weights outnumbered their multiply-adds). Tasks of 64
//! rows × 64 channels (their values stay in the core's cache), run over the compute threads;
//! `in` in chunks of 768, each chunk's sums added onto the output, the first chunk's onto the
//! bias when there is one, and the activation applied by the task once its block is summed
//! ([`Epilogue`]): the inference pass writes no bias and applies no activation in passes of
//! their own. The matrices of one product (queries, keys and values) share one parallel
//! section.
//! Each output value is summed in one fixed order whatever the threads, so results do not
//! depend on their number. With AVX-512, from [`PANEL_ROWS`] rows the outer-product kernel of
//! [`crate::ops::panels`] takes over (a panel of the weight copied at a time, each copy used by
//! every row). From [`GEMM_ROWS`] rows `gemm` takes over, reading the weight transposed in
//! place: there its repacking is paid back and its blocking for the caches wins.
//!
//! [`PANEL_ROWS`]: crate::ops::panels::PANEL_ROWS
//!
//! Kernels ([`DotKernel`], picked at run time; `TSBERT_F32_KERNEL=avx512|avx2|packed` forces
//! one): AVX-512F, AVX2 with FMA, and on other CPUs (arm64, x86-64 before AVX2) none — the
//! inference pass then keeps an `[in, out]` copy for `gemm` ([`DotKernel::Packed`]).

use rayon::prelude::*;

use crate::config::Activation;
use crate::ops::activation::activate;
use crate::ops::attention::Shared;
use crate::ops::cpu_kernel::CpuKernel;
use crate::ops::matmul::{product, threads_for, View, SERIAL_PRODUCT};

/// Rows of a task.
const ROWS_A_TASK: usize = 64;
/// Output channels of a task.
const OUTPUTS_A_TASK: usize = 64;
/// Values of `in` a pass over a task's tiles sums before adding onto the output.
#[cfg(target_arch = "x86_64")]
const IN_CHUNK: usize = 768;
/// Rows from which [`dots`] hands the product to `gemm` (a BERT-base-sized batch of 32 × 128
/// rows: 8.1 against 7.3 sequences/s; MiniLM's batches of 32 sentences, up to ~2000 rows, ran
/// faster on the dot kernel).
pub const GEMM_ROWS: usize = 2048;

/// How the inference pass multiplies by an f32 dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DotKernel {
    /// [`dots`] with AVX-512F vectors (16 lanes).
    Avx512,
    /// [`dots`] with AVX2 vectors and FMA (8 lanes).
    Avx2,
    /// No dot kernel: `gemm` on an `[in, out]` copy of the weight (any CPU).
    Packed,
}

impl CpuKernel for DotKernel {
    const ALL: &'static [Self] = &[Self::Avx512, Self::Avx2, Self::Packed];
    const VARIABLE: &'static str = "TSBERT_F32_KERNEL";

    fn name(self) -> &'static str {
        match self {
            Self::Avx512 => "avx512",
            Self::Avx2 => "avx2",
            Self::Packed => "packed",
        }
    }

    fn is_supported(self) -> bool {
        match self {
            Self::Packed => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// What a product writes besides `x · Wᵀ`: by default nothing (the product is added onto the
/// output).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Epilogue<'a> {
    /// The bias, one value an output channel (the weights' channels side by side): the output
    /// becomes `bias + x · Wᵀ`, whatever it held (the same bits as the bias written first and
    /// the product added onto it).
    pub bias: Option<&'a [f32]>,
    /// Applied to every output value once its sum is complete, by the task that summed it
    /// (while the values are in its cache): no pass of its own over the output.
    pub activation: Option<Activation>,
}

/// `out[r · out_stride + o] += Σₖ x[r · n_in + k] · w[o · n_in + k]` for every row `r` of `x`
/// (`[rows, n_in]` row-major) and every row `o` of `weights`, the matrices side by side (each
/// `[n_out_i, n_in]` row-major, into the output's columns one after another), with `epilogue`
/// (a bias instead of the output's values, an activation after), by `kernel` (from
/// [`GEMM_ROWS`] rows by `gemm`), over the compute threads when the product is large enough to
/// gain from them: one parallel section for all the matrices.
///
/// # Panics
/// When `kernel` is [`DotKernel::Packed`] or one this CPU lacks, or the sizes disagree.
// on CPUs other than x86-64 there are no tiles: every kernel is refused above the tasks, whose
// body is left with nothing to run
#[cfg_attr(not(target_arch = "x86_64"), allow(unreachable_code, unused_variables))]
pub(crate) fn dots(
    out: &mut [f32],
    out_stride: usize,
    x: &[f32],
    (weights, n_in): (&[&[f32]], usize),
    epilogue: Epilogue<'_>,
    kernel: DotKernel,
) {
    assert!(kernel != DotKernel::Packed && kernel.is_supported(), "no dot kernel {kernel:?} on this CPU");
    assert!(n_in > 0 && x.len().is_multiple_of(n_in) && weights.iter().all(|w| w.len().is_multiple_of(n_in)));
    let rows = x.len() / n_in;
    let n_out = weights.iter().map(|w| w.len() / n_in).sum::<usize>();
    if rows == 0 || n_out == 0 {
        return;
    }
    assert!(n_out <= out_stride && out.len() >= (rows - 1) * out_stride + n_out, "dots: output too small");
    assert!(epilogue.bias.is_none_or(|b| b.len() == n_out), "dots: a bias of another length than the outputs");
    if rows >= GEMM_ROWS {
        let views: Vec<_> = weights.iter().map(|w| (View::transposed(w.as_ptr(), n_in), w.len() / n_in)).collect();
        // SAFETY: each view is a weight of n × n_in values read transposed: n_in × n.
        unsafe { by_gemm(out, out_stride, (x, n_in), &views, epilogue) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if kernel == DotKernel::Avx512 && crate::ops::panels::takes(rows) {
        crate::ops::panels::product(out, out_stride, x, (weights, n_in), epilogue);
        return;
    }
    let blocks = channel_blocks((weights, n_in), OUTPUTS_A_TASK);
    let shared = Shared(out.as_mut_ptr());
    let task = |t: usize| {
        let (r0, (i, o0, c0)) = ((t / blocks.len()) * ROWS_A_TASK, blocks[t % blocks.len()]);
        let w = weights[i];
        let part = Part {
            rows: (rows - r0).min(ROWS_A_TASK),
            n_out: (w.len() / n_in - o0).min(OUTPUTS_A_TASK),
            n_in,
            out_stride,
        };
        let bias = epilogue.bias.map_or(std::ptr::null(), |b| b[c0..].as_ptr());
        // SAFETY: the kernel is one this CPU has (asserted); the task's rows of `x`, rows of `w`,
        // channels of the bias and block of `out` lie within them (sizes asserted), and no two
        // tasks write the same block of `out`.
        unsafe {
            let (o, x, w) =
                (shared.get().add(r0 * out_stride + c0), x.as_ptr().add(r0 * n_in), w.as_ptr().add(o0 * n_in));
            match kernel {
                #[cfg(target_arch = "x86_64")]
                DotKernel::Avx512 => part.run_avx512(o, x, w, bias),
                #[cfg(target_arch = "x86_64")]
                DotKernel::Avx2 => part.run_avx2(o, x, w, bias),
                _ => unreachable!("asserted above"),
            }
            if let Some(activation) = epilogue.activation {
                for r in 0..part.rows {
                    activate(std::slice::from_raw_parts_mut(o.add(r * out_stride), part.n_out), activation);
                }
            }
        }
    };
    let tasks = rows.div_ceil(ROWS_A_TASK) * blocks.len();
    if rows * n_out * n_in < SERIAL_PRODUCT || rayon::current_num_threads() == 1 {
        (0..tasks).for_each(task);
    } else {
        (0..tasks).into_par_iter().for_each(task);
    }
}

/// Every block of `width` output channels of the matrices side by side (each `[n, n_in]`; the
/// last block of a matrix may be narrower): its (matrix, first channel in the matrix, first
/// column of the output).
pub(crate) fn channel_blocks((weights, n_in): (&[&[f32]], usize), width: usize) -> Vec<(usize, usize, usize)> {
    let mut blocks = Vec::new();
    let mut column = 0;
    for (i, w) in weights.iter().enumerate() {
        let n = w.len() / n_in;
        blocks.extend((0..n).step_by(width).map(|o0| (i, o0, column + o0)));
        column += n;
    }
    blocks
}

/// `out = activation(bias + x · W)` by `gemm`, `W` the matrices of `weights` side by side (each
/// a view of `[n_in, n]` and its `n`, into the output's columns one after another; `out` rows
/// `out_stride` apart, `x` `[rows, n_in]` row-major): the bias written first, the activation
/// applied after, both over the compute threads. What [`dots`] runs from [`GEMM_ROWS`] rows
/// (each weight read transposed in place), and the inference pass on a CPU without a dot
/// kernel (an `[in, out]` copy).
///
/// # Safety
/// Each view must address `n_in × n` values.
///
/// # Panics
/// When `out` is too small or the bias is not one value a column.
pub(crate) unsafe fn by_gemm(
    out: &mut [f32],
    out_stride: usize,
    (x, n_in): (&[f32], usize),
    weights: &[(View<f32>, usize)],
    epilogue: Epilogue<'_>,
) {
    let rows = x.len() / n_in;
    let n_out = weights.iter().map(|&(_, n)| n).sum::<usize>();
    if rows == 0 || n_out == 0 {
        return;
    }
    assert!(n_out <= out_stride && out.len() >= (rows - 1) * out_stride + n_out, "by_gemm: output too small");
    assert!(epilogue.bias.is_none_or(|b| b.len() == n_out), "by_gemm: a bias of another length than the outputs");
    let out = &mut out[..(rows - 1) * out_stride + n_out];
    if let Some(bias) = epilogue.bias {
        out.par_chunks_mut(out_stride).for_each(|row| row[..n_out].copy_from_slice(bias));
    }
    let mut column = 0;
    for &(w, n) in weights {
        // SAFETY: `out` holds rows of n_out values out_stride apart (asserted), `x` rows × n_in
        // values, `w` n_in × n (as the caller promises), into columns column..column + n ≤ n_out.
        unsafe {
            product(
                (rows, n, n_in),
                out.as_mut_ptr().add(column),
                out_stride,
                (View::rows(x.as_ptr(), n_in), w),
                1.0,
                true,
                threads_for(rows * n_in * n),
            );
        }
        column += n;
    }
    if let Some(activation) = epilogue.activation {
        out.par_chunks_mut(out_stride).for_each(|row| activate(&mut row[..n_out], activation));
    }
}

/// The sizes of one task's block: `rows` rows of `x` by `n_out` rows of `w`, both `n_in` values
/// long, into `out` rows `out_stride` apart.
#[derive(Clone, Copy)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Part {
    rows: usize,
    n_out: usize,
    n_in: usize,
    out_stride: usize,
}

#[cfg(target_arch = "x86_64")]
impl Part {
    /// The block by AVX-512F tiles.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; `out`, `x` and `w` must address the block (see [`Part`]),
    /// `bias` its channels' biases or be null (the sums added onto `out`).
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512(self, out: *mut f32, x: *const f32, w: *const f32, bias: *const f32) {
        // SAFETY: as the caller promises.
        unsafe { self.run::<simd::Avx512>(out, x, w, bias) }
    }

    /// The block by AVX2 tiles.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `out`, `x` and `w` must address the block.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(self, out: *mut f32, x: *const f32, w: *const f32, bias: *const f32) {
        // SAFETY: as the caller promises.
        unsafe { self.run::<simd::Avx2>(out, x, w, bias) }
    }

    /// Every tile of the block, a chunk of `in` at a time: 4 output channels (then single ones)
    /// by every row tile of 4 rows (then one of the 1 to 3 rows left), so that the channels'
    /// weights are read from the nearest cache by each row tile. The first chunk's sums go onto
    /// `bias` (when not null) instead of `out`.
    ///
    /// # Safety
    /// The CPU must have `V`'s instructions; as [`Part::run_avx512`].
    #[inline(always)]
    unsafe fn run<V: simd::Lanes>(self, out: *mut f32, x: *const f32, w: *const f32, bias: *const f32) {
        let Part { rows, n_out, n_in, out_stride } = self;
        let mut k0 = 0;
        while k0 < n_in {
            let tile = Tile { len: (n_in - k0).min(IN_CHUNK), stride: n_in, out_stride };
            let mut o = 0;
            while o < n_out {
                let wide = n_out - o >= 4;
                let mut r = 0;
                while r < rows {
                    let tall = (rows - r).min(4);
                    // SAFETY: rows r.. and channels o.. of the block, values k0.. of `in`.
                    unsafe {
                        let (op, xp, wp) = (out.add(r * out_stride + o), x.add(r * n_in + k0), w.add(o * n_in + k0));
                        let onto = if k0 == 0 && !bias.is_null() { bias.add(o) } else { std::ptr::null() };
                        let first = r == 0;
                        match tall {
                            4 => tile.rows::<V, 4>(op, xp, wp, onto, wide, first),
                            3 => tile.rows::<V, 3>(op, xp, wp, onto, wide, first),
                            2 => tile.rows::<V, 2>(op, xp, wp, onto, wide, first),
                            _ => tile.rows::<V, 1>(op, xp, wp, onto, wide, first),
                        }
                    }
                    r += tall;
                }
                o += if wide { 4 } else { 1 };
            }
            k0 += tile.len;
        }
    }
}

/// The sizes a [`Tile::run`] walks: `len` values of `in`, rows of `x` and `w` `stride` apart,
/// rows of `out` `out_stride` apart.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Tile {
    len: usize,
    stride: usize,
    out_stride: usize,
}

#[cfg(target_arch = "x86_64")]
impl Tile {
    /// [`Tile::run`] for `R` rows by 4 channels (`wide`) or 1, with the prefetch in the `first`
    /// row tile of a group of 4 channels.
    ///
    /// # Safety
    /// As [`Tile::run`].
    #[inline(always)]
    unsafe fn rows<V: simd::Lanes, const R: usize>(
        self,
        out: *mut f32,
        x: *const f32,
        w: *const f32,
        onto: *const f32,
        wide: bool,
        first: bool,
    ) {
        // SAFETY: as the caller promises.
        unsafe {
            match (wide, first) {
                (true, true) => self.run::<V, R, 4, true>(out, x, w, onto),
                (true, false) => self.run::<V, R, 4, false>(out, x, w, onto),
                (false, _) => self.run::<V, R, 1, false>(out, x, w, onto),
            }
        }
    }

    /// `out[r, c] += Σₖ x[r, k] · w[c, k]` for `R` rows and `C` channels (`C` 4 or 1), `k` over
    /// the tile's `len` values: `R · C` vector accumulators, the last partial vector loaded
    /// under a mask; with `PREFETCH` (the first row tile of a group of channels), the next
    /// `C` channels' weights fetched into the cache as it goes. With `onto` not null, `out[r, c]
    /// = onto[c] + Σₖ …` instead (the bias under the first chunk's sums).
    ///
    /// # Safety
    /// The CPU must have `V`'s instructions; `x` must address `R` rows, `w` `C` rows (each
    /// `len` values, `stride` apart), `out` `R` rows of `C` values (`out_stride` apart) and
    /// `onto`, when not null, `C` values.
    #[inline(always)]
    unsafe fn run<V: simd::Lanes, const R: usize, const C: usize, const PREFETCH: bool>(
        self,
        out: *mut f32,
        x: *const f32,
        w: *const f32,
        onto: *const f32,
    ) {
        let Tile { len, stride, out_stride } = self;
        // no closures in here: they would not inherit the caller's target features, and each
        // vector would cross a call through memory
        let mut acc = [[V::zero(); C]; R];
        let mut k = 0;
        // SAFETY (every load): within the rows the caller promises.
        while k + V::LANES <= len {
            let mut xv = [V::zero(); R];
            for (r, v) in xv.iter_mut().enumerate() {
                *v = unsafe { V::load(x.add(r * stride + k)) };
            }
            for c in 0..C {
                let column = unsafe { V::load(w.add(c * stride + k)) };
                for (a, &xr) in acc.iter_mut().zip(&xv) {
                    a[c] = unsafe { V::mul_add(xr, column, a[c]) };
                }
                if PREFETCH {
                    // the next channels' weights on their way from memory meanwhile (at a few
                    // rows each weight is read from memory once, and a row of it is too short a
                    // stream for the hardware prefetcher), into the core's L2 cache: fetched into
                    // L1 (`T0`) they evicted what the tiles were reading, and the products of 13
                    // to 32 rows by weights from memory ran at 100–140 instead of 130–180 GFLOP/s
                    // on 2 cores; a prefetch never faults, past the weight's end included
                    let next = w.wrapping_add((C + c) * stride + k);
                    unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(next.cast()) };
                }
            }
            k += V::LANES;
        }
        if k < len {
            let n = len - k;
            let mut xv = [V::zero(); R];
            for (r, v) in xv.iter_mut().enumerate() {
                *v = unsafe { V::load_first(x.add(r * stride + k), n) };
            }
            for c in 0..C {
                let column = unsafe { V::load_first(w.add(c * stride + k), n) };
                for (a, &xr) in acc.iter_mut().zip(&xv) {
                    a[c] = unsafe { V::mul_add(xr, column, a[c]) };
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            // SAFETY: row r of the output block, C values (and C values at `onto`).
            unsafe {
                let o = out.add(r * out_stride);
                let onto = if onto.is_null() { o.cast_const() } else { onto };
                if C == 4 {
                    V::add_sums_of_4(o, onto, [acc[0], acc[1], acc[2], acc[3]]);
                } else {
                    for (c, &a) in acc.iter().enumerate() {
                        *o.add(c) = *onto.add(c) + V::sum(a);
                    }
                }
            }
        }
    }
}

/// The f32 vectors the tiles run on.
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    /// A vector of f32 lanes. Every function needs the vector's instructions (`unsafe`: the
    /// caller's `target_feature` provides them) and, for the loads, `LANES` (or `n`) readable
    /// values.
    pub(super) trait Lanes: Copy {
        /// Values a vector.
        const LANES: usize;
        /// All zeros.
        unsafe fn zero() -> Self;
        /// `LANES` values from `p`.
        unsafe fn load(p: *const f32) -> Self;
        /// The first `n` (< `LANES`) values from `p`, zeros after (nothing read past them).
        unsafe fn load_first(p: *const f32, n: usize) -> Self;
        /// `a · b + c`, fused.
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self;
        /// The sum of the lanes.
        unsafe fn sum(v: Self) -> f32;
        /// `out[i] = onto[i] + Σ lanes of v[i]` for the 4 vectors (`onto` may be `out`).
        unsafe fn add_sums_of_4(out: *mut f32, onto: *const f32, v: [Self; 4]);
    }

    #[derive(Clone, Copy)]
    pub(super) struct Avx512(__m512);

    #[derive(Clone, Copy)]
    pub(super) struct Avx2(__m256);

    impl Avx512 {
        /// The two halves added: 8 lanes with the same sum.
        #[inline(always)]
        unsafe fn halves(self) -> Avx2 {
            let high = unsafe { _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(self.0))) };
            Avx2(unsafe { _mm256_add_ps(_mm512_castps512_ps256(self.0), high) })
        }
    }

    impl Lanes for Avx512 {
        const LANES: usize = 16;
        #[inline(always)]
        unsafe fn zero() -> Self {
            Self(unsafe { _mm512_setzero_ps() })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Self(unsafe { _mm512_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn load_first(p: *const f32, n: usize) -> Self {
            Self(unsafe { _mm512_maskz_loadu_ps(((1u32 << n) - 1) as u16, p) })
        }
        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            Self(unsafe { _mm512_fmadd_ps(a.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn sum(v: Self) -> f32 {
            unsafe { Avx2::sum(v.halves()) }
        }
        #[inline(always)]
        unsafe fn add_sums_of_4(out: *mut f32, onto: *const f32, v: [Self; 4]) {
            unsafe { Avx2::add_sums_of_4(out, onto, [v[0].halves(), v[1].halves(), v[2].halves(), v[3].halves()]) }
        }
    }

    impl Lanes for Avx2 {
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn zero() -> Self {
            Self(unsafe { _mm256_setzero_ps() })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            Self(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn load_first(p: *const f32, n: usize) -> Self {
            unsafe {
                let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
                Self(_mm256_maskload_ps(p, mask))
            }
        }
        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            Self(unsafe { _mm256_fmadd_ps(a.0, b.0, c.0) })
        }
        #[inline(always)]
        unsafe fn sum(v: Self) -> f32 {
            unsafe {
                let s = _mm_add_ps(_mm256_castps256_ps128(v.0), _mm256_extractf128_ps::<1>(v.0));
                let s = _mm_hadd_ps(s, s);
                _mm_cvtss_f32(_mm_hadd_ps(s, s))
            }
        }
        #[inline(always)]
        unsafe fn add_sums_of_4(out: *mut f32, onto: *const f32, v: [Self; 4]) {
            unsafe {
                // [a0+a1, a2+a3, b0+b1, b2+b3 | a4+a5, …], then [Σa₀₋₃, Σb₀₋₃, Σc₀₋₃, Σd₀₋₃ | Σa₄₋₇, …]
                let ab = _mm256_hadd_ps(v[0].0, v[1].0);
                let cd = _mm256_hadd_ps(v[2].0, v[3].0);
                let abcd = _mm256_hadd_ps(ab, cd);
                let sums = _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps::<1>(abcd));
                _mm_storeu_ps(out, _mm_add_ps(_mm_loadu_ps(onto), sums));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each dot kernel this CPU has against a plain f64 loop, onto a non-zero output with a row
    /// stride wider than the product (as the inference pass writes a layer into its columns of
    /// a wider buffer): sizes that are not multiples of the tiles (rows 1, 3, 5, 7 and 70:
    /// whole tiles and 1 to 3 rows after them, partial tasks; 130 channels; `in` 19, 200 and
    /// 1000: partial vectors and two chunks), within f32 rounding.
    #[test]
    fn every_dot_kernel_gives_the_exact_products_within_rounding() {
        let kernels: Vec<_> =
            DotKernel::ALL.iter().copied().filter(|&k| k != DotKernel::Packed && k.is_supported()).collect();
        // (from PANEL_ROWS rows, the panels of AVX-512: a partial panel, `in` past a block of
        // 768 and not a multiple of 16, a tile of 1 to 11 rows after the whole ones, rows of
        // 4 KiB and 12 KiB copied with padding)
        for (rows, n_in, n_out) in [
            (1, 19, 130),
            (3, 19, 130),
            (5, 200, 7),
            (7, 200, 9),
            (70, 1000, 130),
            (4, 16, 4),
            (130, 200, 130),
            (100, 1000, 70),
            (97, 16, 33),
            (100, 1024, 40),
            (97, 3072, 33),
        ] {
            let x: Vec<f32> = (0..rows * n_in).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 3.0).collect();
            let w: Vec<f32> = (0..n_out * n_in).map(|i| (i * 104_729 % 997) as f32 / 498.5 - 1.0).collect();
            let stride = n_out + 3;
            let start: Vec<f32> = (0..rows * stride).map(|i| (i % 11) as f32 - 5.0).collect();
            for &kernel in &kernels {
                let mut out = start.clone();
                dots(&mut out, stride, &x, (&[&w], n_in), Epilogue::default(), kernel);
                for r in 0..rows {
                    for o in 0..stride {
                        let (got, before) = (out[r * stride + o], start[r * stride + o]);
                        if o >= n_out {
                            assert_eq!(got, before, "{kernel:?}: column {o} past the product was written");
                            continue;
                        }
                        let (xr, wo) = (&x[r * n_in..(r + 1) * n_in], &w[o * n_in..(o + 1) * n_in]);
                        let exact = f64::from(before)
                            + xr.iter().zip(wo).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum::<f64>();
                        let scale: f64 = xr.iter().zip(wo).map(|(&a, &b)| f64::from((a * b).abs())).sum::<f64>() + 5.0;
                        assert!(
                            (f64::from(got) - exact).abs() <= scale * 1e-6,
                            "{kernel:?} [{rows}, {n_in}] → {n_out}, [{r}, {o}]: {got} vs {exact}"
                        );
                    }
                }
            }
        }
    }

    /// The epilogue over several matrices side by side gives the bits of the plain steps: the
    /// bias written first, each matrix's product added onto its columns, the activation after —
    /// by the tiles (70 rows: a task of 64 and one of 6), by the panels (130 rows, with AVX-512)
    /// and by `gemm` (from `GEMM_ROWS`).
    #[test]
    fn the_epilogue_gives_the_bits_of_bias_product_and_activation_in_turn() {
        let n_in = 40;
        let widths = [70, 9, 130];
        let weights: Vec<Vec<f32>> =
            widths.iter().map(|&n| (0..n * n_in).map(|i| (i * 104_729 % 997) as f32 / 498.5 - 1.0).collect()).collect();
        let n_out: usize = widths.iter().sum();
        let bias: Vec<f32> = (0..n_out).map(|i| (i % 7) as f32 * 0.3 - 1.0).collect();
        let stride = n_out + 5;
        for kernel in DotKernel::ALL.iter().copied().filter(|&k| k != DotKernel::Packed && k.is_supported()) {
            for rows in [70, 130, GEMM_ROWS] {
                let x: Vec<f32> = (0..rows * n_in).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.2).collect();
                let start: Vec<f32> = (0..rows * stride).map(|i| (i % 11) as f32 - 5.0).collect();
                let mut expected = start.clone();
                let mut column = 0;
                for (w, &n) in weights.iter().zip(&widths) {
                    for row in expected.chunks_mut(stride) {
                        row[column..column + n].copy_from_slice(&bias[column..column + n]);
                    }
                    dots(&mut expected[column..], stride, &x, (&[w], n_in), Epilogue::default(), kernel);
                    column += n;
                }
                for row in expected.chunks_mut(stride) {
                    activate(&mut row[..n_out], Activation::Gelu);
                }
                let mut got = start.clone();
                let parts: Vec<&[f32]> = weights.iter().map(Vec::as_slice).collect();
                let epilogue = Epilogue { bias: Some(&bias), activation: Some(Activation::Gelu) };
                dots(&mut got, stride, &x, (&parts, n_in), epilogue, kernel);
                assert!(got == expected, "{kernel:?}, {rows} rows");
            }
        }
    }

    /// A row's products are the same bits whatever rows are multiplied with it (in a tile of 4
    /// rows or alone): a sentence embeds the same alone or in a batch.
    #[test]
    fn a_rows_products_do_not_depend_on_the_rows_beside_it() {
        let (n_in, n_out) = (200, 12);
        let w: Vec<f32> = (0..n_out * n_in).map(|i| (i * 104_729 % 997) as f32 / 498.5 - 1.0).collect();
        for kernel in DotKernel::ALL.iter().copied().filter(|&k| k != DotKernel::Packed && k.is_supported()) {
            for rows in 1..=7 {
                let x: Vec<f32> = (0..rows * n_in).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 3.0).collect();
                let mut together = vec![0f32; rows * n_out];
                dots(&mut together, n_out, &x, (&[&w], n_in), Epilogue::default(), kernel);
                for (r, row) in x.chunks_exact(n_in).enumerate() {
                    let mut alone = vec![0f32; n_out];
                    dots(&mut alone, n_out, row, (&[&w], n_in), Epilogue::default(), kernel);
                    assert_eq!(alone, together[r * n_out..(r + 1) * n_out], "{kernel:?}: row {r} of {rows}");
                }
            }
        }
    }

    /// From `PANEL_ROWS` (96) rows (the panels, with AVX-512) too, a row's products do not
    /// depend on the rows beside it: the same rows in another order, in another batch, give the
    /// same bits.
    #[test]
    fn in_the_panels_a_rows_products_do_not_depend_on_the_rows_beside_it() {
        for (n_in, rows) in [(200, 96), (200, 101), (200, 109), (1024, 101)] {
            rows_beside_in_the_panels(n_in, rows);
        }
    }

    /// [`in_the_panels_a_rows_products_do_not_depend_on_the_rows_beside_it`] at `rows` rows of
    /// `n_in` values.
    fn rows_beside_in_the_panels(n_in: usize, rows: usize) {
        let n_out = 40;
        let w: Vec<f32> = (0..n_out * n_in).map(|i| (i * 104_729 % 997) as f32 / 498.5 - 1.0).collect();
        for kernel in DotKernel::ALL.iter().copied().filter(|&k| k != DotKernel::Packed && k.is_supported()) {
            let x: Vec<f32> = (0..rows * n_in).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 3.0).collect();
            let mut together = vec![0f32; rows * n_out];
            dots(&mut together, n_out, &x, (&[&w], n_in), Epilogue::default(), kernel);
            // the first 5 rows moved to the end, and one row more
            let mut moved: Vec<f32> = x[5 * n_in..].iter().chain(&x[..5 * n_in]).copied().collect();
            moved.extend_from_slice(&x[..n_in]);
            let mut other = vec![0f32; (rows + 1) * n_out];
            dots(&mut other, n_out, &moved, (&[&w], n_in), Epilogue::default(), kernel);
            for r in 0..rows {
                let at = (r + rows - 5) % rows;
                assert_eq!(
                    other[at * n_out..(at + 1) * n_out],
                    together[r * n_out..(r + 1) * n_out],
                    "{kernel:?}: row {r} of {rows}"
                );
            }
        }
    }

    /// One thread or several, the same bits (each value is summed in one fixed order).
    #[test]
    fn the_threads_do_not_change_the_bits() {
        let Some(kernel) = DotKernel::ALL.iter().copied().find(|&k| k != DotKernel::Packed && k.is_supported()) else {
            return;
        };
        let (rows, n_in, n_out) = (150, 300, 200);
        let x: Vec<f32> = (0..rows * n_in).map(|i| (i % 13) as f32 * 0.37 - 2.0).collect();
        let w: Vec<f32> = (0..n_out * n_in).map(|i| (i % 17) as f32 * 0.11 - 0.9).collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut out = vec![0f32; rows * n_out];
            pool.install(|| dots(&mut out, n_out, &x, (&[&w], n_in), Epilogue::default(), kernel));
            out
        };
        assert!(run(1) == run(3));
    }

    /// The packed kernel and the forced-name lookup: `TSBERT_F32_KERNEL=packed` gives the kernel
    /// any CPU runs, and `dots` refuses it (the inference pass multiplies by a copy instead).
    #[test]
    fn the_packed_kernel_is_the_fallback_and_dots_refuses_it() {
        assert!(DotKernel::Packed.is_supported());
        assert_eq!(*DotKernel::ALL.last().unwrap(), DotKernel::Packed);
        let refused = std::panic::catch_unwind(|| {
            dots(&mut [0.0], 1, &[1.0], (&[&[1.0]], 1), Epilogue::default(), DotKernel::Packed)
        });
        assert!(refused.is_err());
    }
}
