//! Hugging Face safetensors checkpoints: `model.safetensors`, or shards listed by
//! `model.safetensors.index.json`. Headers are validated by the `safetensors` crate; tensor
//! data is read from memory maps and widened to `f32`.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, Metadata};
use serde::Deserialize;

use super::{Bytes, HostTensor, TensorSource, WeightError};

const SINGLE_FILE: &str = "model.safetensors";
const INDEX_FILE: &str = "model.safetensors.index.json";

struct Shard {
    path: PathBuf,
    bytes: Bytes,
    /// Where the data section starts: after the `u64` header length and the header.
    data_start: usize,
    metadata: Metadata,
}

impl Shard {
    fn parse(path: PathBuf, bytes: Bytes) -> Result<Self, WeightError> {
        let (header_len, metadata) =
            SafeTensors::read_metadata(&bytes).map_err(|e| WeightError::Malformed {
                path: path.clone(),
                field: "header".into(),
                offset: 0,
                reason: e.to_string(),
            })?;
        Ok(Self {
            path,
            bytes,
            data_start: 8 + header_len,
            metadata,
        })
    }
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

/// A safetensors checkpoint: one file or a sharded set.
pub struct SafetensorsDir {
    shards: Vec<Shard>,
    /// Tensor name -> shard index, in name order.
    by_name: BTreeMap<String, usize>,
}

impl std::fmt::Debug for SafetensorsDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetensorsDir")
            .field(
                "shards",
                &self.shards.iter().map(|s| &s.path).collect::<Vec<_>>(),
            )
            .field("tensors", &self.by_name.len())
            .finish()
    }
}

impl SafetensorsDir {
    /// Opens `dir/model.safetensors.index.json` and its shards if the index exists, else
    /// `dir/model.safetensors`; `dir` may also name a `.safetensors` file itself.
    pub fn open(dir: &Path) -> Result<Self, WeightError> {
        if dir.is_file() {
            return Self::from_shards(vec![Shard::parse(dir.to_owned(), Bytes::map(dir)?)?]);
        }
        let index_path = dir.join(INDEX_FILE);
        if !index_path.exists() {
            let path = dir.join(SINGLE_FILE);
            return Self::from_shards(vec![Shard::parse(path.clone(), Bytes::map(&path)?)?]);
        }
        let text = fs::read_to_string(&index_path).map_err(|source| WeightError::Io {
            path: index_path.clone(),
            source,
        })?;
        let index: ShardIndex =
            serde_json::from_str(&text).map_err(|e| WeightError::Malformed {
                path: index_path.clone(),
                field: "weight_map".into(),
                offset: 0,
                reason: e.to_string(),
            })?;
        let mut shard_of_file: HashMap<&str, usize> = HashMap::new();
        let mut shards = Vec::new();
        for (tensor, file) in &index.weight_map {
            if shard_of_file.contains_key(file.as_str()) {
                continue;
            }
            // The index names files beside it; anything else could reach outside the model.
            if Path::new(file).file_name().and_then(|f| f.to_str()) != Some(file.as_str()) {
                return Err(WeightError::Tensor {
                    path: index_path.clone(),
                    tensor: tensor.clone(),
                    reason: format!("shard {file:?} is not a plain file name"),
                });
            }
            let path = dir.join(file);
            shards.push(Shard::parse(path.clone(), Bytes::map(&path)?)?);
            shard_of_file.insert(file, shards.len() - 1);
        }
        let dir = Self::from_shards(shards)?;
        for (tensor, file) in &index.weight_map {
            let shard = &dir.shards[shard_of_file[file.as_str()]];
            if shard.metadata.info(tensor).is_none() {
                return Err(WeightError::MissingTensor {
                    path: shard.path.clone(),
                    tensor: tensor.clone(),
                });
            }
        }
        Ok(dir)
    }

    /// Parses one safetensors image held in memory; `label` stands for the path in errors.
    pub fn from_bytes(bytes: Vec<u8>, label: &str) -> Result<Self, WeightError> {
        Self::from_shards(vec![Shard::parse(
            PathBuf::from(label),
            Bytes::Owned(bytes),
        )?])
    }

    fn from_shards(shards: Vec<Shard>) -> Result<Self, WeightError> {
        let mut by_name = BTreeMap::new();
        for (index, shard) in shards.iter().enumerate() {
            for name in shard.metadata.tensors().into_keys() {
                if let Some(first) = by_name.insert(name.clone(), index) {
                    return Err(WeightError::Tensor {
                        path: shard.path.clone(),
                        tensor: name,
                        reason: format!("also stored in {}", shards[first].path.display()),
                    });
                }
            }
        }
        Ok(Self { shards, by_name })
    }
}

impl TensorSource for SafetensorsDir {
    fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }

    fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    fn load(&self, name: &str) -> Result<HostTensor, WeightError> {
        let Some(&index) = self.by_name.get(name) else {
            let path = self
                .shards
                .first()
                .map(|s| s.path.clone())
                .unwrap_or_default();
            return Err(WeightError::MissingTensor {
                path,
                tensor: name.into(),
            });
        };
        let shard = &self.shards[index];
        let fail = |reason: String| WeightError::Tensor {
            path: shard.path.clone(),
            tensor: name.into(),
            reason,
        };
        let info = shard
            .metadata
            .info(name)
            .ok_or_else(|| fail("listed but absent from the header".into()))?;
        // `read_metadata` checked that the offsets lie inside the file and match the shape.
        let (begin, end) = info.data_offsets;
        let bytes = &shard.bytes[shard.data_start + begin..shard.data_start + end];
        let data: Vec<f32> = match info.dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(fail(format!(
                    "dtype {other} is not read (F32, F16 and BF16 are)"
                )));
            }
        };
        Ok(HostTensor {
            name: name.into(),
            shape: info.shape.clone(),
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    fn image(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
        let views: Vec<(String, TensorView<'_>)> = tensors
            .iter()
            .map(|(name, dtype, shape, data)| {
                (
                    name.to_string(),
                    TensorView::new(*dtype, shape.clone(), data).unwrap(),
                )
            })
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    #[test]
    fn reads_f32_f16_bf16() {
        let f32s: Vec<u8> = [1.0f32, -2.5, 3.25, 0.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let f16s: Vec<u8> = [0.5f32, -1.0]
            .iter()
            .flat_map(|&x| f16::from_f32(x).to_le_bytes())
            .collect();
        let bf16s: Vec<u8> = [2.0f32, -0.125]
            .iter()
            .flat_map(|&x| bf16::from_f32(x).to_le_bytes())
            .collect();
        let bytes = image(&[
            ("a.weight", Dtype::F32, vec![2, 2], f32s),
            ("b", Dtype::F16, vec![2], f16s),
            ("c", Dtype::BF16, vec![1, 2], bf16s),
            ("ids", Dtype::I64, vec![1], 7i64.to_le_bytes().to_vec()),
        ]);
        let dir = SafetensorsDir::from_bytes(bytes, "mem.safetensors").unwrap();
        assert_eq!(dir.names(), ["a.weight", "b", "c", "ids"]);
        let a = dir.load("a.weight").unwrap();
        assert_eq!((a.shape, a.data), (vec![2, 2], vec![1.0, -2.5, 3.25, 0.0]));
        assert_eq!(dir.load("b").unwrap().data, vec![0.5, -1.0]);
        assert_eq!(dir.load("c").unwrap().data, vec![2.0, -0.125]);
        let err = dir.load("ids").unwrap_err().to_string();
        assert!(
            err.contains("mem.safetensors") && err.contains("ids") && err.contains("I64"),
            "{err}"
        );
        assert!(matches!(
            dir.load("nope"),
            Err(WeightError::MissingTensor { .. })
        ));
    }

    #[test]
    fn sharded_directory_via_index() {
        let dir = tempfile::tempdir().unwrap();
        let one = |x: f32| x.to_le_bytes().to_vec();
        fs::write(
            dir.path().join("s1.safetensors"),
            image(&[("x", Dtype::F32, vec![1], one(1.0))]),
        )
        .unwrap();
        fs::write(
            dir.path().join("s2.safetensors"),
            image(&[("y", Dtype::F32, vec![1], one(2.0))]),
        )
        .unwrap();
        let index =
            r#"{"metadata": {}, "weight_map": {"x": "s1.safetensors", "y": "s2.safetensors"}}"#;
        fs::write(dir.path().join(INDEX_FILE), index).unwrap();
        let weights = SafetensorsDir::open(dir.path()).unwrap();
        assert_eq!(weights.names(), ["x", "y"]);
        assert_eq!(weights.load("y").unwrap().data, vec![2.0]);

        let escaping = r#"{"weight_map": {"x": "../s1.safetensors"}}"#;
        fs::write(dir.path().join(INDEX_FILE), escaping).unwrap();
        let err = SafetensorsDir::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("plain file name"), "{err}");

        let missing = r#"{"weight_map": {"z": "s1.safetensors"}}"#;
        fs::write(dir.path().join(INDEX_FILE), missing).unwrap();
        let err = SafetensorsDir::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, WeightError::MissingTensor { ref tensor, .. } if tensor == "z"),
            "{err}"
        );
    }

    #[test]
    fn corrupt_headers_are_errors() {
        let good = image(&[("x", Dtype::F32, vec![2], vec![0; 8])]);
        for cut in [0, 7, 8, 20, good.len() - 1] {
            let err = SafetensorsDir::from_bytes(good[..cut].to_vec(), "cut").unwrap_err();
            assert!(err.to_string().starts_with("cut: header"), "{err}");
        }
        let mut huge_header = good.clone();
        huge_header[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(SafetensorsDir::from_bytes(huge_header, "huge").is_err());
    }
}
