//! Shape-checked tensor operations for post-processing embeddings (the TypeScript `Tensor`'s).
//! Every shape problem is an [`InputError`] naming the operation and both shapes.

use candle_core::{Tensor, D};

use crate::error::{InputError, Result};
use crate::ops::softmax::softmax_last_dim;

/// An error naming `op` when `t` holds no value (an empty dimension).
fn not_empty(op: &str, t: &Tensor) -> Result<()> {
    if t.elem_count() == 0 {
        return Err(InputError::range(op, format!("shape {:?} holds no value", t.dims())).into());
    }
    Ok(())
}

/// Matrix product over the last two dimensions (`[..., n, k] × [..., k, m]`).
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    not_empty("matmul", a)?;
    not_empty("matmul", b)?;
    let (da, db) = (a.dims(), b.dims());
    let ok = da.len() >= 2
        && db.len() == da.len()
        && da[da.len() - 1] == db[db.len() - 2]
        && da[..da.len() - 2] == db[..db.len() - 2];
    if !ok {
        return Err(InputError::range("matmul", format!("shapes {da:?} and {db:?} do not multiply")).into());
    }
    Ok(a.matmul(b)?)
}

fn broadcast(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    a.shape()
        .broadcast_shape_binary_op(b.shape(), op)
        .map(|_| ())
        .map_err(|_| InputError::range(op, format!("shapes {:?} and {:?} do not broadcast", a.dims(), b.dims())).into())
}

/// Element-wise sum, with broadcasting.
pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    broadcast("add", a, b)?;
    Ok(a.broadcast_add(b)?)
}

/// Element-wise product, with broadcasting.
pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    broadcast("mul", a, b)?;
    Ok(a.broadcast_mul(b)?)
}

/// Softmax over the last dimension.
pub fn softmax(a: &Tensor) -> Result<Tensor> {
    not_empty("softmax", a)?;
    Ok(softmax_last_dim(a)?)
}

/// Cosine similarity of every row of `a` (`[n, d]` or `[d]`) with every row of `b`
/// (`[m, d]` or `[d]`): `[n, m]`. A zero row has similarity 0 with everything.
pub fn cosine_similarity(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    not_empty("cosineSimilarity", a)?;
    not_empty("cosineSimilarity", b)?;
    let as_rows = |t: &Tensor| -> Result<Tensor> {
        match t.rank() {
            1 => Ok(t.unsqueeze(0)?),
            2 => Ok(t.clone()),
            _ => {
                Err(InputError::range("cosineSimilarity", format!("expects [n, d] or [d], got {:?}", t.dims())).into())
            }
        }
    };
    let (a, b) = (as_rows(a)?, as_rows(b)?);
    if a.dim(1)? != b.dim(1)? {
        return Err(InputError::range(
            "cosineSimilarity",
            format!("rows of width {} and {} cannot be compared", a.dim(1)?, b.dim(1)?),
        )
        .into());
    }
    let unit = |t: &Tensor| -> Result<Tensor> {
        let norm = t.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.maximum(1e-12)?;
        Ok(t.broadcast_div(&norm)?)
    };
    Ok(unit(&a)?.matmul(&unit(&b)?.t()?)?)
}
