//! Model weights as safetensors files, f32, named as tsbert names its parameters or as Hugging
//! Face does: read from a file a tensor at a time or from bytes, written as bytes. Checksums
//! and atomic writes are the caller's (the TypeScript layer owns the model folder).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor, Var};
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::Dtype;

use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::hf::HfNames;
use crate::model::BertModel;
use crate::ops::rows::TensorValues;
use crate::params::ParamStore;

/// How the tensors of a weights file are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Naming {
    /// tsbert's own names (`encoder.blks.0.attention.W_q.weight`, …).
    Tsbert,
    /// Hugging Face's (`bert.encoder.layer.0.attention.self.query.weight`, …).
    HuggingFace(HfNames),
}

impl Naming {
    /// The names a file may give parameter `ours`, the one written first.
    fn stored_names(&self, ours: &str) -> Vec<String> {
        match self {
            Naming::Tsbert => vec![ours.to_string()],
            Naming::HuggingFace(names) => names.stored_names(ours),
        }
    }

    /// The names a saved file holds parameter `ours` under (see [`HfNames::written_names`]).
    fn written_names(&self, ours: &str) -> Vec<String> {
        match self {
            Naming::Tsbert => vec![ours.to_string()],
            Naming::HuggingFace(names) => names.written_names(ours),
        }
    }

    /// Whether a stored tensor that is no parameter may be left unread.
    fn ignorable(&self, stored: &str, config: &BertConfig) -> bool {
        match self {
            Naming::Tsbert => false,
            Naming::HuggingFace(names) => names.ignorable(stored, config),
        }
    }
}

/// Bytes of a safetensors file's header length (a little-endian u64).
const HEADER_LENGTH: usize = 8;
/// The longest header read (the safetensors crate's own limit).
const MAX_HEADER_BYTES: u64 = 100_000_000;

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Checkpoint(what.to_string())
}

/// The dtype of stored tensor `name`, a float type, or an error naming it.
fn float_dtype(name: &str, info: &TensorInfo) -> Result<DType> {
    match info.dtype {
        Dtype::F16 => Ok(DType::F16),
        Dtype::BF16 => Ok(DType::BF16),
        Dtype::F32 => Ok(DType::F32),
        Dtype::F64 => Ok(DType::F64),
        other => Err(corrupt(format!("'{name}' holds {other:?}, not floats"))),
    }
}

/// Whether every value of `t` is finite.
fn all_finite(t: &Tensor) -> Result<bool> {
    let t = t.contiguous()?;
    let values = TensorValues::of(&t);
    // read in place (a copy in f64 of the largest embedding table took twice its size again)
    Ok(match t.dtype() {
        DType::F32 => values.slice::<f32>("weights")?.iter().all(|v| v.is_finite()),
        DType::F64 => values.slice::<f64>("weights")?.iter().all(|v| v.is_finite()),
        _ => t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?.iter().all(|v| v.is_finite()),
    })
}

/// Every parameter of `params` as the bytes of a safetensors file (f32, named by `naming`,
/// under each name the naming writes). Non-finite weights are never saved: they are an error
/// naming the parameter.
pub fn save_weights(params: &ParamStore, naming: &Naming) -> Result<Vec<u8>> {
    let mut tensors = HashMap::new();
    for (name, var) in params.iter() {
        let t = var.as_tensor().to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
        if !all_finite(&t)? {
            return Err(corrupt(format!("'{name}' holds NaN or infinite values; not saved")));
        }
        for stored in naming.written_names(name) {
            tensors.insert(stored, t.clone());
        }
    }
    safetensors::serialize(&tensors, None).map_err(|e| corrupt(format!("cannot serialise: {e}")))
}

/// For each parameter of a model of `config`, the stored name it has in `stored` (by
/// `naming`), and the stored tensors no parameter takes that may not be ignored.
fn match_names<'a>(
    config: &BertConfig,
    shapes: &'a [(String, Vec<usize>)],
    stored: &[String],
    naming: &Naming,
) -> Result<Vec<(&'a str, &'a [usize], String)>> {
    let mut left: Vec<&String> = stored.iter().collect();
    let mut matched = Vec::new();
    for (name, shape) in shapes {
        let candidates = naming.stored_names(name);
        let found = candidates
            .iter()
            .find(|c| left.iter().any(|s| s == c))
            .ok_or_else(|| corrupt(format!("parameter '{}' is missing", candidates[0])))?;
        left.retain(|s| *s != found);
        matched.push((name.as_str(), shape.as_slice(), found.clone()));
    }
    if let Some(extra) = left.iter().find(|s| !naming.ignorable(s, config)) {
        return Err(corrupt(format!("unexpected tensor '{extra}' (not a parameter of this model)")));
    }
    Ok(matched)
}

/// Where a safetensors file's tensor data are.
enum Source<'a> {
    /// The whole file in memory.
    Bytes(&'a [u8]),
    /// An open file, read a tensor at a time.
    File(Mutex<File>),
}

/// A safetensors file's header, checked, and its tensors read one at a time: a model loaded
/// from a file holds one tensor besides its parameters at any moment, never the whole file.
pub struct WeightsFile<'a> {
    metadata: Metadata,
    /// Where the tensor data start: after the header's length and the header.
    data_start: u64,
    source: Source<'a>,
}

impl std::fmt::Debug for WeightsFile<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightsFile").field("tensors", &self.metadata.tensors().len()).finish()
    }
}

impl<'a> WeightsFile<'a> {
    /// The safetensors file whose bytes are `bytes`.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self> {
        let (n, metadata) = safetensors::SafeTensors::read_metadata(bytes)
            .map_err(|e| corrupt(format!("not a readable safetensors file ({e})")))?;
        Ok(Self { metadata, data_start: (HEADER_LENGTH + n) as u64, source: Source::Bytes(bytes) })
    }

    /// The safetensors file at `path`, its header read and checked (the tensors' offsets
    /// against each other and against the file's length); no tensor is read yet.
    pub fn open(path: &Path) -> Result<WeightsFile<'static>> {
        let unreadable = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => corrupt("the file is missing"),
            std::io::ErrorKind::UnexpectedEof => corrupt("not a readable safetensors file (it ends in its header)"),
            _ => corrupt(format!("cannot be read ({e})")),
        };
        let mut file = File::open(path).map_err(unreadable)?;
        let length = file.metadata().map_err(unreadable)?.len();
        let mut n = [0u8; HEADER_LENGTH];
        file.read_exact(&mut n).map_err(unreadable)?;
        let n = u64::from_le_bytes(n);
        if n > MAX_HEADER_BYTES || HEADER_LENGTH as u64 + n > length {
            return Err(corrupt(format!("not a readable safetensors file (a header of {n} bytes)")));
        }
        let mut header = vec![0u8; n as usize];
        file.read_exact(&mut header).map_err(unreadable)?;
        let metadata: Metadata =
            serde_json::from_slice(&header).map_err(|e| corrupt(format!("not a readable safetensors file ({e})")))?;
        let data_start = HEADER_LENGTH as u64 + n;
        let expected = data_start + metadata.data_len() as u64;
        if expected != length {
            return Err(corrupt(format!(
                "not a readable safetensors file (its header needs {expected} bytes, the file has {length}: incomplete or not one file)"
            )));
        }
        Ok(WeightsFile { metadata, data_start, source: Source::File(Mutex::new(file)) })
    }

    /// The names of the tensors the file holds.
    pub fn names(&self) -> Vec<String> {
        self.metadata.tensors().into_keys().collect()
    }

    /// Checks the header against the parameters a model of `config` has (names by `naming`,
    /// shapes, float dtypes), reading no tensor data and allocating nothing of the model's
    /// size: a weights file that cannot fit the config is refused before the model is built.
    pub fn check_fits(&self, config: &BertConfig, naming: &Naming) -> Result<()> {
        config.validate()?;
        let shapes = BertModel::param_shapes(config)?;
        for (_, shape, found) in match_names(config, &shapes, &self.names(), naming)? {
            let info = self.metadata.info(&found).expect("matched from the header");
            if info.shape != shape {
                return Err(corrupt(format!("'{found}' has shape {:?}, the config says {shape:?}", info.shape)));
            }
            float_dtype(&found, info)?;
        }
        Ok(())
    }

    /// The tensors by parameter name, for the parameters of a model of `config` the file has.
    /// The file is checked to hold exactly the parameters of a model of `stored` (the config
    /// it was written with; stored names by `naming`) with their shapes, as finite floats;
    /// those the model lacks (the heads a model under a new head drops) are not read.
    /// Converted to `dtype`, on the CPU, each a variable's storage already (a parameter takes
    /// it without a copy). Nothing is changed: the caller sets them once every one has passed.
    pub fn read(
        &self,
        model: (&BertConfig, DType),
        stored: &BertConfig,
        naming: &Naming,
    ) -> Result<HashMap<String, Tensor>> {
        let mut checked = HashMap::new();
        self.read_each(model, stored, naming, |name, tensor| {
            checked.insert(name.to_string(), tensor.read()?);
            Ok(())
        })?;
        Ok(checked)
    }

    /// What [`WeightsFile::read`] reads, each tensor handed to `take` (by parameter name, in
    /// the model's order) once its header entry has passed, to be read whole or a block of
    /// rows at a time ([`StoredTensor`]; either checks the values): a caller that turns each
    /// into something smaller never holds the file's tensors together.
    pub fn read_each(
        &self,
        (config, dtype): (&BertConfig, DType),
        stored: &BertConfig,
        naming: &Naming,
        mut take: impl FnMut(&str, StoredTensor<'_, 'a>) -> Result<()>,
    ) -> Result<()> {
        let model: HashMap<String, Vec<usize>> = BertModel::param_shapes(config)?.into_iter().collect();
        let shapes = BertModel::param_shapes(stored)?;
        for (name, shape, found) in match_names(stored, &shapes, &self.names(), naming)? {
            let info = self.metadata.info(&found).expect("matched from the header");
            if info.shape != shape {
                return Err(corrupt(format!("'{found}' has shape {:?}, the model expects {shape:?}", info.shape)));
            }
            let stored_dtype = float_dtype(&found, info)?;
            let Some(dims) = model.get(name) else { continue };
            if *dims != shape {
                return Err(corrupt(format!("'{found}' has shape {shape:?}, the model's '{name}' is {dims:?}")));
            }
            take(name, StoredTensor { file: self, name: &found, info, stored: stored_dtype, dtype })?;
        }
        Ok(())
    }

    /// The stored tensor `name` (described by `info`, holding `stored` values) in `dtype`, a
    /// variable's storage.
    fn tensor(&self, name: &str, info: &TensorInfo, stored: DType, dtype: DType) -> Result<Tensor> {
        // the values read straight into the variable's own buffer when no conversion is needed
        // (safetensors stores little-endian values)
        match dtype {
            DType::F32 if stored == dtype && cfg!(target_endian = "little") => self.variable::<f32>(name, info),
            DType::F64 if stored == dtype && cfg!(target_endian = "little") => self.variable::<f64>(name, info),
            _ => self.converted(name, info, stored, dtype),
        }
    }

    /// A variable of `T`s read from the file without conversion.
    fn variable<T: candle_core::WithDType + Default>(&self, name: &str, info: &TensorInfo) -> Result<Tensor> {
        let count = info.shape.iter().product::<usize>();
        let mut values = vec![T::default(); count];
        // SAFETY: `values` holds `count` plain floats, any bit pattern of which is a value.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), count * std::mem::size_of::<T>())
        };
        self.read_bytes(name, info, bytes)?;
        Ok(Var::from_vec(values, info.shape.as_slice(), &Device::Cpu)?.into_inner())
    }

    /// The tensor read as `stored` values and converted to `dtype`, as a variable.
    fn converted(&self, name: &str, info: &TensorInfo, stored: DType, dtype: DType) -> Result<Tensor> {
        let mut bytes = vec![0u8; info.data_offsets.1 - info.data_offsets.0];
        self.read_bytes(name, info, &mut bytes)?;
        let t = Tensor::from_raw_buffer(&bytes, stored, info.shape.as_slice(), &Device::Cpu)?;
        drop(bytes);
        Ok(Var::from_tensor(&t.to_dtype(dtype)?)?.into_inner())
    }

    /// The bytes of tensor `name` into `out` (as long as the tensor's data).
    fn read_bytes(&self, name: &str, info: &TensorInfo, out: &mut [u8]) -> Result<()> {
        debug_assert_eq!(out.len(), info.data_offsets.1 - info.data_offsets.0);
        self.read_bytes_at(name, info, 0, out)
    }

    /// The bytes of tensor `name` from its byte `offset` into `out`.
    fn read_bytes_at(&self, name: &str, info: &TensorInfo, offset: usize, out: &mut [u8]) -> Result<()> {
        let start = info.data_offsets.0 + offset;
        debug_assert!(start + out.len() <= info.data_offsets.1);
        match &self.source {
            Source::Bytes(bytes) => {
                let at = self.data_start as usize + start;
                out.copy_from_slice(&bytes[at..at + out.len()]);
            }
            Source::File(file) => {
                let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                file.seek(SeekFrom::Start(self.data_start + start as u64))
                    .and_then(|_| file.read_exact(out))
                    .map_err(|e| corrupt(format!("'{name}' cannot be read ({e})")))?;
            }
        }
        Ok(())
    }
}

/// One tensor of a [`WeightsFile`] whose name, shape and dtype have passed, not read yet.
pub struct StoredTensor<'f, 'a> {
    file: &'f WeightsFile<'a>,
    /// Its name in the file.
    name: &'f str,
    info: &'f TensorInfo,
    /// The dtype of its stored values.
    stored: DType,
    /// The dtype it is read in.
    dtype: DType,
}

impl StoredTensor<'_, '_> {
    /// Its shape.
    pub fn shape(&self) -> &[usize] {
        &self.info.shape
    }

    /// The whole tensor, on the CPU, a variable's storage, its values checked finite.
    pub fn read(&self) -> Result<Tensor> {
        let t = self.file.tensor(self.name, self.info, self.stored, self.dtype)?;
        if !all_finite(&t)? {
            return Err(corrupt(format!("'{}' holds NaN or infinite values", self.name)));
        }
        Ok(t)
    }

    /// Its values as f32, `rows` rows (of its last dimension) at a time, each block checked
    /// finite and handed to `each` in order: the tensor is never whole in memory.
    pub fn read_rows(&self, rows: usize, mut each: impl FnMut(&[f32]) -> Result<()>) -> Result<()> {
        let width = self.info.shape.last().copied().unwrap_or(1).max(1);
        let count = self.info.shape.iter().product::<usize>();
        let size = self.stored.size_in_bytes();
        let mut bytes = Vec::new();
        let mut first = 0;
        while first < count {
            let n = (rows.max(1) * width).min(count - first);
            bytes.resize(n * size, 0);
            self.file.read_bytes_at(self.name, self.info, first * size, &mut bytes)?;
            let block = Tensor::from_raw_buffer(&bytes, self.stored, &[n], &Device::Cpu)?.to_dtype(DType::F32)?;
            let values = TensorValues::of(&block);
            let values = values.slice::<f32>("weights")?;
            if !values.iter().all(|v| v.is_finite()) {
                return Err(corrupt(format!("'{}' holds NaN or infinite values", self.name)));
            }
            each(values)?;
            first += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of one `[rows, 3]` tensor `t` stored as `stored`, and the tensor read back from it
    /// a block of `rows_a_read` rows at a time.
    fn read_in_blocks(values: &[f32], stored: DType, rows_a_read: usize) -> Result<Vec<f32>> {
        let t = Tensor::from_slice(values, (values.len() / 3, 3), &Device::Cpu)?.to_dtype(stored)?;
        let bytes = safetensors::serialize([("t", t)], None).expect("serialised");
        let file = WeightsFile::from_bytes(&bytes)?;
        let info = file.metadata.info("t").expect("written");
        let tensor = StoredTensor { file: &file, name: "t", info, stored: float_dtype("t", info)?, dtype: DType::F32 };
        let mut out = Vec::new();
        tensor.read_rows(rows_a_read, |block| {
            assert!(block.len() <= rows_a_read * 3);
            out.extend_from_slice(block);
            Ok(())
        })?;
        assert_eq!(tensor.read()?.flatten_all()?.to_vec1::<f32>()?, out, "read whole, it differs");
        Ok(out)
    }

    /// Read in blocks of rows (the last one short, or one block for all), a tensor is the one
    /// stored, in f32 or converted from f16; a value that is not finite in a later block is an
    /// error naming the tensor.
    #[test]
    fn a_tensor_read_a_block_of_rows_at_a_time_is_the_one_stored() {
        let values: Vec<f32> = (0..15).map(|i| i as f32 * 0.5 - 3.0).collect();
        for (stored, rows) in [(DType::F32, 2), (DType::F32, 5), (DType::F32, 100), (DType::F16, 2)] {
            assert_eq!(read_in_blocks(&values, stored, rows).unwrap(), values, "{stored:?} by {rows}");
        }
        let mut bad = values.clone();
        bad[13] = f32::NAN;
        let err = read_in_blocks(&bad, DType::F32, 2).unwrap_err().to_string();
        assert!(err.contains("'t' holds NaN or infinite values"), "{err}");
    }
}
