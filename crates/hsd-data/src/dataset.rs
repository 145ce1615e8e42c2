//! What to load (a dataset's split, or a file in its schema) and `load`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::example::Example;
use crate::loaders;
use crate::names::{DatasetName, Split};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
