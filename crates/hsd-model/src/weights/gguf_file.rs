//! The GGUF (v2, v3) container format: header, metadata values, tensor directory and
//! dequantized tensor data, under the names the file uses.
//!
//! Layout (little-endian): magic `GGUF`, `u32` version, `u64` tensor count, `u64` metadata count,
//! the metadata key/values, one info per tensor (name, dims fastest-varying first, ggml type,
//! offset into the data section), padding to `general.alignment` (default 32), the data section.
//!
//! Every count, length and offset is checked against the bytes that remain before anything is
//! allocated, so a malformed file yields a [`WeightError`] naming the field, never a panic.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

pub use super::dequant::GgmlType;
use super::dequant::dequantize;
use super::{Bytes, WeightError};

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: u32 = 4;
/// Arrays of arrays are legal but unused in practice; the cap keeps recursion off the stack's end.
const MAX_ARRAY_NESTING: usize = 4;
/// Smallest encodings: a key/value is a length-prefixed key, a type and at least one byte; a
/// tensor info is a length-prefixed name, a dim count, a type and an offset.
const MIN_KV_BYTES: usize = 8 + 4 + 1;
const MIN_TENSOR_INFO_BYTES: usize = 8 + 4 + 4 + 8;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<MetadataValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl MetadataValue {
    /// The value as an unsigned integer, for any integer type holding a non-negative value.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a signed integer, for any integer type that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Self::U64(v) => i64::try_from(v).ok(),
            Self::I8(v) => Some(v.into()),
            Self::I16(v) => Some(v.into()),
            Self::I32(v) => Some(v.into()),
            Self::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// The value as a float. An `f32` goes through its shortest decimal spelling, so the
    /// `1e-5` a file stores as `f32` reads back as `1e-5`, not `9.999999747378752e-6`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => v.to_string().parse().ok(),
            Self::F64(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[MetadataValue]> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }

    /// GGUF's name for the value's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::U8(_) => "uint8",
            Self::I8(_) => "int8",
            Self::U16(_) => "uint16",
            Self::I16(_) => "int16",
            Self::U32(_) => "uint32",
            Self::I32(_) => "int32",
            Self::F32(_) => "float32",
            Self::Bool(_) => "bool",
            Self::String(_) => "string",
            Self::Array(_) => "array",
            Self::U64(_) => "uint64",
            Self::I64(_) => "int64",
            Self::F64(_) => "float64",
        }
    }
}

/// Where one tensor lives in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufTensorInfo {
    /// The name in the file, e.g. "blk.0.attn_q.weight".
    pub name: String,
    /// ggml `ne`: fastest-varying first, so `[in, out]` for a linear weight.
    pub ggml_dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Absolute byte offset of the data in the file.
    pub start: usize,
    pub n_bytes: usize,
}

impl GgufTensorInfo {
    /// The shape in PyTorch order (ggml dims reversed).
    pub fn shape(&self) -> Vec<usize> {
        // Every dim fits usize: parsing checked their product against the file length.
        self.ggml_dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// A parsed GGUF file. Tensors are read from the memory map on demand.
pub struct GgufFile {
    path: PathBuf,
    bytes: Bytes,
    version: u32,
    metadata: BTreeMap<String, MetadataValue>,
    tensors: Vec<GgufTensorInfo>,
    by_name: HashMap<String, usize>,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Memory-maps and parses `path`.
    pub fn open(path: &Path) -> Result<Self, WeightError> {
        Self::parse(path.to_owned(), Bytes::map(path)?)
    }

    /// Parses a GGUF image held in memory; `label` stands for the path in errors.
    pub fn from_bytes(bytes: Vec<u8>, label: &str) -> Result<Self, WeightError> {
        Self::parse(PathBuf::from(label), Bytes::Owned(bytes))
    }

    fn parse(path: PathBuf, bytes: Bytes) -> Result<Self, WeightError> {
        let mut reader = Reader {
            bytes: &bytes,
            pos: 0,
            path: &path,
        };
        let magic = reader.take(4, "magic")?;
        if magic != MAGIC {
            return Err(reader.error_at(0, "magic", format!("{magic:02x?} is not \"GGUF\"")));
        }
        let version = reader.u32("version")?;
        if !matches!(version, 2 | 3) {
            return Err(reader.error_at(
                4,
                "version",
                format!("version {version} is not read (2 and 3 are; big-endian files are not)"),
            ));
        }
        let tensor_count = reader.count("tensor_count", MIN_TENSOR_INFO_BYTES)?;
        let kv_count = reader.count("metadata_kv_count", MIN_KV_BYTES)?;

        let mut metadata = BTreeMap::new();
        for index in 0..kv_count {
            let key = reader.string(&format!("metadata[{index}].key"))?;
            let field = format!("metadata {key:?}");
            let type_id = reader.u32(&format!("{field} type"))?;
            let value = reader.value(type_id, &field, 0)?;
            if metadata.insert(key, value).is_some() {
                return Err(reader.error(&field, "key appears twice"));
            }
        }

        let mut raw_infos = Vec::with_capacity(tensor_count);
        for index in 0..tensor_count {
            let name = reader.string(&format!("tensor_infos[{index}].name"))?;
            let field = format!("tensor {name:?}");
            let n_dims = reader.u32(&format!("{field} n_dims"))?;
            if n_dims > MAX_DIMS {
                return Err(reader.error(
                    &format!("{field} n_dims"),
                    format!("{n_dims} dims (ggml allows at most {MAX_DIMS})"),
                ));
            }
            let dims = (0..n_dims)
                .map(|d| reader.u64(&format!("{field} dims[{d}]")))
                .collect::<Result<Vec<_>, _>>()?;
            let type_id = reader.u32(&format!("{field} type"))?;
            let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| {
                reader.error(
                    &format!("{field} type"),
                    format!("unknown ggml type id {type_id}"),
                )
            })?;
            let offset = reader.u64(&format!("{field} offset"))?;
            raw_infos.push((name, dims, ggml_type, offset));
        }

        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(value) => value
                .as_u64()
                .filter(|a| a.is_power_of_two())
                .ok_or_else(|| WeightError::Metadata {
                    path: path.clone(),
                    key: "general.alignment".into(),
                    reason: format!("{value:?} is not a power of two"),
                })?,
        };
        let file_len = bytes.len();
        let data_start = (reader.pos as u64)
            .checked_next_multiple_of(alignment)
            .filter(|&start| raw_infos.is_empty() || start <= file_len as u64)
            .ok_or_else(|| {
                reader.error(
                    "data section",
                    format!("aligned to {alignment}, it would start past the end of the file ({file_len} bytes)"),
                )
            })?;

        let mut tensors = Vec::with_capacity(raw_infos.len());
        let mut by_name = HashMap::with_capacity(raw_infos.len());
        for (name, ggml_dims, ggml_type, offset) in raw_infos {
            let fail = |reason: String| WeightError::Tensor {
                path: path.clone(),
                tensor: name.clone(),
                reason,
            };
            if by_name.contains_key(&name) {
                return Err(fail("name appears twice".into()));
            }
            let numel = ggml_dims
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| fail(format!("element count of dims {ggml_dims:?} overflows")))?;
            let block_len = ggml_type.block_len() as u64;
            let first_dim = ggml_dims.first().copied().unwrap_or(1);
            if !first_dim.is_multiple_of(block_len) {
                return Err(fail(format!(
                    "first dim {first_dim} is not a multiple of the {} block length {block_len}",
                    ggml_type.name()
                )));
            }
            if !offset.is_multiple_of(alignment) {
                return Err(fail(format!(
                    "offset {offset} is not a multiple of the alignment {alignment}"
                )));
            }
            let n_bytes = (numel / block_len).checked_mul(ggml_type.block_bytes() as u64);
            let range = n_bytes.and_then(|n| {
                let start = data_start.checked_add(offset)?;
                Some((start, start.checked_add(n)?, n))
            });
            let (start, n_bytes) = match range {
                Some((start, end, n)) if end <= file_len as u64 => (start as usize, n as usize),
                _ => {
                    return Err(fail(format!(
                        "{} data of dims {ggml_dims:?} at offset {offset} extends past the end of the file ({file_len} bytes)",
                        ggml_type.name()
                    )));
                }
            };
            by_name.insert(name.clone(), tensors.len());
            tensors.push(GgufTensorInfo {
                name,
                ggml_dims,
                ggml_type,
                start,
                n_bytes,
            });
        }

        Ok(Self {
            path,
            bytes,
            version,
            metadata,
            tensors,
            by_name,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// All metadata, by key.
    pub fn metadata(&self) -> &BTreeMap<String, MetadataValue> {
        &self.metadata
    }

    pub fn metadata_value(&self, key: &str) -> Option<&MetadataValue> {
        self.metadata.get(key)
    }

    /// `general.architecture` ("" when the file does not say).
    pub fn architecture(&self) -> &str {
        self.metadata
            .get("general.architecture")
            .and_then(MetadataValue::as_str)
            .unwrap_or_default()
    }

    /// The tensor directory, in file order.
    pub fn tensor_infos(&self) -> &[GgufTensorInfo] {
        &self.tensors
    }

    /// The directory entry of the tensor named `name` in the file.
    pub fn tensor_info(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// The data of `info` (an entry of this file's directory), dequantized to `f32` in file
    /// order; an error names the tensor when its type is not dequantized here.
    pub fn read(&self, info: &GgufTensorInfo) -> Result<Vec<f32>, WeightError> {
        let bytes = self.raw(info)?;
        dequantize(info.ggml_type, bytes).ok_or_else(|| {
            self.tensor_error(
                info,
                format!(
                    "ggml type {} is not dequantized here",
                    info.ggml_type.name()
                ),
            )
        })
    }

    /// The bytes of `info`'s data as the file stores them (blocks of its ggml type).
    pub fn raw(&self, info: &GgufTensorInfo) -> Result<&[u8], WeightError> {
        info.start
            .checked_add(info.n_bytes)
            .and_then(|end| self.bytes.get(info.start..end))
            .ok_or_else(|| self.tensor_error(info, "lies outside this file".into()))
    }

    pub(crate) fn tensor_error(&self, info: &GgufTensorInfo, reason: String) -> WeightError {
        WeightError::Tensor {
            path: self.path.clone(),
            tensor: info.name.clone(),
            reason,
        }
    }

    pub(crate) fn metadata_error(&self, key: &str, reason: impl Into<String>) -> WeightError {
        WeightError::Metadata {
            path: self.path.clone(),
            key: key.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn optional_u64(&self, key: &str) -> Result<Option<u64>, WeightError> {
        self.metadata
            .get(key)
            .map(|v| {
                v.as_u64().ok_or_else(|| {
                    self.metadata_error(
                        key,
                        format!("expected an unsigned integer, found {}", v.type_name()),
                    )
                })
            })
            .transpose()
    }

    pub(crate) fn required_u64(&self, key: &str) -> Result<u64, WeightError> {
        self.optional_u64(key)?
            .ok_or_else(|| self.metadata_error(key, "missing"))
    }

    pub(crate) fn optional_f64(&self, key: &str) -> Result<Option<f64>, WeightError> {
        self.metadata
            .get(key)
            .map(|v| {
                v.as_f64().ok_or_else(|| {
                    self.metadata_error(key, format!("expected a float, found {}", v.type_name()))
                })
            })
            .transpose()
    }

    pub(crate) fn optional_u32(&self, key: &str) -> Result<Option<u32>, WeightError> {
        self.optional_u64(key)?
            .map(|v| {
                u32::try_from(v)
                    .map_err(|_| self.metadata_error(key, format!("{v} does not fit u32")))
            })
            .transpose()
    }

    pub(crate) fn string_array(&self, key: &str) -> Result<Option<Vec<String>>, WeightError> {
        let Some(value) = self.metadata.get(key) else {
            return Ok(None);
        };
        let items = value.as_array().ok_or_else(|| {
            self.metadata_error(
                key,
                format!("expected an array, found {}", value.type_name()),
            )
        })?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    self.metadata_error(
                        key,
                        format!("element {i} is a {}, not a string", item.type_name()),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// A bounds-checked little-endian cursor; every read names the field it is for.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn error_at(&self, offset: usize, field: &str, reason: impl Into<String>) -> WeightError {
        WeightError::Malformed {
            path: self.path.to_owned(),
            field: field.into(),
            offset: offset as u64,
            reason: reason.into(),
        }
    }

    fn error(&self, field: &str, reason: impl Into<String>) -> WeightError {
        self.error_at(self.pos, field, reason)
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], WeightError> {
        if n > self.remaining() {
            return Err(self.error(
                field,
                format!(
                    "needs {n} bytes, {} remain (truncated file?)",
                    self.remaining()
                ),
            ));
        }
        let bytes: &'a [u8] = self.bytes;
        let slice = &bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], WeightError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn u32(&mut self, field: &str) -> Result<u32, WeightError> {
        self.array(field).map(u32::from_le_bytes)
    }

    fn u64(&mut self, field: &str) -> Result<u64, WeightError> {
        self.array(field).map(u64::from_le_bytes)
    }

    /// A `u64` count of items at least `min_item_bytes` long each, checked against what remains.
    fn count(&mut self, field: &str, min_item_bytes: usize) -> Result<usize, WeightError> {
        let at = self.pos;
        let count = self.u64(field)?;
        let limit = self.remaining() / min_item_bytes;
        match usize::try_from(count) {
            Ok(count) if count <= limit => Ok(count),
            _ => Err(self.error_at(
                at,
                field,
                format!(
                    "{count} items cannot fit in the {} bytes left",
                    self.remaining()
                ),
            )),
        }
    }

    fn string(&mut self, field: &str) -> Result<String, WeightError> {
        let at = self.pos;
        let len = self.count(field, 1)?;
        let bytes = self.take(len, field)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|e| self.error_at(at, field, format!("not UTF-8: {e}")))
    }

    /// Smallest encoding of one value of GGUF type `type_id`, `None` for unknown types.
    fn min_value_bytes(type_id: u32) -> Option<usize> {
        Some(match type_id {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            8 | 10..=12 => 8,
            9 => 4 + 8,
            _ => return None,
        })
    }

    fn value(
        &mut self,
        type_id: u32,
        field: &str,
        depth: usize,
    ) -> Result<MetadataValue, WeightError> {
        Ok(match type_id {
            0 => MetadataValue::U8(u8::from_le_bytes(self.array(field)?)),
            1 => MetadataValue::I8(i8::from_le_bytes(self.array(field)?)),
            2 => MetadataValue::U16(u16::from_le_bytes(self.array(field)?)),
            3 => MetadataValue::I16(i16::from_le_bytes(self.array(field)?)),
            4 => MetadataValue::U32(self.u32(field)?),
            5 => MetadataValue::I32(i32::from_le_bytes(self.array(field)?)),
            6 => MetadataValue::F32(f32::from_le_bytes(self.array(field)?)),
            7 => match self.array::<1>(field)? {
                [0] => MetadataValue::Bool(false),
                [1] => MetadataValue::Bool(true),
                [other] => {
                    return Err(self.error_at(self.pos - 1, field, format!("bool byte {other}")));
                }
            },
            8 => MetadataValue::String(self.string(field)?),
            9 => {
                if depth >= MAX_ARRAY_NESTING {
                    return Err(self.error(
                        field,
                        format!("arrays nested deeper than {MAX_ARRAY_NESTING}"),
                    ));
                }
                let item_type = self.u32(&format!("{field} array type"))?;
                let min_bytes = Self::min_value_bytes(item_type).ok_or_else(|| {
                    self.error(field, format!("unknown array element type {item_type}"))
                })?;
                let count = self.count(&format!("{field} array length"), min_bytes)?;
                let mut items = Vec::with_capacity(count);
                for index in 0..count {
                    items.push(self.value(item_type, &format!("{field}[{index}]"), depth + 1)?);
                }
                MetadataValue::Array(items)
            }
            10 => MetadataValue::U64(self.u64(field)?),
            11 => MetadataValue::I64(i64::from_le_bytes(self.array(field)?)),
            12 => MetadataValue::F64(f64::from_le_bytes(self.array(field)?)),
            other => return Err(self.error(field, format!("unknown value type {other}"))),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
