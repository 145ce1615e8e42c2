//! LoRA adapters in the Hugging Face PEFT layout: a directory with `adapter_config.json` and
//! `adapter_model.safetensors`, whose tensors are named
//! `base_model.model.<module>.lora_A.weight` (`[rank, in]`) and `...lora_B.weight`
//! (`[out, rank]`), so that `peft.PeftModel.from_pretrained` loads what hsd writes and back.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use super::{HostTensor, SafetensorsDir, TensorSource, WeightError};

pub const ADAPTER_CONFIG: &str = "adapter_config.json";
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";

/// PEFT's prefix of every adapter tensor: the `PeftModel` wraps the causal LM as
/// `base_model.model`.
const PEFT_PREFIX: &str = "base_model.model.";

/// The fields of PEFT's `LoraConfig` that hsd reads and writes. Others that change the math
/// (DoRA, rsLoRA, per-module ranks, trained biases, saved modules) are refused when set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdapterConfig {
    pub peft_type: String,
    #[serde(default)]
    pub task_type: Option<String>,
    pub r: usize,
    pub lora_alpha: f64,
    #[serde(default)]
    pub lora_dropout: f64,
    /// Module name suffixes: `q_proj`, `c_attn`, `fc1`, ...
    pub target_modules: TargetModules,
    #[serde(default)]
    pub fan_in_fan_out: bool,
    #[serde(default = "no_bias")]
    pub bias: String,
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    #[serde(default)]
    pub use_dora: bool,
    #[serde(default)]
    pub use_rslora: bool,
    #[serde(default)]
    pub modules_to_save: Option<Vec<String>>,
    #[serde(default)]
    pub rank_pattern: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub alpha_pattern: BTreeMap<String, serde_json::Value>,
    #[serde(default = "yes")]
    pub inference_mode: bool,
    #[serde(default = "yes")]
    pub init_lora_weights: bool,
}

fn no_bias() -> String {
    "none".into()
}

fn yes() -> bool {
    true
}

/// PEFT writes `target_modules` as a list, or as one regex string.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetModules {
    List(Vec<String>),
    Pattern(String),
}

impl AdapterConfig {
    /// A LoRA config for `targets` (module name suffixes).
    pub fn lora(rank: usize, alpha: f64, dropout: f64, targets: Vec<String>, gpt2: bool) -> Self {
        Self {
            peft_type: "LORA".into(),
            task_type: Some("CAUSAL_LM".into()),
            r: rank,
            lora_alpha: alpha,
            lora_dropout: dropout,
            target_modules: TargetModules::List(targets),
            fan_in_fan_out: gpt2,
            bias: no_bias(),
            base_model_name_or_path: None,
            use_dora: false,
            use_rslora: false,
            modules_to_save: None,
            rank_pattern: BTreeMap::new(),
            alpha_pattern: BTreeMap::new(),
            inference_mode: true,
            init_lora_weights: true,
        }
    }

    /// PEFT's `scaling`: `lora_alpha / r`.
    pub fn scale(&self) -> f64 {
        self.lora_alpha / self.r as f64
    }

    fn check(&self, path: &Path) -> Result<(), WeightError> {
        let refuse = |key: &str, reason: String| {
            Err(WeightError::Metadata {
                path: path.to_owned(),
                key: key.into(),
                reason,
            })
        };
        if self.peft_type != "LORA" {
            return refuse("peft_type", format!("`{}`, only LORA", self.peft_type));
        }
        if self.r == 0 {
            return refuse("r", "must be at least 1".into());
        }
        if !(self.lora_alpha.is_finite() && self.lora_alpha > 0.0) {
            return refuse("lora_alpha", format!("{} is not positive", self.lora_alpha));
        }
        let unsupported = [
            ("use_dora", self.use_dora),
            ("use_rslora", self.use_rslora),
            ("bias", self.bias != "none"),
            ("modules_to_save", self.modules_to_save.is_some()),
            ("rank_pattern", !self.rank_pattern.is_empty()),
            ("alpha_pattern", !self.alpha_pattern.is_empty()),
        ];
        if let Some((key, _)) = unsupported.iter().find(|(_, set)| *set) {
            return refuse(key, "is set, which hsd does not implement".into());
        }
        Ok(())
    }
}

/// One module's factors in host memory.
#[derive(Clone, Debug, PartialEq)]
pub struct HostFactors {
    /// `[rank, in]`.
    pub a: HostTensor,
    /// `[out, rank]`.
    pub b: HostTensor,
}

/// A LoRA adapter read from or to be written to a PEFT directory.
#[derive(Clone, Debug, PartialEq)]
pub struct PeftAdapter {
    pub config: AdapterConfig,
    /// By Hugging Face module name, e.g. `model.layers.0.self_attn.q_proj`.
    pub factors: BTreeMap<String, HostFactors>,
}

impl PeftAdapter {
    /// Reads `dir/adapter_config.json` and `dir/adapter_model.safetensors`. Errors name the
    /// file and the key or tensor at fault.
    pub fn read(dir: &Path) -> Result<Self, WeightError> {
        if !dir.is_dir() {
            return Err(WeightError::Io {
                path: dir.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no adapter directory here (expected adapter_config.json and adapter_model.safetensors)",
                ),
            });
        }
        let config_path = dir.join(ADAPTER_CONFIG);
        let text = fs::read_to_string(&config_path).map_err(|source| WeightError::Io {
            path: config_path.clone(),
            source,
        })?;
        let config: AdapterConfig = serde_json::from_str(&text).map_err(|e| WeightError::Json {
            path: config_path.clone(),
            reason: e.to_string(),
        })?;
        config.check(&config_path)?;
        let weights_path = dir.join(ADAPTER_WEIGHTS);
        let source = SafetensorsDir::open(&weights_path)?;
        let factors = read_factors(&source, &weights_path, config.r)?;
        Ok(Self { config, factors })
    }

    /// Writes the PEFT directory; the same adapter always gives the same bytes.
    pub fn write(&self, dir: &Path) -> Result<(), WeightError> {
        let io = |path: PathBuf| move |source| WeightError::Io { path, source };
        fs::create_dir_all(dir).map_err(io(dir.to_owned()))?;
        let config_path = dir.join(ADAPTER_CONFIG);
        let mut text =
            serde_json::to_string_pretty(&self.config).map_err(|e| WeightError::Json {
                path: config_path.clone(),
                reason: e.to_string(),
            })?;
        text.push('\n');
        fs::write(&config_path, text).map_err(io(config_path.clone()))?;
        let weights_path = dir.join(ADAPTER_WEIGHTS);
        let bytes = self.safetensors_bytes(&weights_path)?;
        fs::write(&weights_path, bytes).map_err(io(weights_path))
    }

    fn safetensors_bytes(&self, path: &Path) -> Result<Vec<u8>, WeightError> {
        let mut named: Vec<(String, &HostTensor)> = Vec::new();
        for (module, f) in &self.factors {
            named.push((format!("{PEFT_PREFIX}{module}.lora_A.weight"), &f.a));
            named.push((format!("{PEFT_PREFIX}{module}.lora_B.weight"), &f.b));
        }
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = named
            .into_iter()
            .map(|(name, t)| {
                let data = t.data.iter().flat_map(|x| x.to_le_bytes()).collect();
                (name, t.shape.clone(), data)
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(name, shape, data)| {
                TensorView::new(Dtype::F32, shape.clone(), data)
                    .map(|view| (name.clone(), view))
                    .map_err(|e| WeightError::Tensor {
                        path: path.to_owned(),
                        tensor: name.clone(),
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
        safetensors::serialize(views, Some(metadata)).map_err(|e| WeightError::Malformed {
            path: path.to_owned(),
            field: "safetensors".into(),
            offset: 0,
            reason: e.to_string(),
        })
    }
}

/// Pairs `lora_A`/`lora_B` tensors by module; every tensor must be one of a pair.
fn read_factors(
    source: &SafetensorsDir,
    path: &Path,
    rank: usize,
) -> Result<BTreeMap<String, HostFactors>, WeightError> {
    let bad = |tensor: &str, reason: String| WeightError::Tensor {
        path: path.to_owned(),
        tensor: tensor.into(),
        reason,
    };
    let mut halves: BTreeMap<String, (Option<HostTensor>, Option<HostTensor>)> = BTreeMap::new();
    for name in source.names() {
        let (module, half) = name
            .strip_prefix(PEFT_PREFIX)
            .and_then(|rest| {
                rest.strip_suffix(".lora_A.weight")
                    .map(|m| (m, 0))
                    .or_else(|| rest.strip_suffix(".lora_B.weight").map(|m| (m, 1)))
            })
            .ok_or_else(|| {
                bad(
                    &name,
                    format!(
                        "not a LoRA factor (expected `{PEFT_PREFIX}<module>.lora_A.weight` or `.lora_B.weight`)"
                    ),
                )
            })?;
        let tensor = source.load(&name)?;
        if tensor.shape.len() != 2 {
            return Err(bad(
                &name,
                format!("shape {:?} is not a matrix", tensor.shape),
            ));
        }
        let rank_axis = if half == 0 { 0 } else { 1 };
        if tensor.shape[rank_axis] != rank {
            return Err(bad(
                &name,
                format!(
                    "shape {:?} does not have rank r = {rank} (adapter_config.json) on axis {rank_axis}",
                    tensor.shape
                ),
            ));
        }
        let slot = halves.entry(module.to_string()).or_default();
        if half == 0 {
            slot.0 = Some(tensor);
        } else {
            slot.1 = Some(tensor);
        }
    }
    if halves.is_empty() {
        return Err(bad("(any)", "the file holds no LoRA factors".into()));
    }
    halves
        .into_iter()
        .map(|(module, pair)| match pair {
            (Some(a), Some(b)) => Ok((module, HostFactors { a, b })),
            (None, _) => Err(bad(
                &format!("{PEFT_PREFIX}{module}.lora_A.weight"),
                "missing (lora_B is present)".into(),
            )),
            (_, None) => Err(bad(
                &format!("{PEFT_PREFIX}{module}.lora_B.weight"),
                "missing (lora_A is present)".into(),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, shape: [usize; 2], offset: f32) -> HostTensor {
        HostTensor {
            name: name.into(),
            shape: shape.to_vec(),
            data: (0..shape[0] * shape[1])
                .map(|i| i as f32 * 0.25 + offset)
                .collect(),
        }
    }

    fn adapter() -> PeftAdapter {
        let mut factors = BTreeMap::new();
        factors.insert(
            "model.layers.0.self_attn.q_proj".to_string(),
            HostFactors {
                a: tensor("a", [2, 3], 0.0),
                b: tensor("b", [4, 2], -1.0),
            },
        );
        PeftAdapter {
            config: AdapterConfig::lora(2, 4.0, 0.0, vec!["q_proj".into()], false),
            factors,
        }
    }

    #[test]
    fn an_adapter_round_trips_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let adapter = adapter();
        adapter.write(dir.path()).unwrap();
        let back = PeftAdapter::read(dir.path()).unwrap();
        assert_eq!(back.config, adapter.config);
        let f = &back.factors["model.layers.0.self_attn.q_proj"];
        assert_eq!(
            f.a.data,
            adapter.factors["model.layers.0.self_attn.q_proj"].a.data
        );
        assert_eq!(f.b.shape, vec![4, 2]);
        let first = fs::read(dir.path().join(ADAPTER_WEIGHTS)).unwrap();
        back.write(dir.path()).unwrap();
        assert_eq!(fs::read(dir.path().join(ADAPTER_WEIGHTS)).unwrap(), first);
        assert_eq!(adapter.config.scale(), 2.0);
    }

    #[test]
    fn bad_adapters_name_the_file_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let missing = PeftAdapter::read(&dir.path().join("nowhere")).unwrap_err();
        assert!(missing.to_string().contains("nowhere"), "{missing}");

        let mut wrong_rank = adapter();
        wrong_rank.config.r = 3;
        wrong_rank.write(dir.path()).unwrap();
        let err = PeftAdapter::read(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(ADAPTER_WEIGHTS) && err.contains("r = 3"),
            "{err}"
        );

        let mut dora = adapter();
        dora.config.use_dora = true;
        dora.write(dir.path()).unwrap();
        let err = PeftAdapter::read(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(ADAPTER_CONFIG) && err.contains("use_dora"),
            "{err}"
        );

        fs::write(dir.path().join(ADAPTER_CONFIG), "{\"r\": 2").unwrap();
        let err = PeftAdapter::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains(ADAPTER_CONFIG), "{err}");
    }
}
