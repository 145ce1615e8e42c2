//! `meta.json`: what a results folder was made from. Written by `hsd run` and `hsd merge`,
//! read back by `hsd merge` (from each shard) and by anyone tracing a number to its inputs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;
use hsd_model::ModelSource;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::records::write_atomic;

/// Everything needed to say how a folder's records and summary came to be.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// The manifest's path as given on the command line.
    pub manifest: String,
    /// SHA-256 of `manifest_text`.
    pub manifest_sha256: String,
    pub profile: String,
    /// Examples per dataset; `None` for whole splits.
    pub limit: Option<usize>,
    /// `i/n` for one shard of a sharded run.
    pub shard: Option<String>,
    pub seed: u64,
    pub backend: String,
    /// `native` when decode passes read the models' quantized blocks; absent for `f32`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
    /// Every run's knobs as solved (targets turned into settings, CALM thresholds calibrated),
    /// from `solved.jsonl`: a cell reruns from these without the solver.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub solved_knobs: BTreeMap<String, serde_json::Value>,
    pub models: Vec<ModelFiles>,
    /// Per metric, its reference implementation's signature where it has one.
    pub metric_signatures: BTreeMap<String, Option<String>>,
    /// Runs left out because their target was out of reach (`unreachable_targets = "skip"`).
    pub skipped_runs: BTreeSet<String>,
    /// The shard folders a merged folder was joined from; empty for a direct run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    pub git_commit: Option<String>,
    pub machine: Machine,
    pub hsd_version: String,
    /// The manifest and every file it includes, in reading order.
    pub manifest_text: String,
}

/// One model of the sweep: the spec it was given and the files (with digests) behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFiles {
    pub name: String,
    pub spec: String,
    pub architecture: String,
    pub files: Vec<FileDigest>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDigest {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

impl ModelFiles {
    pub fn new(name: &str, source: &ModelSource) -> Self {
        Self {
            name: name.to_owned(),
            spec: source.spec.clone(),
            architecture: source.architecture.clone(),
            files: source
                .files
                .iter()
                .map(|f| FileDigest {
                    path: portable_path(&f.path),
                    bytes: f.bytes,
                    sha256: f.sha256.clone(),
                })
                .collect(),
        }
    }
}

/// `path` as a record names it: under the models folder as `$HSD_MODELS/<file>`, so that a
/// run's `meta.json` does not depend on where a machine keeps its models (the sha256 says which
/// file it was); any other path as given.
fn portable_path(path: &Path) -> String {
    match path.strip_prefix(hsd_model::models_dir()) {
        Ok(inside) => format!("$HSD_MODELS/{}", inside.display()),
        Err(_) => path.display().to_string(),
    }
}

impl ModelFiles {
    /// The base model's files followed by the adapter's (`adapter_config.json`,
    /// `adapter_model.safetensors`): one entry per dataset when each has its adapter.
    pub fn with_adapter(name: &str, source: &ModelSource, adapter: &Path) -> anyhow::Result<Self> {
        let mut files = Self::new(name, source);
        for file in [
            hsd_model::weights::ADAPTER_CONFIG,
            hsd_model::weights::ADAPTER_WEIGHTS,
        ] {
            let path = adapter.join(file);
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            files.files.push(FileDigest {
                path: path.display().to_string(),
                bytes: bytes.len() as u64,
                sha256: hex_sha256(&bytes),
            });
        }
        Ok(files)
    }
}

/// The host a folder was made on: enough to tell two machines apart in a comparison.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    pub os: String,
    pub arch: String,
    pub cpus: usize,
    pub hostname: String,
}

impl Machine {
    pub fn this() -> Self {
        Self {
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            hostname: std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default(),
        }
    }
}

impl Meta {
    pub fn write(&self, folder: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        write_atomic(&folder.join("meta.json"), text.as_bytes())
    }

    pub fn read(folder: &Path) -> anyhow::Result<Self> {
        let path = folder.join("meta.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a meta.json", path.display()))
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn hex_sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The commit this binary was built from (`-dirty` when the tree had uncommitted changes to
/// tracked files), embedded by `build.rs`; `None` for a build outside a git checkout.
pub fn git_commit() -> Option<String> {
    option_env!("HSD_BUILD_COMMIT").map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_files_under_the_models_folder_are_named_portably() {
        let inside = hsd_model::models_dir().join("m.gguf");
        assert_eq!(portable_path(&inside), "$HSD_MODELS/m.gguf");
        assert_eq!(
            portable_path(Path::new("/elsewhere/m.gguf")),
            "/elsewhere/m.gguf"
        );
    }

    #[test]
    fn sha256_is_lower_case_hex() {
        assert_eq!(
            hex_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn meta_round_trips_through_its_file() {
        let meta = Meta {
            manifest: "experiments/main.toml".into(),
            manifest_sha256: hex_sha256(b"x"),
            profile: "quick".into(),
            limit: Some(50),
            shard: None,
            seed: 7,
            backend: "flex".into(),
            weights: None,
            solved_knobs: BTreeMap::from([(
                "m/e2e/hsd@0.25".to_owned(),
                serde_json::json!({"levels": 4, "max_skip": 2}),
            )]),
            models: vec![ModelFiles {
                name: "m".into(),
                spec: "m".into(),
                architecture: "llama".into(),
                files: vec![FileDigest {
                    path: "m.gguf".into(),
                    bytes: 3,
                    sha256: hex_sha256(b"abc"),
                }],
            }],
            metric_signatures: BTreeMap::from([("rouge".to_owned(), None)]),
            skipped_runs: BTreeSet::new(),
            merged_from: Vec::new(),
            git_commit: None,
            machine: Machine::this(),
            hsd_version: "0.1.0".into(),
            manifest_text: "name = \"x\"\n".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        meta.write(dir.path()).unwrap();
        assert_eq!(Meta::read(dir.path()).unwrap(), meta);
        std::fs::write(dir.path().join("meta.json"), "{}").unwrap();
        let err = format!("{:#}", Meta::read(dir.path()).unwrap_err());
        assert!(err.contains("meta.json: not a meta.json"), "{err}");
    }
}
