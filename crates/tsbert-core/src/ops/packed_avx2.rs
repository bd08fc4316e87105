//! f32 products `out = x · Wᵀ` by a weight packed once into panels of 16 output channels
//! (`[in][16]`, [`crate::ops::panels::PanelMatrix`]) with AVX2 and FMA: what a model loaded to
//! infer only multiplies by on a CPU without AVX-512. A tile of 6 rows × 16 channels takes 12
//! accumulators of 8 lanes; at each value of `in` it loads the panel's 16 weights once and
//! broadcasts each row's value, so no horizontal sums and no copying at each product (the
//! dot kernel of [`crate::ops::dots`] reads the weight `[out, in]` as stored, at half this
//! rate). Each output value starts from the bias (or the output's value) and adds its
//! products in the order of `in`, by fused multiply-adds: the bits of the AVX-512 panels.

use std::arch::x86_64::*;

use rayon::prelude::*;

use crate::ops::activation::activate;
use crate::ops::attention::Shared;
use crate::ops::dots::Epilogue;

/// Output channels a panel: two vectors of 8.
pub(crate) const WIDTH: usize = 16;
/// Rows a tile.
const MR: usize = 6;
/// Rows a task.
const ROWS_A_TASK: usize = 96;

/// `out[r · out_stride + c] = epilogue(Σₖ x[r · n_in + k] · W[c, k])`, `panels` the weight
/// packed (panel after panel of `n_in × 16` values, channels past `n_out` zeros), over the
/// compute threads: tasks of a panel by a block of rows.
///
/// # Panics
/// When this CPU lacks AVX2 or FMA, or the sizes disagree.
pub(crate) fn product(
    out: &mut [f32],
    out_stride: usize,
    x: &[f32],
    (panels, n_in, n_out): (&[f32], usize, usize),
    epilogue: Epilogue<'_>,
) {
    assert!(
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
        "packed_avx2: no AVX2 with FMA on this CPU"
    );
    assert!(n_in > 0 && x.len().is_multiple_of(n_in) && panels.len() == n_out.div_ceil(WIDTH) * WIDTH * n_in);
    let rows = x.len() / n_in;
    if rows == 0 || n_out == 0 {
        return;
    }
    assert!(n_out <= out_stride && out.len() >= (rows - 1) * out_stride + n_out, "packed_avx2: output too small");
    assert!(epilogue.bias.is_none_or(|b| b.len() == n_out), "packed_avx2: a bias of another length than the outputs");
    let shared = Shared(out.as_mut_ptr());
    let blocks = rows.div_ceil(ROWS_A_TASK);
    (0..n_out.div_ceil(WIDTH) * blocks).into_par_iter().for_each(|t| {
        let (p, r0) = (t / blocks, (t % blocks) * ROWS_A_TASK);
        let (c0, channels) = (p * WIDTH, (n_out - p * WIDTH).min(WIDTH));
        let panel = &panels[p * WIDTH * n_in..(p + 1) * WIDTH * n_in];
        let bias = epilogue.bias.map(|b| &b[c0..c0 + channels]);
        let (mut r, end) = (r0, (r0 + ROWS_A_TASK).min(rows));
        while r < end {
            let mr = (end - r).min(MR);
            let tile = Tile {
                // SAFETY: row r's column c0 lies within `out` (asserted above).
                out: unsafe { shared.get().add(r * out_stride + c0) },
                out_stride,
                x: &x[r * n_in..(r + mr) * n_in],
                n_in,
                panel,
                bias,
                channels,
            };
            // SAFETY: AVX2 and FMA are there (asserted); the tile writes only its rows'
            // columns c0..c0 + channels, which no other task writes.
            unsafe {
                match mr {
                    6 => tile.run::<6>(),
                    5 => tile.run::<5>(),
                    4 => tile.run::<4>(),
                    3 => tile.run::<3>(),
                    2 => tile.run::<2>(),
                    _ => tile.run::<1>(),
                }
            }
            if let Some(activation) = epilogue.activation {
                for row in r..r + mr {
                    // SAFETY: as above: this tile's values of the row.
                    let values =
                        unsafe { std::slice::from_raw_parts_mut(shared.get().add(row * out_stride + c0), channels) };
                    activate(values, activation);
                }
            }
            r += mr;
        }
    });
}

/// One tile: rows of `x` by one panel.
struct Tile<'a> {
    /// The tile's first row, at the panel's first column.
    out: *mut f32,
    out_stride: usize,
    /// The tile's rows, `n_in` values each.
    x: &'a [f32],
    n_in: usize,
    /// `[n_in][16]`.
    panel: &'a [f32],
    /// The panel's biases (its channels'), the starting values instead of the output's.
    bias: Option<&'a [f32]>,
    /// The panel's channels (16, fewer in the last panel).
    channels: usize,
}

impl Tile<'_> {
    /// `out[r, c] = start + Σₖ x[r, k] · panel[k, c]` for `R` rows and the panel's channels.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `out` must address `R` rows (`out_stride` apart) of at
    /// least the panel's channels.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run<const R: usize>(&self) {
        let mut start = [[0f32; WIDTH]; R];
        for (r, s) in start.iter_mut().enumerate() {
            let from = match self.bias {
                Some(bias) => bias,
                // SAFETY: the row's channels lie within the output (the caller's promise).
                None => unsafe { std::slice::from_raw_parts(self.out.add(r * self.out_stride), self.channels) },
            };
            s[..self.channels].copy_from_slice(from);
        }
        // SAFETY (every load): within `start`, the tile's rows of `x` and the panel.
        let mut acc = start.map(|s| unsafe { [_mm256_loadu_ps(s.as_ptr()), _mm256_loadu_ps(s[8..].as_ptr())] });
        let (x, panel) = (self.x.as_ptr(), self.panel.as_ptr());
        for k in 0..self.n_in {
            unsafe {
                let b0 = _mm256_loadu_ps(panel.add(k * WIDTH));
                let b1 = _mm256_loadu_ps(panel.add(k * WIDTH + 8));
                for (r, a) in acc.iter_mut().enumerate() {
                    let v = _mm256_broadcast_ss(&*x.add(r * self.n_in + k));
                    a[0] = _mm256_fmadd_ps(v, b0, a[0]);
                    a[1] = _mm256_fmadd_ps(v, b1, a[1]);
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            let mut sums = [0f32; WIDTH];
            // SAFETY: 16 values of `sums`; the row's channels of the output (the caller's
            // promise).
            unsafe {
                _mm256_storeu_ps(sums.as_mut_ptr(), a[0]);
                _mm256_storeu_ps(sums[8..].as_mut_ptr(), a[1]);
                std::ptr::copy_nonoverlapping(sums.as_ptr(), self.out.add(r * self.out_stride), self.channels);
            }
        }
    }
}
