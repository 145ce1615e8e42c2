use std::path::PathBuf;

use crate::chat::ChatError;
use crate::weights::WeightError;

/// Everything that can go wrong while loading or running a decoder.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("backend `{backend}` is not compiled in: rebuild with `--features {feature}`")]
    BackendNotCompiled {
        backend: &'static str,
        feature: &'static str,
    },
    #[error("unknown backend `{0}` (expected flex, ndarray, tch or wgpu)")]
    UnknownBackend(String),
    #[error("unknown weights `{0}` (expected f32 or native)")]
    UnknownWeights(String),
    #[error("model `{spec}`: {reason}")]
    ModelSpec { spec: String, reason: String },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Config {
        path: String,
        source: serde_json::Error,
    },
    #[error(
        "{path}: unsupported architecture `{model_type}` (supported: gpt2, llama, qwen2, mistral, phi)"
    )]
    UnsupportedArchitecture { path: String, model_type: String },
    #[error("{path}: field `{field}`: {reason}")]
    UnsupportedConfig {
        path: String,
        field: &'static str,
        reason: String,
    },
    #[error("tensor `{tensor}`: expected shape {expected:?}, found {found:?}")]
    Shape {
        tensor: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error(transparent)]
    Weight(#[from] WeightError),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("model `{spec}`: {source}")]
    Chat { spec: String, source: ChatError },
    #[error("batch: {0}")]
    Batch(String),
    #[error("speculative drafter: {0}")]
    Drafter(String),
    #[error("plan from strategy `{strategy}` covers {found} layers, the model has {layers}")]
    PlanUniverse {
        strategy: String,
        found: usize,
        layers: usize,
    },
    #[error(
        "sequence of {needed} positions exceeds the model's {limit} (`max_position_embeddings`/`n_positions`)"
    )]
    TooLong { needed: usize, limit: usize },
    #[error("adapter module `{module}`: {reason}")]
    Adapter { module: String, reason: String },
    #[error("reading tensor `{tensor}` back from the device: {reason}")]
    Readback {
        tensor: &'static str,
        reason: String,
    },
}
