use std::path::PathBuf;

/// Why a manifest could not be read, checked or expanded. Every variant names the file, and
/// a syntax error its line and column, so the message alone says what to edit.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: include cycle through {}", path.display(), again.display())]
    IncludeCycle { path: PathBuf, again: PathBuf },
    #[error("{}: {what}", path.display())]
    Invalid { path: PathBuf, what: String },
    #[error("model '{model}' needs a spec: set {variable} or pass --model {model}=SPEC")]
    NoModelSpec { model: String, variable: String },
    #[error("--model {given:?}: expected NAME=SPEC")]
    ModelFlag { given: String },
}
