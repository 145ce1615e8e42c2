//! The names of the datasets and splits this crate reads, and where each split's file sits
//! under the data root. A leaf: every other module may name these, and they name nothing but
//! the error for an unknown name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::DataError;

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
}
