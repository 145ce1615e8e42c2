//! Arbitrary bytes as a dataset file: the first byte picks the dataset (its loader and schema),
//! the second the file's extension (JSON Lines, JSON, CSV, XML, parquet), the rest is the file.
//! Loading must return examples or an error, never panic.
#![no_main]

mod scratch;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hsd_data::{DatasetName, DatasetSpec, Split};
use libfuzzer_sys::fuzz_target;

const EXTENSIONS: [&str; 5] = ["jsonl", "json", "csv", "xml", "parquet"];

fn fuzz_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| scratch::scratch_dir("dataset"))
}

fuzz_target!(|data: &[u8]| {
    let [dataset, extension, file @ ..] = data else {
        return;
    };
    let name = DatasetName::ALL[usize::from(*dataset) % DatasetName::ALL.len()];
    let extension = EXTENSIONS[usize::from(*extension) % EXTENSIONS.len()];
    let path = fuzz_dir().join(format!("fuzz.{extension}"));
    std::fs::write(&path, file).expect("writing the fuzz dataset");
    let spec = DatasetSpec {
        name,
        split: Split::Test,
        path: Some(path),
        limit: None,
    };
    let _ = hsd_data::load(&spec, Path::new("/nonexistent-data-root"));
});
