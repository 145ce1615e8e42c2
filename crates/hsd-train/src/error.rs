use std::path::PathBuf;

use hsd_model::ModelError;
use hsd_model::weights::WeightError;

/// Everything that can stop a fine-tuning run; each names the file, field or example at fault.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Weight(#[from] WeightError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{field}: {reason}")]
    Config { field: String, reason: String },
    #[error("training example `{id}`: {reason}")]
    Example { id: String, reason: String },
    #[error("{path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    #[error("skip-aware training: {0}")]
    Skip(#[from] hsd_skip::SkipError),
}

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_owned(),
        source,
    }
}
