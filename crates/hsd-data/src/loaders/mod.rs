//! One loader per dataset family. Each reads the layout under the shared data root and the
//! same dataset in its Hugging Face schema, choosing by the file's columns (or extension).

mod common_gen;
mod dialogue;
mod document;
mod e2e;
mod triples;

use std::path::Path;

use crate::dataset::DatasetName;
use crate::error::DataError;
use crate::example::Example;
use crate::table::Table;

pub(crate) fn load_file(
    name: DatasetName,
    path: &Path,
    id_prefix: &str,
) -> Result<Vec<Example>, DataError> {
    match name {
        DatasetName::CnnDailymail => document::load_news(path, "article", "highlights"),
        DatasetName::Xsum => document::load_news(path, "document", "summary"),
        DatasetName::Scitldr => document::load_scitldr(path),
        DatasetName::E2e => e2e::load(path, id_prefix),
        DatasetName::CommonGen => common_gen::load(path),
        DatasetName::Samsum => dialogue::load_samsum(path, id_prefix),
        DatasetName::Dialogsum => dialogue::load_dialogsum(path),
        DatasetName::Dart => triples::load_dart(path, id_prefix),
        DatasetName::Webnlg2017 => triples::load_webnlg(path),
    }
}

/// Which of a dataset's known column layouts `table` has, by one telling column of each.
fn layout<L: Copy>(
    table: &Table,
    dataset: DatasetName,
    layouts: &[(&str, L)],
) -> Result<L, DataError> {
    layouts
        .iter()
        .find(|(column, _)| table.has(column))
        .map(|&(_, layout)| layout)
        .ok_or_else(|| DataError::UnknownSchema {
            path: table.path().to_owned(),
            dataset: dataset.to_string(),
            expected: layouts
                .iter()
                .map(|(column, _)| format!("`{column}`"))
                .collect::<Vec<_>>()
                .join(" / "),
            found: table.columns().join(", "),
        })
}

fn fallback_id(id_prefix: &str, index: usize) -> String {
    format!("{id_prefix}/{index}")
}

/// Test helpers: the shared data root when present, and writers for small HF-schema files.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::{Path, PathBuf};

    use polars::prelude::{
        CsvWriter, DataFrame, JsonFormat, JsonReader, ParquetWriter, SerReader, SerWriter,
    };

    use crate::dataset::{DatasetName, DatasetSpec, Split, data_root, load};
    use crate::example::Example;

    /// `None` (with a notice) where the shared data is absent, so these tests skip there.
    pub fn shared_root() -> Option<PathBuf> {
        match data_root() {
            Ok(root) => Some(root),
            Err(err) => {
                eprintln!("skipping: shared evaluation data not found ({err})");
                None
            }
        }
    }

    /// Loads a shared split and checks its example and reference counts.
    pub fn check_counts(name: DatasetName, split: Split, examples: usize, references: usize) {
        let Some(root) = shared_root() else { return };
        let loaded = load(&DatasetSpec::new(name, split), &root).unwrap();
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

    pub fn load_path(name: DatasetName, path: &Path) -> Vec<Example> {
        let mut spec = DatasetSpec::new(name, Split::Test);
        spec.path = Some(path.to_owned());
        load(&spec, Path::new("/unused")).unwrap()
    }

    pub fn load_error(name: DatasetName, path: &Path) -> String {
        let mut spec = DatasetSpec::new(name, Split::Test);
        spec.path = Some(path.to_owned());
        load(&spec, Path::new("/unused")).unwrap_err().to_string()
    }

    pub fn write_jsonl(path: &Path, rows: &[serde_json::Value]) {
        let text: String = rows.iter().map(|row| format!("{row}\n")).collect();
        std::fs::write(path, text).unwrap();
    }

    /// Rewrites a JSON Lines file as parquet or CSV (by `target`'s extension) with polars, the
    /// way an HF export in that format would hold the same rows.
    pub fn convert(jsonl: &Path, target: &Path) {
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
    pub fn round_trip(
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
}
