//! Test helpers: the shared data root when present, and writers for small HF-schema files.

use std::path::{Path, PathBuf};

use polars::prelude::{
    CsvWriter, DataFrame, JsonFormat, JsonReader, ParquetWriter, SerReader, SerWriter,
};

use crate::data_root::data_root;
use crate::dataset::{DatasetSpec, load};
use crate::example::Example;
use crate::names::{DatasetName, Split};

/// `None` (with a notice) where the shared data is absent, so these tests skip there.
pub(crate) fn shared_root() -> Option<PathBuf> {
    match data_root() {
        Ok(root) => Some(root),
        Err(err) => {
            eprintln!("skipping: shared evaluation data not found ({err})");
            None
        }
    }
}

/// Every example of a shared split, or `None` where the shared data is absent.
pub(crate) fn shared_split(name: DatasetName, split: Split) -> Option<Vec<Example>> {
    let root = shared_root()?;
    Some(load(&DatasetSpec::new(name, split), &root).unwrap())
}

/// Loads a shared split and checks its example and reference counts.
pub(crate) fn check_counts(name: DatasetName, split: Split, examples: usize, references: usize) {
    let Some(loaded) = shared_split(name, split) else {
        return;
    };
    let total: usize = loaded.iter().map(|e| e.references.len()).sum();
    assert_eq!(
        (loaded.len(), total),
        (examples, references),
        "{name} {split}"
    );
    let mut ids: Vec<&str> = loaded.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        loaded.len(),
        "{name} {split}: ids are not unique"
    );
}

pub(crate) fn load_path(name: DatasetName, path: &Path) -> Vec<Example> {
    let mut spec = DatasetSpec::new(name, Split::Test);
    spec.path = Some(path.to_owned());
    load(&spec, Path::new("/unused")).unwrap()
}

pub(crate) fn load_error(name: DatasetName, path: &Path) -> String {
    let mut spec = DatasetSpec::new(name, Split::Test);
    spec.path = Some(path.to_owned());
    load(&spec, Path::new("/unused")).unwrap_err().to_string()
}

pub(crate) fn write_jsonl(path: &Path, rows: &[serde_json::Value]) {
    let text: String = rows.iter().map(|row| format!("{row}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// Rewrites a JSON Lines file as parquet or CSV (by `target`'s extension) with polars, the
/// way an HF export in that format would hold the same rows.
pub(crate) fn convert(jsonl: &Path, target: &Path) {
    let bytes = std::fs::read(jsonl).unwrap();
    let mut frame: DataFrame = JsonReader::new(std::io::Cursor::new(bytes))
        .with_json_format(JsonFormat::JsonLines)
        .finish()
        .unwrap();
    let file = std::fs::File::create(target).unwrap();
    match target.extension().and_then(|e| e.to_str()) {
        Some("parquet") => {
            ParquetWriter::new(file).finish(&mut frame).unwrap();
        }
        Some("csv") => CsvWriter::new(file).finish(&mut frame).unwrap(),
        other => panic!("no writer for {other:?}"),
    }
}

/// Writes `rows` as JSON Lines and as each of `formats`, loads every file, and checks that
/// all of them give the same examples; returns those.
pub(crate) fn round_trip(
    name: DatasetName,
    rows: &[serde_json::Value],
    formats: &[&str],
) -> Vec<Example> {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("hf.jsonl");
    write_jsonl(&jsonl, rows);
    let examples = load_path(name, &jsonl);
    for format in formats {
        let target = dir.path().join(format!("hf.{format}"));
        convert(&jsonl, &target);
        assert_eq!(load_path(name, &target), examples, "{name} via {format}");
    }
    examples
}
