//! Which datasets and splits exist, where their files are, and `load`.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::example::Example;
use crate::loaders;

/// The datasets this crate reads, by the names manifests and `--dataset` use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetName {
    CnnDailymail,
    Xsum,
    E2e,
    CommonGen,
    Samsum,
    Dialogsum,
    Dart,
    Webnlg2017,
    Scitldr,
}

impl DatasetName {
    pub const ALL: [DatasetName; 9] = [
        DatasetName::CnnDailymail,
        DatasetName::Xsum,
        DatasetName::E2e,
        DatasetName::CommonGen,
        DatasetName::Samsum,
        DatasetName::Dialogsum,
        DatasetName::Dart,
        DatasetName::Webnlg2017,
        DatasetName::Scitldr,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::CnnDailymail => "cnn_dailymail",
            DatasetName::Xsum => "xsum",
            DatasetName::E2e => "e2e",
            DatasetName::CommonGen => "common_gen",
            DatasetName::Samsum => "samsum",
            DatasetName::Dialogsum => "dialogsum",
            DatasetName::Dart => "dart",
            DatasetName::Webnlg2017 => "webnlg2017",
            DatasetName::Scitldr => "scitldr",
        }
    }

    /// The file of `split` under the data root, as PROVENANCE.md lays it out.
    pub fn split_file(self, split: Split) -> Option<&'static str> {
        use DatasetName::*;
        use Split::*;
        Some(match (self, split) {
            (CnnDailymail, Test) => "cnn_dailymail/cnndm-test-frank250.jsonl",
            (Xsum, Test) => "xsum/xsum-test-1000.jsonl",
            (E2e, Test) => "e2e/testset_w_refs.csv",
            (E2e, Dev) => "e2e/devset.csv",
            (CommonGen, Test) => "commongen/commongen.test.jsonl",
            (CommonGen, Dev) => "commongen/commongen.dev.jsonl",
            (Samsum, Test) => "samsum/test.json",
            (Samsum, Dev) => "samsum/validation.json",
            (Dialogsum, Test) => "dialogsum/dialogsum.test.jsonl",
            (Dialogsum, Dev) => "dialogsum/dialogsum.dev.jsonl",
            (Dart, Test) => "dart/dart-v1.1.1-full-test.xml",
            (Dart, Dev) => "dart/dart-v1.1.1-full-dev.json",
            (Webnlg2017, Test) => "webnlg2017/testdata_with_lex.xml",
            (Scitldr, Test) => "scitldr/test.jsonl",
            (Scitldr, Dev) => "scitldr/dev.jsonl",
            (CnnDailymail | Xsum | Webnlg2017, Dev) => return None,
        })
    }

    pub fn splits(self) -> Vec<Split> {
        [Split::Test, Split::Dev]
            .into_iter()
            .filter(|&split| self.split_file(split).is_some())
            .collect()
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetName {
    type Err = DataError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        DatasetName::ALL
            .into_iter()
            .find(|d| d.as_str() == name)
            .ok_or_else(|| DataError::UnknownDataset {
                name: name.to_owned(),
                known: DatasetName::ALL.map(DatasetName::as_str).join(", "),
            })
    }
}

/// The evaluated split, or the development split that k-shot prompts draw from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    #[default]
    Test,
    #[serde(alias = "validation")]
    Dev,
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Test => "test",
            Split::Dev => "dev",
        })
    }
}

impl FromStr for Split {
    type Err = DataError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "test" => Ok(Split::Test),
            "dev" | "validation" => Ok(Split::Dev),
            _ => Err(DataError::UnknownSplit {
                name: name.to_owned(),
            }),
        }
    }
}

/// What to load: a dataset's split from the data root, or any file in its native or Hugging
/// Face schema (`path`), cut to its first `limit` examples in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    pub name: DatasetName,
    #[serde(default)]
    pub split: Split,
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub limit: Option<usize>,
}

impl DatasetSpec {
    pub fn new(name: DatasetName, split: Split) -> DatasetSpec {
        DatasetSpec {
            name,
            split,
            path: None,
            limit: None,
        }
    }

    /// The file this spec reads: `path` when given, else the split's file under `data_root`.
    pub fn file(&self, data_root: &Path) -> Result<PathBuf, DataError> {
        if let Some(path) = &self.path {
            return Ok(path.clone());
        }
        self.name
            .split_file(self.split)
            .map(|relative| data_root.join(relative))
            .ok_or_else(|| DataError::SplitUnavailable {
                dataset: self.name.to_string(),
                split: self.split.to_string(),
                available: self
                    .name
                    .splits()
                    .iter()
                    .map(Split::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// Loads every example of `spec` in file order (then keeps the first `limit`). Every record
/// is checked: a missing field, malformed row or empty reference is an error, never a skip.
pub fn load(spec: &DatasetSpec, data_root: &Path) -> Result<Vec<Example>, DataError> {
    let path = spec.file(data_root)?;
    let id_prefix = format!("{}/{}", spec.name, spec.split);
    let mut examples = loaders::load_file(spec.name, &path, &id_prefix)?;
    if examples.is_empty() {
        return Err(DataError::NoExamples { path });
    }
    if let Some(limit) = spec.limit {
        examples.truncate(limit);
    }
    Ok(examples)
}

/// `HSD_DATA` when set, else `../shared/data` beside this workspace when that exists.
pub fn data_root() -> Result<PathBuf, DataError> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    resolve_data_root(
        std::env::var_os("HSD_DATA").as_deref(),
        &workspace.join("../shared/data"),
    )
}

fn resolve_data_root(hsd_data: Option<&OsStr>, default: &Path) -> Result<PathBuf, DataError> {
    match hsd_data {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            if path.is_dir() {
                Ok(path)
            } else {
                Err(DataError::DataRootNotADirectory { path })
            }
        }
        _ if default.is_dir() => Ok(normalize(default)),
        _ => Err(DataError::NoDataRoot {
            default: normalize(default),
        }),
    }
}

fn normalize(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str_and_serde() {
        for name in DatasetName::ALL {
            assert_eq!(name.as_str().parse::<DatasetName>().unwrap(), name);
            let json = serde_json::to_string(&name).unwrap();
            assert_eq!(json, format!("\"{name}\""));
        }
        let err = "cnn".parse::<DatasetName>().unwrap_err().to_string();
        assert!(err.contains("cnn_dailymail"), "{err}");
        assert_eq!("validation".parse::<Split>().unwrap(), Split::Dev);
    }

    #[test]
    fn spec_deserializes_with_defaults_and_rejects_unknown_keys() {
        let spec: DatasetSpec = toml::from_str("name = \"e2e\"\nlimit = 5").unwrap();
        assert_eq!(spec.split, Split::Test);
        assert_eq!(spec.limit, Some(5));
        let spec: DatasetSpec =
            toml::from_str("name = \"samsum\"\nsplit = \"validation\"").unwrap();
        assert_eq!(spec.split, Split::Dev);
        assert!(toml::from_str::<DatasetSpec>("name = \"e2e\"\nlimt = 5").is_err());
    }

    #[test]
    fn a_test_only_dataset_has_no_dev_file() {
        let spec = DatasetSpec::new(DatasetName::Xsum, Split::Dev);
        let err = spec.file(Path::new("/data")).unwrap_err().to_string();
        assert!(err.contains("xsum has no dev split"), "{err}");
    }

    #[test]
    fn data_root_error_names_both_places() {
        let missing = Path::new("/nonexistent/shared/data");
        let err = resolve_data_root(None, missing).unwrap_err().to_string();
        assert!(
            err.contains("HSD_DATA") && err.contains("/nonexistent/shared/data"),
            "{err}"
        );
        let err = resolve_data_root(Some(OsStr::new("/nonexistent/x")), missing)
            .unwrap_err()
            .to_string();
        assert!(err.contains("HSD_DATA points to /nonexistent/x"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let found = resolve_data_root(Some(dir.path().as_os_str()), missing).unwrap();
        assert_eq!(found, dir.path());
    }
}
