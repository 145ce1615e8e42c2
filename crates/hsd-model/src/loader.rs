//! From a model spec (registry name, `.gguf` file or Hugging Face directory) to a decoder,
//! its tokenizer and a record of the files it came from.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hsd_skip::ModelShapes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::attention::CacheAttention;
use crate::chat::{ChatTemplate, template_source_of_hf_dir};
use crate::decoder::{Decoder, Model};
use crate::gpt2::{Gpt2, Gpt2Config};
use crate::llama::{Llama, LlamaConfig};
use crate::phi::{Phi, PhiConfig};
use crate::tokenizer::TextTokenizer;
use crate::weights::{GgufModel, HostTensor, SafetensorsDir, TensorSource, WeightError};
use crate::{Backend, ModelError};

/// Model names `load_model` resolves under `$HSD_MODELS` (default `./models`).
pub const KNOWN_MODELS: &[(&str, &str)] = &[("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")];

/// A file a model was read from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceFile {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

/// Where a loaded model came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelSource {
    /// The spec as given.
    pub spec: String,
    /// `model_type` of the configuration (`llama`, `qwen2`, `gpt2`, `phi`).
    pub architecture: String,
    pub files: Vec<SourceFile>,
    /// How the weights are held; stated only when not the `f32` reference.
    #[serde(skip_serializing_if = "WeightMode::is_f32")]
    pub weights: WeightMode,
}

/// How a model holds the weights of its projections and LM head.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightMode {
    /// Dequantized to `f32`: the reference every fixture is made against, on every backend.
    #[default]
    F32,
    /// Also in the file's own quantized blocks (GGUF), which decode passes of up to 16 rows
    /// read on Flex: about 6x fewer bytes a token for Q4_1. Prefill and other backends multiply
    /// by the `f32` copy, which holds the same values; files without blocks load as `f32`.
    /// On Flex every pass also attends over the cache with fused kernels (one pass per head for
    /// decode passes, tiles of query rows through `gemm` for prefill) and runs SwiGLU with a
    /// SIMD `exp`: sums in another order and exponentials within 2 ulp of the `f32` reference's.
    Native,
}

impl WeightMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Native => "native",
        }
    }

    pub fn is_f32(&self) -> bool {
        *self == Self::F32
    }
}

impl fmt::Display for WeightMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WeightMode {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "f32" => Ok(Self::F32),
            "native" => Ok(Self::Native),
            _ => Err(ModelError::UnknownWeights(s.to_string())),
        }
    }
}

/// A source served as plain `f32` only: what [`WeightMode::F32`] loads from a GGUF.
struct F32Only<'a>(&'a dyn TensorSource);

impl TensorSource for F32Only<'_> {
    fn names(&self) -> Vec<String> {
        self.0.names()
    }

    fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    fn load(&self, name: &str) -> Result<HostTensor, WeightError> {
        self.0.load(name)
    }
}

/// A decoder with everything needed to turn text into tokens and back.
#[derive(Debug)]
pub struct LoadedModel {
    pub decoder: Decoder,
    /// Absent for a directory without `tokenizer.json`.
    pub tokenizer: Option<TextTokenizer>,
    /// The chat template's Jinja source; [`LoadedModel::chat`] compiles it.
    pub chat_template: Option<String>,
    pub shapes: ModelShapes,
    pub source: ModelSource,
}

impl LoadedModel {
    pub fn tokenizer(&self) -> Result<&TextTokenizer, ModelError> {
        self.tokenizer
            .as_ref()
            .ok_or_else(|| ModelError::ModelSpec {
                spec: self.source.spec.clone(),
                reason: "has no tokenizer.json".into(),
            })
    }

    /// The model's chat template, rendered with its tokenizer's BOS and EOS text. An error
    /// when the model has no template: prompt it in plain mode then.
    pub fn chat(&self) -> Result<ChatTemplate, ModelError> {
        let source = self
            .chat_template
            .as_deref()
            .ok_or_else(|| ModelError::ModelSpec {
                spec: self.source.spec.clone(),
                reason: "has no chat template; use plain prompt mode".into(),
            })?;
        ChatTemplate::for_tokenizer(source, self.tokenizer()?).map_err(|source| ModelError::Chat {
            spec: self.source.spec.clone(),
            source,
        })
    }
}

/// Loads `spec`: a name from [`KNOWN_MODELS`], a `.gguf` file, or a Hugging Face directory
/// (`config.json`, `model.safetensors` or a sharded index, optionally `tokenizer.json`), with
/// `f32` weights.
pub fn load_model(spec: &str, backend: Backend) -> Result<LoadedModel, ModelError> {
    load_model_with(spec, backend, WeightMode::F32)
}

/// [`load_model`] with the weights held as `weights` says.
pub fn load_model_with(
    spec: &str,
    backend: Backend,
    weights: WeightMode,
) -> Result<LoadedModel, ModelError> {
    let device = backend.device()?;
    let path = resolve_model_path(spec)?;
    let spec_error = |reason: String| ModelError::ModelSpec {
        spec: spec.to_string(),
        reason,
    };
    if path.is_dir() {
        let config_path = path.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|source| ModelError::Io {
            path: config_path.clone(),
            source,
        })?;
        let config: Value = serde_json::from_str(&text).map_err(|source| ModelError::Config {
            path: config_path.display().to_string(),
            source,
        })?;
        // An architecture this crate cannot build is the first thing to say, before weights.
        supported_model_type(&config, &config_path.display().to_string())?;
        let weights = SafetensorsDir::open(&path)?;
        let (model, architecture) = build(
            &config,
            &config_path.display().to_string(),
            &weights,
            &device,
        )?;
        let tokenizer_path = path.join("tokenizer.json");
        let tokenizer =
            if tokenizer_path.exists() {
                Some(TextTokenizer::from_file(&tokenizer_path).map_err(|e| {
                    ModelError::Tokenizer(format!("{}: {e}", tokenizer_path.display()))
                })?)
            } else {
                None
            };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
            .map_err(|source| ModelError::Io {
                path: path.clone(),
                source,
            })?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "safetensors" || e == "json")
            })
            .collect();
        files.sort();
        let decoder = Decoder::new(model, device, CacheAttention::Reference);
        let shapes = decoder.shapes();
        Ok(LoadedModel {
            decoder,
            tokenizer,
            chat_template: template_source_of_hf_dir(&path).map_err(|source| ModelError::Chat {
                spec: spec.to_string(),
                source,
            })?,
            shapes,
            source: ModelSource {
                spec: spec.to_string(),
                architecture,
                files: files
                    .iter()
                    .map(|f| describe(f))
                    .collect::<Result<_, _>>()?,
                // Safetensors hold no blocks: the file's own weights are its floats.
                weights: WeightMode::F32,
            },
        })
    } else if path.extension().is_some_and(|e| e == "gguf") {
        let gguf = GgufModel::open(&path)?;
        let config = gguf.config_json()?;
        let f32_only = F32Only(&gguf);
        let source: &dyn TensorSource = match weights {
            WeightMode::F32 => &f32_only,
            WeightMode::Native => &gguf,
        };
        let (model, architecture) = build(&config, &path.display().to_string(), source, &device)?;
        let tokenizer = gguf.tokenizer()?;
        let attention = match weights {
            WeightMode::F32 => CacheAttention::Reference,
            WeightMode::Native => CacheAttention::Fused,
        };
        let decoder = Decoder::new(model, device, attention);
        let shapes = decoder.shapes();
        Ok(LoadedModel {
            decoder,
            tokenizer: Some(tokenizer),
            chat_template: gguf.chat_template().map(str::to_owned),
            shapes,
            source: ModelSource {
                spec: spec.to_string(),
                architecture,
                files: vec![describe(&path)?],
                weights,
            },
        })
    } else {
        Err(spec_error(format!(
            "{} is neither a directory nor a .gguf file",
            path.display()
        )))
    }
}

/// The models directory: `$HSD_MODELS`, else `./models`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("HSD_MODELS").map_or_else(|| PathBuf::from("models"), PathBuf::from)
}

/// The file or directory `spec` names (a name from [`KNOWN_MODELS`] under [`models_dir`], or a
/// path), checked to exist; nothing is read. [`load_model`] starts here.
pub fn resolve_model_path(spec: &str) -> Result<PathBuf, ModelError> {
    if let Some((_, file)) = KNOWN_MODELS.iter().find(|(name, _)| *name == spec) {
        let path = models_dir().join(file);
        return if path.exists() {
            Ok(path)
        } else {
            Err(ModelError::ModelSpec {
                spec: spec.to_string(),
                reason: format!("{} does not exist (set HSD_MODELS)", path.display()),
            })
        };
    }
    let path = PathBuf::from(spec);
    if path.exists() {
        Ok(path)
    } else {
        let names: Vec<&str> = KNOWN_MODELS.iter().map(|(name, _)| *name).collect();
        Err(ModelError::ModelSpec {
            spec: spec.to_string(),
            reason: format!(
                "no such file or directory, and not a known name ({})",
                names.join(", ")
            ),
        })
    }
}

/// The architectures [`build`] knows, by `model_type`.
const MODEL_TYPES: [&str; 6] = ["gpt2", "llama", "mistral", "qwen2", "smollm", "phi"];

/// `config`'s `model_type`, or the error naming the file and the type it cannot build.
fn supported_model_type(config: &Value, path: &str) -> Result<String, ModelError> {
    let model_type = config
        .get("model_type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if MODEL_TYPES.contains(&model_type.as_str()) {
        Ok(model_type)
    } else {
        Err(ModelError::UnsupportedArchitecture {
            path: path.to_string(),
            model_type,
        })
    }
}

/// Builds the architecture `config` names from `weights`.
pub(crate) fn build(
    config: &Value,
    path: &str,
    weights: &dyn TensorSource,
    device: &burn::tensor::Device,
) -> Result<(Model, String), ModelError> {
    let model_type = supported_model_type(config, path)?;
    let model = match model_type.as_str() {
        "gpt2" => Model::Gpt2(Gpt2::load(
            &from_value::<Gpt2Config>(config, path)?,
            path,
            weights,
            device,
        )?),
        "llama" | "mistral" | "qwen2" | "smollm" => Model::Llama(Llama::load(
            &from_value::<LlamaConfig>(config, path)?,
            path,
            weights,
            device,
        )?),
        "phi" => Model::Phi(Phi::load(
            &from_value::<PhiConfig>(config, path)?,
            path,
            weights,
            device,
        )?),
        _ => {
            return Err(ModelError::UnsupportedArchitecture {
                path: path.to_string(),
                model_type,
            });
        }
    };
    Ok((model, model_type))
}

fn from_value<T: serde::de::DeserializeOwned>(config: &Value, path: &str) -> Result<T, ModelError> {
    T::deserialize(config).map_err(|source| ModelError::Config {
        path: path.to_string(),
        source,
    })
}

fn describe(path: &Path) -> Result<SourceFile, ModelError> {
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok(SourceFile {
        path: path.to_path_buf(),
        bytes,
        sha256: format!("{:x}", hasher.finalize()),
    })
}
