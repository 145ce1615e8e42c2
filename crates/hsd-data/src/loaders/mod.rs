//! One loader per dataset family. Each reads the layout under the shared data root and the
//! same dataset in its Hugging Face schema, choosing by the file's columns (or extension).

mod common_gen;
mod dialogue;
mod document;
mod e2e;
mod triples;

use std::path::Path;

use crate::error::DataError;
use crate::example::Example;
use crate::names::DatasetName;
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
