//! The valid tokens of a padded batch as one run of rows, for training passes that skip the
//! padding: every layer that works a token at a time (the dense layers, layer norms, dropout)
//! runs on the `N` valid tokens instead of all `B·L` positions, and only the attention sees the
//! padded `[B, L, ·]` layout it needs. The padding's outputs never reach a loss (its keys are
//! masked, its labels ignored), so the gradients are those of the padded pass; what changes is
//! the work, in proportion to the batch's fill.

use candle_core::{Device, Tensor};

use crate::error::Result;

/// Where the valid tokens of `B` rows of `L` positions sit: row `b`'s first `valid_lens[b]`.
#[derive(Debug, Clone)]
pub struct Packing {
    /// `[N]` u32: `b · L + t` of each valid token, row by row.
    flat: Tensor,
    /// `[N]` u32: the position `t` of each valid token in its row.
    positions: Tensor,
    rows: usize,
    seq_len: usize,
}

impl Packing {
    /// The packing of rows with `valid_lens` (each in `1..=seq_len`) on `device`; `None` when
    /// no row is padded (packing would only copy).
    pub fn of(valid_lens: &[usize], seq_len: usize, device: &Device) -> Result<Option<Self>> {
        if valid_lens.iter().all(|&v| v >= seq_len) {
            return Ok(None);
        }
        let mut flat = Vec::new();
        let mut positions = Vec::new();
        for (row, &valid) in valid_lens.iter().enumerate() {
            for t in 0..valid.min(seq_len) {
                flat.push((row * seq_len + t) as u32);
                positions.push(t as u32);
            }
        }
        let n = flat.len();
        Ok(Some(Self {
            flat: Tensor::from_vec(flat, n, device)?,
            positions: Tensor::from_vec(positions, n, device)?,
            rows: valid_lens.len(),
            seq_len,
        }))
    }

    /// The position in its row of each valid token, `[N]` u32.
    pub fn positions(&self) -> &Tensor {
        &self.positions
    }

    /// The valid tokens of `x` `[B, L, ...]` (or `[B, L]`): `[N, ...]` (or `[N]`).
    pub fn pack(&self, x: &Tensor) -> Result<Tensor> {
        let mut dims = x.dims()[1..].to_vec();
        dims[0] = self.rows * self.seq_len;
        Ok(x.reshape(dims)?.index_select(&self.flat, 0)?)
    }

    /// `x` `[N, W]` in the padded layout `[B, L, W]`, zeros at the padding.
    pub fn unpack(&self, x: &Tensor) -> Result<Tensor> {
        let width = x.dim(1)?;
        let padded = Tensor::zeros((self.rows * self.seq_len, width), x.dtype(), x.device())?;
        Ok(padded.index_add(&self.flat, x, 0)?.reshape((self.rows, self.seq_len, width))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_the_valid_tokens_row_by_row_and_unpacks_them_with_zero_padding() {
        let device = Device::Cpu;
        // 2 rows of 3 positions, 2 channels: value = 10·row + position + 1, both channels
        let values: Vec<f32> = (0..6).flat_map(|i| [(10 * (i / 3) + i % 3 + 1) as f32; 2]).collect();
        let x = Tensor::from_vec(values, (2, 3, 2), &device).unwrap();
        let packing = Packing::of(&[2, 3], 3, &device).unwrap().expect("row 0 is padded");
        let packed = packing.pack(&x).unwrap();
        assert_eq!(packed.dims(), &[5, 2]);
        let firsts: Vec<f32> = packed.narrow(1, 0, 1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(firsts, [1., 2., 11., 12., 13.]);
        assert_eq!(packing.positions().to_vec1::<u32>().unwrap(), [0, 1, 0, 1, 2]);
        let back: Vec<f32> = packing.unpack(&packed).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(back, [1., 1., 2., 2., 0., 0., 11., 11., 12., 12., 13., 13.]);
        let ids = Tensor::from_vec(vec![5u32, 6, 0, 7, 8, 9], (2, 3), &device).unwrap();
        assert_eq!(packing.pack(&ids).unwrap().to_vec1::<u32>().unwrap(), [5, 6, 7, 8, 9]);
    }

    #[test]
    fn full_rows_are_not_packed() {
        assert!(Packing::of(&[3, 3], 3, &Device::Cpu).unwrap().is_none());
    }
}
