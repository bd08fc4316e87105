//! A dense layer's weight packed once into the panels the CPU's f32 product reads (each panel
//! of `width` output channels laid out `[in][width]`, channels past the last zeros), for a
//! model that only infers: its products read the panels in place, with no copying at each
//! call — 32 channels a panel for the AVX-512 kernel ([`crate::ops::panels`]), 16 for the AVX2
//! one ([`crate::ops::packed_avx2`]). Both sum each output value from its bias in the order of
//! `in`, so either gives the bits of the AVX-512 panels an f32 model copies at each product.

use crate::ops::dots::{DotKernel, Epilogue};
use crate::ops::{packed_avx2, panels};

/// A weight packed into panels of `width` channels.
#[derive(Debug, Clone)]
pub(crate) struct PanelMatrix {
    /// Panel after panel, `n_in × width` values each.
    values: Vec<f32>,
    n_in: usize,
    n_out: usize,
    width: usize,
}

impl PanelMatrix {
    /// The panel width of `kernel`'s packed product, if it has one.
    pub(crate) fn width_for(kernel: DotKernel) -> Option<usize> {
        match kernel {
            DotKernel::Avx512 => Some(panels::NR),
            DotKernel::Avx2 => Some(packed_avx2::WIDTH),
            DotKernel::Packed => None,
        }
    }

    /// All zeros, `n_out` channels of `n_in` inputs in panels of `width` (one of
    /// [`PanelMatrix::width_for`]'s), to be filled by [`PanelMatrix::set_rows`].
    pub(crate) fn zeros(n_out: usize, n_in: usize, width: usize) -> Self {
        Self { values: vec![0.0; n_out.div_ceil(width) * width * n_in], n_in, n_out, width }
    }

    /// Channels `first..` from `rows` (`[n, n_in]` row-major).
    pub(crate) fn set_rows(&mut self, first: usize, rows: &[f32]) {
        let width = self.width;
        for (i, row) in rows.chunks_exact(self.n_in).enumerate() {
            let o = first + i;
            let panel = &mut self.values[(o / width) * width * self.n_in..][..width * self.n_in];
            for (k, &v) in row.iter().enumerate() {
                panel[k * width + o % width] = v;
            }
        }
    }

    /// Output channels.
    pub(crate) fn n_out(&self) -> usize {
        self.n_out
    }

    /// Inputs a channel.
    pub(crate) fn n_in(&self) -> usize {
        self.n_in
    }

    /// Bytes it holds.
    pub(crate) fn bytes(&self) -> usize {
        4 * self.values.len()
    }

    /// The packed values, panel after panel.
    #[cfg(test)]
    pub(crate) fn values(&self) -> &[f32] {
        &self.values
    }

    /// `out[r · out_stride + c] = epilogue(Σₖ x[r · n_in + k] · W[c, k])` for `[rows, n_in]`
    /// `x`, over the compute threads.
    ///
    /// # Panics
    /// When this CPU lacks the kernel's instructions or the sizes disagree.
    pub(crate) fn product(&self, out: &mut [f32], out_stride: usize, x: &[f32], epilogue: Epilogue<'_>) {
        let weight = (&self.values[..], self.n_in, self.n_out);
        if self.width == panels::NR {
            panels::packed_product(out, out_stride, x, weight, epilogue);
        } else {
            packed_avx2::product(out, out_stride, x, weight, epilogue);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::cpu_kernel::CpuKernel;

    /// Both widths give the bits of a scalar loop summing each value from its bias in the order
    /// of `in` by fused multiply-adds (what the panels compute), at a partial last panel, one
    /// row, a partial tile and several tasks, with and without a bias.
    #[test]
    fn every_width_gives_the_fused_sums_in_the_order_of_in() {
        let (n_out, n_in) = (37, 300);
        let value = |i: usize| ((i * 7919 % 1013) as f32 - 506.0) / 1013.0;
        let w: Vec<f32> = (0..n_out * n_in).map(value).collect();
        let bias: Vec<f32> = (0..n_out).map(|i| value(i + 11)).collect();
        for kernel in [DotKernel::Avx512, DotKernel::Avx2] {
            let Some(width) = PanelMatrix::width_for(kernel).filter(|_| kernel.is_supported()) else { continue };
            let mut packed = PanelMatrix::zeros(n_out, n_in, width);
            packed.set_rows(0, &w[..10 * n_in]);
            packed.set_rows(10, &w[10 * n_in..]);
            for rows in [1, 7, 200] {
                let x: Vec<f32> = (0..rows * n_in).map(|i| value(i + 3)).collect();
                for with_bias in [true, false] {
                    let start = |r: usize, c: usize| match bias.get(c) {
                        Some(&b) if with_bias => b,
                        _ => (r * n_out + c) as f32,
                    };
                    let mut out: Vec<f32> = (0..rows * 40).map(|i| start(i / 40, i % 40)).collect();
                    let epilogue = Epilogue { bias: with_bias.then_some(&bias[..]), activation: None };
                    packed.product(&mut out, 40, &x, epilogue);
                    for r in 0..rows {
                        for c in 0..n_out {
                            let want =
                                (0..n_in).fold(start(r, c), |acc, k| x[r * n_in + k].mul_add(w[c * n_in + k], acc));
                            assert_eq!(out[r * 40 + c].to_bits(), want.to_bits(), "{kernel:?} {rows} rows, ({r}, {c})");
                        }
                        let past: Vec<f32> = (n_out..40).map(|c| start(r, c)).collect();
                        assert_eq!(
                            out[r * 40 + n_out..(r + 1) * 40],
                            past[..],
                            "{kernel:?}: row {r} past its channels"
                        );
                    }
                }
            }
        }
    }
}
