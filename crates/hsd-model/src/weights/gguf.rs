//! GGUF (v2, v3) files: metadata, tensor directory, dequantized tensors under Hugging Face names.
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

use serde_json::{Value, json};

pub use super::dequant::GgmlType;
use super::dequant::dequantize;
use super::{Bytes, HostTensor, TensorSource, WeightError};
use crate::chat::ChatTemplate;
use crate::tokenizer::{ByteLevelBpe, TextTokenizer};

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

/// Architectures whose tensors follow llama.cpp's llama naming and RoPE row permutation.
const LLAMA_ARCHITECTURES: &[&str] = &["llama"];

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
    pub gguf_name: String,
    /// The Hugging Face name it is served under, e.g. "model.layers.0.self_attn.q_proj.weight".
    pub hf_name: String,
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
///
/// For llama-architecture files tensors are served under Hugging Face names (`token_embd.weight`
/// as `model.embed_tokens.weight`, ...), with q/k projection rows restored to HF order; tensors
/// outside that map (`rope_freqs.weight`) and all tensors of other architectures keep their
/// GGUF names.
pub struct GgufModel {
    path: PathBuf,
    bytes: Bytes,
    version: u32,
    metadata: BTreeMap<String, MetadataValue>,
    tensors: Vec<GgufTensorInfo>,
    by_hf_name: HashMap<String, usize>,
}

impl fmt::Debug for GgufModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufModel")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufModel {
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

        let architecture = metadata
            .get("general.architecture")
            .and_then(MetadataValue::as_str)
            .unwrap_or_default();
        let llama_names = LLAMA_ARCHITECTURES.contains(&architecture);

        let mut tensors = Vec::with_capacity(raw_infos.len());
        let mut by_hf_name = HashMap::with_capacity(raw_infos.len());
        let mut seen = std::collections::HashSet::with_capacity(raw_infos.len());
        for (gguf_name, ggml_dims, ggml_type, offset) in raw_infos {
            let fail = |reason: String| WeightError::Tensor {
                path: path.clone(),
                tensor: gguf_name.clone(),
                reason,
            };
            if !seen.insert(gguf_name.clone()) {
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
            let hf_name = if llama_names {
                llama_hf_name(&gguf_name).unwrap_or_else(|| gguf_name.clone())
            } else {
                gguf_name.clone()
            };
            if by_hf_name.insert(hf_name.clone(), tensors.len()).is_some() {
                return Err(fail(format!("maps to {hf_name:?}, as another tensor does")));
            }
            tensors.push(GgufTensorInfo {
                gguf_name,
                hf_name,
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
            by_hf_name,
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

    /// The tensor directory, in file order.
    pub fn tensor_infos(&self) -> &[GgufTensorInfo] {
        &self.tensors
    }

    /// The directory entry of the tensor served under Hugging Face name `hf_name`.
    pub fn tensor_info(&self, hf_name: &str) -> Option<&GgufTensorInfo> {
        self.by_hf_name.get(hf_name).map(|&i| &self.tensors[i])
    }

    /// `general.architecture` ("" when the file does not say).
    pub fn architecture(&self) -> &str {
        self.metadata
            .get("general.architecture")
            .and_then(MetadataValue::as_str)
            .unwrap_or_default()
    }

    /// `tokenizer.chat_template`, when the file carries one.
    pub fn chat_template(&self) -> Option<&str> {
        self.metadata
            .get("tokenizer.chat_template")
            .and_then(MetadataValue::as_str)
    }

    /// The chat template with the file's BOS and EOS token strings, when it carries one.
    pub fn chat(&self) -> Result<Option<ChatTemplate>, WeightError> {
        let Some(source) = self.chat_template() else {
            return Ok(None);
        };
        let tokens = self
            .string_array("tokenizer.ggml.tokens")?
            .unwrap_or_default();
        let token = |key: &str| -> Result<String, WeightError> {
            Ok(self
                .optional_u64(key)?
                .and_then(|id| tokens.get(usize::try_from(id).ok()?))
                .cloned()
                .unwrap_or_default())
        };
        let bos = token("tokenizer.ggml.bos_token_id")?;
        let eos = token("tokenizer.ggml.eos_token_id")?;
        ChatTemplate::new(source, &bos, &eos)
            .map(Some)
            .map_err(|source| WeightError::Chat {
                path: self.path.clone(),
                source,
            })
    }

    fn metadata_error(&self, key: &str, reason: impl Into<String>) -> WeightError {
        WeightError::Metadata {
            path: self.path.clone(),
            key: key.into(),
            reason: reason.into(),
        }
    }

    fn optional_u64(&self, key: &str) -> Result<Option<u64>, WeightError> {
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

    fn required_u64(&self, key: &str) -> Result<u64, WeightError> {
        self.optional_u64(key)?
            .ok_or_else(|| self.metadata_error(key, "missing"))
    }

    fn optional_f64(&self, key: &str) -> Result<Option<f64>, WeightError> {
        self.metadata
            .get(key)
            .map(|v| {
                v.as_f64().ok_or_else(|| {
                    self.metadata_error(key, format!("expected a float, found {}", v.type_name()))
                })
            })
            .transpose()
    }

    fn optional_u32(&self, key: &str) -> Result<Option<u32>, WeightError> {
        self.optional_u64(key)?
            .map(|v| {
                u32::try_from(v)
                    .map_err(|_| self.metadata_error(key, format!("{v} does not fit u32")))
            })
            .transpose()
    }

    fn string_array(&self, key: &str) -> Result<Option<Vec<String>>, WeightError> {
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

    /// An HF-style `config.json` derived from the metadata, as transformers derives it when it
    /// loads a GGUF. Only llama-architecture files are described.
    pub fn config_json(&self) -> Result<Value, WeightError> {
        let arch = self.architecture();
        if !LLAMA_ARCHITECTURES.contains(&arch) {
            return Err(self.metadata_error(
                "general.architecture",
                format!("a config is derived for {LLAMA_ARCHITECTURES:?} only, not {arch:?}"),
            ));
        }
        let key = |name: &str| format!("{arch}.{name}");
        let hidden = self.required_u64(&key("embedding_length"))?;
        let heads = self.required_u64(&key("attention.head_count"))?;
        if heads == 0 {
            return Err(self.metadata_error(&key("attention.head_count"), "is 0"));
        }
        let kv_heads = self
            .optional_u64(&key("attention.head_count_kv"))?
            .unwrap_or(heads);
        let head_dim = self
            .optional_u64(&key("attention.key_length"))?
            .unwrap_or(hidden / heads);
        let rms_norm_eps = self
            .optional_f64(&key("attention.layer_norm_rms_epsilon"))?
            .ok_or_else(|| {
                self.metadata_error(&key("attention.layer_norm_rms_epsilon"), "missing")
            })?;
        // llama.cpp's default, used when a converter left the base out
        let rope_theta = self
            .optional_f64(&key("rope.freq_base"))?
            .unwrap_or(10_000.0);
        let vocab_size = match self.optional_u64(&key("vocab_size"))? {
            Some(v) => v,
            None => match self.string_array("tokenizer.ggml.tokens")? {
                Some(tokens) => tokens.len() as u64,
                None => self
                    .tensor_info("model.embed_tokens.weight")
                    .and_then(|t| t.ggml_dims.get(1).copied())
                    .ok_or_else(|| {
                        self.metadata_error(
                            &key("vocab_size"),
                            "missing, and no vocabulary or embedding to count",
                        )
                    })?,
            },
        };
        Ok(json!({
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "hidden_size": hidden,
            "intermediate_size": self.required_u64(&key("feed_forward_length"))?,
            "num_hidden_layers": self.required_u64(&key("block_count"))?,
            "num_attention_heads": heads,
            "num_key_value_heads": kv_heads,
            "head_dim": head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": rms_norm_eps,
            "rope_theta": rope_theta,
            "vocab_size": vocab_size,
            "max_position_embeddings": self.required_u64(&key("context_length"))?,
            // llama.cpp writes the output projection only when it is not the embedding matrix
            "tie_word_embeddings": !self.by_hf_name.contains_key("lm_head.weight"),
            "bos_token_id": self.optional_u64("tokenizer.ggml.bos_token_id")?,
            "eos_token_id": self.optional_u64("tokenizer.ggml.eos_token_id")?,
            "pad_token_id": self.optional_u64("tokenizer.ggml.padding_token_id")?,
        }))
    }

    /// The tokenizer the metadata describes. Only byte-level BPE (`tokenizer.ggml.model` =
    /// "gpt2") is built.
    pub fn tokenizer(&self) -> Result<TextTokenizer, WeightError> {
        let model_key = "tokenizer.ggml.model";
        let model = self
            .metadata
            .get(model_key)
            .and_then(MetadataValue::as_str)
            .ok_or_else(|| self.metadata_error(model_key, "missing or not a string"))?;
        if model != "gpt2" {
            return Err(self.metadata_error(
                model_key,
                format!("only byte-level BPE (\"gpt2\") tokenizers are built, not {model:?}"),
            ));
        }
        let tokens = self
            .string_array("tokenizer.ggml.tokens")?
            .ok_or_else(|| self.metadata_error("tokenizer.ggml.tokens", "missing"))?;
        let merges = self
            .string_array("tokenizer.ggml.merges")?
            .ok_or_else(|| self.metadata_error("tokenizer.ggml.merges", "missing"))?;
        let type_key = "tokenizer.ggml.token_type";
        let token_types = match self.metadata.get(type_key) {
            None => Vec::new(),
            Some(value) => value
                .as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .map(MetadataValue::as_i64)
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| self.metadata_error(type_key, "expected an array of integers"))?,
        };
        let eos_ids = ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"]
            .iter()
            .filter_map(|key| self.optional_u32(key).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        let spec = ByteLevelBpe {
            tokens,
            token_types,
            merges,
            pre_tokenizer: self
                .metadata
                .get("tokenizer.ggml.pre")
                .and_then(MetadataValue::as_str)
                .map(str::to_owned),
            bos_id: self.optional_u32("tokenizer.ggml.bos_token_id")?,
            eos_ids,
            pad_id: self.optional_u32("tokenizer.ggml.padding_token_id")?,
        };
        TextTokenizer::from_byte_level_bpe(spec).map_err(|source| WeightError::Tokenizer {
            path: self.path.clone(),
            source,
        })
    }

    /// Head count that llama.cpp's converter permuted the rows of `hf_name` with, if it did.
    fn rope_permutation_heads(&self, hf_name: &str) -> Result<Option<u64>, WeightError> {
        if !LLAMA_ARCHITECTURES.contains(&self.architecture()) {
            return Ok(None);
        }
        let arch = self.architecture();
        let heads_key = format!("{arch}.attention.head_count");
        if hf_name.contains(".self_attn.q_proj.") {
            self.required_u64(&heads_key).map(Some)
        } else if hf_name.contains(".self_attn.k_proj.") {
            let kv_key = format!("{arch}.attention.head_count_kv");
            match self.optional_u64(&kv_key)? {
                Some(kv_heads) => Ok(Some(kv_heads)),
                None => self.required_u64(&heads_key).map(Some),
            }
        } else {
            Ok(None)
        }
    }
}

impl TensorSource for GgufModel {
    fn names(&self) -> Vec<String> {
        self.tensors.iter().map(|t| t.hf_name.clone()).collect()
    }

    fn contains(&self, name: &str) -> bool {
        self.by_hf_name.contains_key(name)
    }

    fn load(&self, name: &str) -> Result<HostTensor, WeightError> {
        let info = self
            .tensor_info(name)
            .ok_or_else(|| WeightError::MissingTensor {
                path: self.path.clone(),
                tensor: name.into(),
            })?;
        let fail = |reason: String| WeightError::Tensor {
            path: self.path.clone(),
            tensor: info.gguf_name.clone(),
            reason,
        };
        let bytes = &self.bytes[info.start..info.start + info.n_bytes];
        let mut data = dequantize(info.ggml_type, bytes).ok_or_else(|| {
            fail(format!(
                "ggml type {} is not dequantized here",
                info.ggml_type.name()
            ))
        })?;
        let shape = info.shape();
        if let Some(stated_heads) = self.rope_permutation_heads(name)?
            && !data.is_empty()
        {
            let rows = shape.first().copied().unwrap_or(1);
            let heads = usize::try_from(stated_heads).ok().filter(|&h| {
                h.checked_mul(2)
                    .is_some_and(|pair_rows| pair_rows > 0 && rows.is_multiple_of(pair_rows))
            });
            let Some(heads) = heads else {
                return Err(fail(format!(
                    "{rows} rows cannot be split into {stated_heads} heads of two RoPE halves"
                )));
            };
            data = unpermute_rope_rows(&data, rows, heads);
        }
        Ok(HostTensor {
            name: name.into(),
            shape,
            data,
        })
    }
}

/// Undoes llama.cpp's `permute` of q/k projection rows. Within each head of `2 * half` rows the
/// converter stores HF row `j * half + i` (RoPE half j, pair index i) at row `2 * i + j`, which
/// interleaves the two rotary halves; transformers reverses this the same way when it loads a GGUF.
fn unpermute_rope_rows(data: &[f32], rows: usize, heads: usize) -> Vec<f32> {
    let row_len = data.len() / rows;
    let head_dim = rows / heads;
    let half = head_dim / 2;
    let mut out = vec![0.0; data.len()];
    for head in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                let from = head * head_dim + 2 * i + j;
                let to = head * head_dim + j * half + i;
                out[to * row_len..(to + 1) * row_len]
                    .copy_from_slice(&data[from * row_len..(from + 1) * row_len]);
            }
        }
    }
    out
}

/// The Hugging Face name of a llama.cpp llama tensor, `None` for names outside the map.
fn llama_hf_name(gguf_name: &str) -> Option<String> {
    let fixed = match gguf_name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(name) = fixed {
        return Some(name.into());
    }
    let rest = gguf_name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, param) = rest.rsplit_once('.')?;
    if !matches!(param, "weight" | "bias") {
        return None;
    }
    let hf_module = match module {
        "attn_norm" => "input_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_norm" => "post_attention_layernorm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf_module}.{param}"))
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
