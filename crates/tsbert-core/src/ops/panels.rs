//! f32 products `out = x · Wᵀ` by the outer products of AVX-512 registers, for [`dots`] at many
//! rows (from [`PANEL_ROWS`]): the weight, stored `[out, in]`, is copied a panel of 32 output
//! channels and 768 values of `in` at a time into a small buffer laid out `[in][32]` (16 × 16
//! transposes; the next panel's weights fetched into L2 meanwhile), and every tile of 12 rows
//! multiplies by it: 24 accumulators of 16 channels, each row's value broadcast, no horizontal
//! sums. At BERT-base's 128 rows by a weight read from memory it ran at 204–214 GFLOP/s on 2
//! Zen 4 cores against the dot kernel's ≤ 202 (a one-off timing test; bench/RESULTS.md).
//! A model loaded to infer only holds its weights packed so once
//! ([`PanelMatrix`](crate::ops::panel_matrix::PanelMatrix)): its
//! products read the panels in place, with no copy to pay back, at any number of rows (BERT-base
//! at 128 rows 7–14% faster than copying them; MiniLM's short sentences faster than the dot
//! kernel).
//!
//! Each output value starts from the bias (or the output's value: `out +=` without a bias) and
//! adds its products in the order of `in`, whatever the threads and the tile its row falls
//! in: results do not depend on the thread count, and a row gives the same bits in any batch
//! that reaches this kernel. Inputs whose rows are a multiple of 4 KiB long (`in` of 1024,
//! 3072…: BERT-base's second feed-forward layer) are copied first with 64 bytes more a row: read
//! in place, the 12 rows of a tile share the L1 cache's sets, and broadcasting from them ran
//! slower than [`dots`]'s dot kernel, which such inputs took before.
//!
//! [`dots`]: crate::ops::dots::dots

use std::arch::x86_64::*;

use rayon::prelude::*;

use crate::ops::activation::activate;
use crate::ops::attention::Shared;
use crate::ops::dots::{channel_blocks, Epilogue};

/// Rows from which [`dots`](crate::ops::dots::dots) multiplies by panels (fewer rows do not pay
/// for copying the weight).
pub(crate) const PANEL_ROWS: usize = 96;
/// Rows a tile.
const MR: usize = 12;
/// Output channels a panel: two vectors of 16.
pub(crate) const NR: usize = 32;
/// Values of `in` a panel holds.
const KC: usize = 768;
/// Rows a task runs through one panel (its copy of the panel used by all of them).
const ROWS_A_TASK: usize = 384;

/// Whether [`product`] takes a product of `rows` rows (on a CPU with AVX-512F, which the
/// caller's kernel says).
pub(crate) fn takes(rows: usize) -> bool {
    rows >= PANEL_ROWS
}

/// Values a row of `x` is copied with more when its rows are a multiple of 4 KiB long (one
/// cache line: consecutive rows then fall in different sets of the L1 cache).
const ROW_PADDING: usize = 16;

/// `x` (`[rows, n_in]` row-major) as the tiles read it, and its row stride: itself, or a copy
/// with [`ROW_PADDING`] more values a row when its rows are a multiple of 4 KiB long.
fn tiles_input(x: &[f32], n_in: usize) -> (std::borrow::Cow<'_, [f32]>, usize) {
    if !(n_in * 4).is_multiple_of(4096) {
        return (std::borrow::Cow::Borrowed(x), n_in);
    }
    let (stride, rows) = (n_in + ROW_PADDING, x.len() / n_in);
    // written once, not cleared first (clearing it cost as much as the copy saved)
    let mut padded = Vec::with_capacity(rows * stride);
    padded.spare_capacity_mut()[..rows * stride].par_chunks_mut(stride).zip(x.par_chunks(n_in)).for_each(
        |(to, row)| {
            // SAFETY: `to` has room for the row's n_in values and the padding after them.
            unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), to.as_mut_ptr().cast::<f32>(), n_in) };
            to[n_in..].iter_mut().for_each(|v| {
                v.write(0.0);
            });
        },
    );
    // SAFETY: every one of the rows · stride values was written just above.
    unsafe { padded.set_len(rows * stride) };
    (std::borrow::Cow::Owned(padded), stride)
}

/// `out[r · out_stride + c] = epilogue(Σₖ x[r · n_in + k] · w[o · n_in + k])` as
/// [`dots`](crate::ops::dots::dots) gives it (the matrices of `weights` side by side, the bias
/// instead of the output's values when there is one, then the activation), by panels over the
/// compute threads.
///
/// # Panics
/// When this CPU lacks AVX-512F or the sizes disagree (as `dots` checks them).
pub(crate) fn product(
    out: &mut [f32],
    out_stride: usize,
    x: &[f32],
    (weights, n_in): (&[&[f32]], usize),
    epilogue: Epilogue<'_>,
) {
    let sources = channel_blocks((weights, n_in), NR)
        .into_iter()
        .map(|(i, o0, c0)| (Source::Rows { w: weights[i], o0 }, (weights[i].len() / n_in - o0).min(NR), c0))
        .collect();
    by_panels(out, out_stride, (x, n_in), sources, epilogue);
}

/// [`product`] by a weight packed already (panel after panel of `n_in × 32` values, channels
/// past `n_out` zeros: [`PanelMatrix`]), its panels read in place.
///
/// # Panics
/// When this CPU lacks AVX-512F or the sizes disagree.
///
/// [`PanelMatrix`]: crate::ops::panel_matrix::PanelMatrix
pub(crate) fn packed_product(
    out: &mut [f32],
    out_stride: usize,
    x: &[f32],
    (panels, n_in, n_out): (&[f32], usize, usize),
    epilogue: Epilogue<'_>,
) {
    assert_eq!(panels.len(), n_out.div_ceil(NR) * NR * n_in, "panels: a packed weight of another size");
    let sources = panels
        .chunks_exact(NR * n_in)
        .enumerate()
        .map(|(p, panel)| (Source::Packed(panel), (n_out - p * NR).min(NR), p * NR))
        .collect();
    by_panels(out, out_stride, (x, n_in), sources, epilogue);
}

/// Where a task's panel comes from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// Copied from channels `o0..` of the weight `w` (`[n, n_in]` row-major) by the task.
    Rows { w: &'a [f32], o0: usize },
    /// Packed already, `[n_in][32]`: read in place.
    Packed(&'a [f32]),
}

/// The product of `x` by `sources` (each panel, its channels and its first output column),
/// tasks of a panel by a block of rows over the compute threads.
fn by_panels(
    out: &mut [f32],
    out_stride: usize,
    (x, n_in): (&[f32], usize),
    sources: Vec<(Source<'_>, usize, usize)>,
    epilogue: Epilogue<'_>,
) {
    assert!(std::arch::is_x86_feature_detected!("avx512f"), "panels: no AVX-512F on this CPU");
    let rows = x.len() / n_in;
    let n_out = sources.last().map_or(0, |&(_, channels, c0)| c0 + channels);
    if rows == 0 || n_out == 0 {
        return;
    }
    assert!(n_out <= out_stride && out.len() >= (rows - 1) * out_stride + n_out, "panels: output too small");
    assert!(epilogue.bias.is_none_or(|b| b.len() == n_out), "panels: a bias of another length than the outputs");
    let (x, x_stride) = tiles_input(x, n_in);
    let x = &x[..];
    let shared = Shared(out.as_mut_ptr());
    let blocks = rows.div_ceil(ROWS_A_TASK);
    let tasks = sources.len() * blocks;
    (0..tasks).into_par_iter().for_each(|t| {
        // the task's copy of its panel, on its thread's stack: a heap block beside the pass's
        // buffers kept mimalloc from reusing their space (MiniLM at batch 32: +13 MiB at the
        // peak); every value read is written first (`Task::pack`)
        let mut panel = std::mem::MaybeUninit::<[f32; KC * NR]>::uninit();
        let buffer = panel.as_mut_ptr().cast::<f32>();
        let ((source, channels, c0), r0) = (sources[t / blocks], (t % blocks) * ROWS_A_TASK);
        let task = Task {
            source,
            n_in,
            channels,
            rows: r0..(r0 + ROWS_A_TASK).min(rows),
            x,
            x_stride,
            out_stride,
            bias: epilogue.bias.map(|b| &b[c0..]),
        };
        // SAFETY: AVX-512F is there (asserted); the task writes only its rows' columns
        // c0..c0 + channels of `out`, which lie within it (asserted), and no other task does;
        // `buffer` holds KC × 32 values.
        unsafe { task.run(shared.get().add(c0), buffer) };
        if let Some(activation) = epilogue.activation {
            for r in task.rows.clone() {
                // SAFETY: as above: this task's values of row r.
                let values =
                    unsafe { std::slice::from_raw_parts_mut(shared.get().add(r * out_stride + c0), task.channels) };
                activate(values, activation);
            }
        }
    });
}

/// One panel of a weight by a block of rows.
struct Task<'a> {
    source: Source<'a>,
    n_in: usize,
    /// The panel's channels (32, fewer at the weight's end).
    channels: usize,
    rows: std::ops::Range<usize>,
    /// `[rows, n_in]`, rows `x_stride` apart.
    x: &'a [f32],
    x_stride: usize,
    out_stride: usize,
    /// The panel's biases (from its first channel on), if any.
    bias: Option<&'a [f32]>,
}

impl Task<'_> {
    /// Every block of `in`: the panel copied into `buffer`, then every tile of rows.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; `out` must address the panel's first column of row 0 of an
    /// output whose rows `out_stride` apart hold this task's rows, `buffer` `KC × 32` values.
    #[target_feature(enable = "avx512f")]
    unsafe fn run(&self, out: *mut f32, buffer: *mut f32) {
        let masks = [lanes(self.channels.min(16)), lanes(self.channels.saturating_sub(16))];
        let mut k0 = 0;
        while k0 < self.n_in {
            let kc = (self.n_in - k0).min(KC);
            let (panel, mut prefetch) = match self.source {
                Source::Packed(packed) => (packed[k0 * NR..].as_ptr(), Prefetch::none()),
                Source::Rows { w, o0 } => {
                    // SAFETY: `buffer` holds KC × 32 values (the caller's promise).
                    unsafe { self.pack((w, o0), k0, kc, buffer) };
                    // the next panel's weights (this block of `in`; none past the weight's end)
                    // on their way to L2 while the tiles run: a line every 4 values of `in` of
                    // every tile
                    let prefetch = Prefetch {
                        at: w.as_ptr().wrapping_add((o0 + NR) * self.n_in + k0),
                        stride: self.n_in,
                        lines: kc.div_ceil(16),
                        rows: (w.len() / self.n_in).saturating_sub(o0 + NR).min(NR),
                        row: 0,
                        line: 0,
                    };
                    (buffer.cast_const(), prefetch)
                }
            };
            let onto = if k0 == 0 { self.bias } else { None };
            let mut r = self.rows.start;
            while r < self.rows.end {
                let mr = (self.rows.end - r).min(MR);
                let tile = Tile {
                    out: out.wrapping_add(r * self.out_stride),
                    out_stride: self.out_stride,
                    x: self.x[r * self.x_stride + k0..].as_ptr(),
                    x_stride: self.x_stride,
                    panel,
                    kc,
                    bias: onto.map_or(std::ptr::null(), <[f32]>::as_ptr),
                    masks,
                };
                // SAFETY: rows r..r + mr of `x` and `out` (the caller's promise), the packed
                // panel of kc × 32 values, the biases of the panel's channels.
                unsafe {
                    match mr {
                        12 => tile.run::<12>(&mut prefetch),
                        11 => tile.run::<11>(&mut prefetch),
                        10 => tile.run::<10>(&mut prefetch),
                        9 => tile.run::<9>(&mut prefetch),
                        8 => tile.run::<8>(&mut prefetch),
                        7 => tile.run::<7>(&mut prefetch),
                        6 => tile.run::<6>(&mut prefetch),
                        5 => tile.run::<5>(&mut prefetch),
                        4 => tile.run::<4>(&mut prefetch),
                        3 => tile.run::<3>(&mut prefetch),
                        2 => tile.run::<2>(&mut prefetch),
                        _ => tile.run::<1>(&mut prefetch),
                    }
                }
                r += mr;
            }
            k0 += kc;
        }
    }

    /// The panel's weights at `k0..k0 + kc` into `buffer` as `[kc][32]` (zeros for channels
    /// past the weight's end), 16 channels by 16 values at a time: all `kc × 32` values written.
    ///
    /// # Safety
    /// `buffer` must address `KC × 32` writable values.
    #[target_feature(enable = "avx512f")]
    unsafe fn pack(&self, (w, o0): (&[f32], usize), k0: usize, kc: usize, buffer: *mut f32) {
        for half in 0..2 {
            let valid = self.channels.saturating_sub(16 * half).min(16);
            let mut kb = 0;
            while kb < kc {
                let n = (kc - kb).min(16);
                let mut rows = [_mm512_setzero_ps(); 16];
                for (c, row) in rows.iter_mut().enumerate().take(valid) {
                    let at = (o0 + 16 * half + c) * self.n_in + k0 + kb;
                    // SAFETY: n values of channel o0 + 16·half + c from k0 + kb, within the weight.
                    *row = unsafe { _mm512_maskz_loadu_ps(lanes(n), w[at..].as_ptr()) };
                }
                let columns = transpose(rows);
                for (j, column) in columns.iter().enumerate().take(n) {
                    // SAFETY: 16 values of the buffer's row kb + j (kc ≤ KC rows of 32).
                    unsafe { _mm512_storeu_ps(buffer.add((kb + j) * NR + 16 * half), *column) };
                }
                kb += n;
            }
        }
    }
}

/// The sizes and pointers one tile of rows reads and writes.
struct Tile {
    out: *mut f32,
    out_stride: usize,
    x: *const f32,
    x_stride: usize,
    panel: *const f32,
    kc: usize,
    /// The panel's biases, the starting values instead of the output's (null: the output's).
    bias: *const f32,
    /// The panel's valid channels in each of its two vectors.
    masks: [__mmask16; 2],
}

impl Tile {
    /// `out[r, c] = start + Σₖ x[r, k] · panel[k, c]` for `R` rows and the panel's channels,
    /// `start` the bias or the output's value.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; the pointers must address `R` rows of `x` (kc values each)
    /// and of `out` (the panel's channels), the panel's kc × 32 values and, when not null, its
    /// biases.
    #[inline(always)]
    unsafe fn run<const R: usize>(&self, prefetch: &mut Prefetch) {
        let [m0, m1] = self.masks;
        // SAFETY (every access): within what the caller promises; masked lanes are not touched.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 2]; R];
            for (r, a) in acc.iter_mut().enumerate() {
                let from = if self.bias.is_null() { self.out.add(r * self.out_stride).cast_const() } else { self.bias };
                *a = [_mm512_maskz_loadu_ps(m0, from), _mm512_maskz_loadu_ps(m1, from.wrapping_add(16))];
            }
            for k in 0..self.kc {
                if k % 4 == 0 {
                    prefetch.next();
                }
                let b0 = _mm512_loadu_ps(self.panel.add(k * NR));
                let b1 = _mm512_loadu_ps(self.panel.add(k * NR + 16));
                for (r, a) in acc.iter_mut().enumerate() {
                    let v = _mm512_set1_ps(*self.x.add(r * self.x_stride + k));
                    a[0] = _mm512_fmadd_ps(v, b0, a[0]);
                    a[1] = _mm512_fmadd_ps(v, b1, a[1]);
                }
            }
            for (r, a) in acc.iter().enumerate() {
                let to = self.out.add(r * self.out_stride);
                _mm512_mask_storeu_ps(to, m0, a[0]);
                _mm512_mask_storeu_ps(to.wrapping_add(16), m1, a[1]);
            }
        }
    }
}

/// The lines of the next panel's weights still to fetch: `rows` rows of `lines` cache lines,
/// `stride` values apart, from `at`.
struct Prefetch {
    at: *const f32,
    stride: usize,
    lines: usize,
    rows: usize,
    row: usize,
    line: usize,
}

impl Prefetch {
    /// Nothing to fetch.
    fn none() -> Self {
        Self { at: std::ptr::null(), stride: 0, lines: 0, rows: 0, row: 0, line: 0 }
    }

    /// Fetches the next line into L2 (a prefetch never faults), if any is left.
    #[inline(always)]
    fn next(&mut self) {
        if self.row < self.rows {
            let at = self.at.wrapping_add(self.row * self.stride + self.line * 16);
            // SAFETY: a prefetch reads nothing the program sees and never faults.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(at.cast()) };
            self.line += 1;
            if self.line == self.lines {
                self.line = 0;
                self.row += 1;
            }
        }
    }
}

/// The first `n` (≤ 16) lanes.
fn lanes(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// The 16 × 16 matrix of `rows` transposed: column `j` of the result holds value `j` of every
/// row.
#[inline(always)]
fn transpose(r: [__m512; 16]) -> [__m512; 16] {
    // SAFETY: register shuffles only; the callers run with AVX-512F enabled.
    unsafe {
        let mut t = [_mm512_setzero_ps(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        let pd = _mm512_castps_pd;
        let mut u = [_mm512_setzero_ps(); 16];
        for i in 0..4 {
            let (a, b, c, d) = (t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3]);
            u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(a), pd(c)));
            u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(a), pd(c)));
            u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(b), pd(d)));
            u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(b), pd(d)));
        }
        // u[4i + j] holds, in its 128-bit lane l, value 4l + j of rows 4i..4i + 4
        let mut v = [_mm512_setzero_ps(); 16];
        for j in 0..4 {
            v[j] = _mm512_shuffle_f32x4::<0x88>(u[j], u[4 + j]);
            v[4 + j] = _mm512_shuffle_f32x4::<0xdd>(u[j], u[4 + j]);
            v[8 + j] = _mm512_shuffle_f32x4::<0x88>(u[8 + j], u[12 + j]);
            v[12 + j] = _mm512_shuffle_f32x4::<0xdd>(u[8 + j], u[12 + j]);
        }
        let mut out = [_mm512_setzero_ps(); 16];
        for j in 0..4 {
            out[j] = _mm512_shuffle_f32x4::<0x88>(v[j], v[8 + j]);
            out[4 + j] = _mm512_shuffle_f32x4::<0x88>(v[4 + j], v[12 + j]);
            out[8 + j] = _mm512_shuffle_f32x4::<0xdd>(v[j], v[8 + j]);
            out[12 + j] = _mm512_shuffle_f32x4::<0xdd>(v[4 + j], v[12 + j]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_a_multiple_of_4_kib_long_are_copied_with_padding_and_others_read_in_place() {
        let x: Vec<f32> = (0..3 * 1024).map(|i| i as f32).collect();
        let (padded, stride) = tiles_input(&x, 1024);
        assert!(matches!(padded, std::borrow::Cow::Owned(_)) && stride == 1024 + ROW_PADDING);
        for (r, row) in padded.chunks_exact(stride).enumerate() {
            assert_eq!(row[..1024], x[r * 1024..(r + 1) * 1024], "row {r}");
            assert!(row[1024..].iter().all(|&v| v == 0.0), "row {r}: padding");
        }
        let (same, stride) = tiles_input(&x[..3 * 1000], 1000);
        assert!(matches!(same, std::borrow::Cow::Borrowed(_)) && stride == 1000);
    }

    #[test]
    fn a_weight_packed_once_gives_the_bits_of_panels_copied_at_each_product() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        // 70 channels (a last panel of 6) of 800 inputs (two blocks of `in`), in two weights
        let (n_in, parts) = (800, [40, 30]);
        let value = |i: usize| ((i * 7919 % 1013) as f32 - 506.0) / 1013.0;
        let weights: Vec<Vec<f32>> =
            parts.iter().enumerate().map(|(w, &n)| (0..n * n_in).map(|i| value(i + w * 99_991)).collect()).collect();
        let mut packed = crate::ops::panel_matrix::PanelMatrix::zeros(70, n_in, NR);
        packed.set_rows(0, &weights[0][..20 * n_in]);
        packed.set_rows(20, &weights[0][20 * n_in..]);
        packed.set_rows(40, &weights[1]);
        assert_eq!((packed.n_out(), packed.n_in(), packed.bytes()), (70, n_in, 4 * 96 * n_in));
        let panels = packed.values();
        let bias: Vec<f32> = (0..70).map(|i| value(i + 5)).collect();
        let epilogue = Epilogue { bias: Some(&bias), activation: Some(crate::config::Activation::Gelu) };
        let parts: Vec<&[f32]> = weights.iter().map(Vec::as_slice).collect();
        for rows in [1, 13, 130] {
            let x: Vec<f32> = (0..rows * n_in).map(|i| value(i + 17)).collect();
            let (mut by_rows, mut by_packed) = (vec![0f32; rows * 72], vec![0f32; rows * 72]);
            product(&mut by_rows, 72, &x, (&parts, n_in), epilogue);
            packed_product(&mut by_packed, 72, &x, (panels, n_in, 70), epilogue);
            assert_eq!(by_rows, by_packed, "{rows} rows");
            assert!(by_rows.chunks_exact(72).all(|row| row[70..] == [0.0, 0.0] && row[69] != 0.0), "{rows} rows");
        }
    }

    #[test]
    fn the_transpose_moves_every_value() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        #[target_feature(enable = "avx512f")]
        fn transposed(values: &[f32]) -> Vec<f32> {
            let mut rows = [_mm512_setzero_ps(); 16];
            for (i, row) in rows.iter_mut().enumerate() {
                // SAFETY: 16 values of row i.
                *row = unsafe { _mm512_loadu_ps(values[16 * i..].as_ptr()) };
            }
            let mut out = vec![0f32; 256];
            for (j, column) in transpose(rows).iter().enumerate() {
                // SAFETY: 16 values of row j.
                unsafe { _mm512_storeu_ps(out[16 * j..].as_mut_ptr(), *column) };
            }
            out
        }
        let values: Vec<f32> = (0..256).map(|i| i as f32).collect();
        // SAFETY: AVX-512F checked above.
        let out = unsafe { transposed(&values) };
        for i in 0..16 {
            for j in 0..16 {
                assert_eq!(out[16 * j + i], values[16 * i + j], "row {i} value {j}");
            }
        }
    }
}
