//! Weight files read into host `f32` tensors, named and shaped as Hugging Face stores them.
//!
//! Two sources implement [`TensorSource`]: a directory of safetensors files
//! ([`SafetensorsDir`]) and a GGUF file ([`GgufModel`], llama.cpp's naming mapped back to
//! Hugging Face's over the format reader [`GgufFile`]). A loader asks a source for tensors by
//! their PyTorch state-dict name and builds modules from them; modules never read files.

mod adapter;
mod block_matrix;
mod dequant;
mod gguf_file;
mod gguf_hf;
mod safetensors_dir;

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

pub use adapter::{
    ADAPTER_CONFIG, ADAPTER_WEIGHTS, AdapterConfig, HostFactors, PeftAdapter, TargetModules,
};
pub use block_matrix::BlockMatrix;
#[cfg(feature = "flex")]
pub(crate) use dequant::dequantize_into;
pub use gguf_file::{GgmlType, GgufFile, GgufTensorInfo, MetadataValue};
pub use gguf_hf::GgufModel;
pub use safetensors_dir::SafetensorsDir;

use crate::tokenizer::TokenizerError;

/// One tensor in host memory, dequantized to `f32`, row-major in PyTorch dimension order.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    /// The number of elements the shape describes.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Why a weight file could not be read. Every variant names the file and the field, key or
/// tensor at fault.
#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file's structure is wrong: `field` names what was being read at byte `offset`.
    #[error("{path}: {field} at byte {offset}: {reason}")]
    Malformed {
        path: PathBuf,
        field: String,
        offset: u64,
        reason: String,
    },
    #[error("{path}: tensor {tensor:?}: {reason}")]
    Tensor {
        path: PathBuf,
        tensor: String,
        reason: String,
    },
    #[error("{path}: no tensor named {tensor:?}")]
    MissingTensor { path: PathBuf, tensor: String },
    /// A JSON file (an adapter's configuration) that does not read as its schema.
    #[error("{path}: not a valid file of its kind: {reason}")]
    Json { path: PathBuf, reason: String },
    #[error("{path}: metadata key {key:?}: {reason}")]
    Metadata {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error("{path}: tokenizer: {source}")]
    Tokenizer {
        path: PathBuf,
        #[source]
        source: TokenizerError,
    },
}

/// A store of named tensors.
pub trait TensorSource: Send + Sync {
    /// Tensor names in Hugging Face (PyTorch state-dict) naming, e.g.
    /// "model.layers.0.self_attn.q_proj.weight", "transformer.h.0.attn.c_attn.weight".
    fn names(&self) -> Vec<String>;
    fn contains(&self, name: &str) -> bool;
    /// The tensor dequantized to f32, shape in PyTorch order (nn.Linear weight = [out, in];
    /// GPT-2's Conv1D stays [in, out] as HF stores it).
    fn load(&self, name: &str) -> Result<HostTensor, WeightError>;
    /// The 2-D tensor `name` in the file's own quantized blocks, shape and row order as
    /// [`Self::load`] gives them; `None` when the file stores it as plain `f32` (or holds no
    /// blocks at all, as safetensors files do).
    fn load_blocks(&self, name: &str) -> Result<Option<BlockMatrix>, WeightError> {
        let _ = name;
        Ok(None)
    }
}

/// A weight file's bytes: memory-mapped from disk, or owned (parsers fed from memory).
pub(crate) enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    pub(crate) fn map(path: &Path) -> Result<Self, WeightError> {
        let io = |source| WeightError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and private to this value; like every reader of model
        // files we assume nobody truncates the file while it is open.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Ok(Self::Mapped(map))
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Self::Mapped(map) => map,
            Self::Owned(bytes) => bytes,
        }
    }
}
