//! The one error type of this crate. Every variant names the file it is about and, where the
//! fault is in one record, where that record is and which field is wrong.

use std::fmt;
use std::path::PathBuf;

/// Where a record sits in its file, in the terms that file format has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// A 1-based line number (JSON Lines, XML, and CSV when its records map onto lines).
    Line(usize),
    /// A 1-based data row, header excluded (parquet, CSV).
    Row(usize),
    /// A 1-based element of a top-level JSON array.
    Record(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Row(n) => write!(f, "row {n}"),
            Location::Record(n) => write!(f, "record {n}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(
        "no data root: the HSD_DATA environment variable is not set and no shared/data folder \
         exists in {} or any folder above it; set HSD_DATA to the folder that holds the \
         evaluation splits",
        .searched_from.display()
    )]
    NoDataRoot { searched_from: PathBuf },
    #[error("HSD_DATA points to {}, which is not a directory", .path.display())]
    DataRootNotADirectory { path: PathBuf },
    #[error("unknown dataset `{name}`; known: {known}")]
    UnknownDataset { name: String, known: String },
    #[error("unknown split `{name}`; known: test, dev (alias validation)")]
    UnknownSplit { name: String },
    #[error("{dataset} has no {split} split in the data root; it has: {available}")]
    SplitUnavailable {
        dataset: String,
        split: String,
        available: String,
    },
    #[error("{}: cannot read: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: unsupported file type; expected .jsonl, .json, .csv, .parquet or .xml", .path.display())]
    UnsupportedFormat { path: PathBuf },
    #[error("{}: cannot parse as a table: {source}", .path.display())]
    Table {
        path: PathBuf,
        #[source]
        source: polars::error::PolarsError,
    },
    #[error("{}: {location}: malformed JSON: {source}", .path.display())]
    Json {
        path: PathBuf,
        location: Location,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: {location}: malformed XML: {message}", .path.display())]
    Xml {
        path: PathBuf,
        location: Location,
        message: String,
    },
    #[error(
        "{}: does not look like {dataset} data: it has none of the column sets {expected}; \
         its columns are [{found}]",
        .path.display()
    )]
    UnknownSchema {
        path: PathBuf,
        dataset: String,
        expected: String,
        found: String,
    },
    #[error("{}: {location}: field `{field}` is missing or null", .path.display())]
    MissingField {
        path: PathBuf,
        location: Location,
        field: String,
    },
    #[error("{}: {location}: field `{field}` should be {expected}, found {found}", .path.display())]
    WrongType {
        path: PathBuf,
        location: Location,
        field: String,
        expected: &'static str,
        found: String,
    },
    #[error("{}: {location}: field `{field}` is an empty reference", .path.display())]
    EmptyReference {
        path: PathBuf,
        location: Location,
        field: String,
    },
    #[error("{}: {location}: field `{field}` is empty", .path.display())]
    EmptyField {
        path: PathBuf,
        location: Location,
        field: String,
    },
    #[error("{}: {location}: field `{field}`: {reason}", .path.display())]
    Malformed {
        path: PathBuf,
        location: Location,
        field: String,
        reason: String,
    },
    #[error("{}: holds no examples", .path.display())]
    NoExamples { path: PathBuf },
    #[error("template {origin}: {source}")]
    TemplateToml {
        origin: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("template {origin}: field `{field}`: {reason}")]
    Template {
        origin: String,
        field: String,
        reason: String,
    },
    #[error(
        "{dataset}: no pool to draw {shots}-shot examples from: {why}; name a shots file (any \
         file this crate loads for {dataset}) to use k-shot prompts"
    )]
    NoShotPool {
        dataset: String,
        shots: usize,
        why: String,
    },
    #[error("asked for {wanted} shots but the shot pool {origin} holds only {available} examples")]
    TooFewShots {
        origin: String,
        wanted: usize,
        available: usize,
    },
    #[error(
        "example {id}: the token budget of {budget} is smaller than the first word of its source \
         ({first_word_tokens} tokens)"
    )]
    BudgetTooSmall {
        id: String,
        budget: usize,
        first_word_tokens: usize,
    },
}
