//! What the loaders share: recognising a file's column layout, and ids for examples without
//! one.

use crate::error::DataError;
use crate::names::DatasetName;
use crate::table::Table;

/// Which of a dataset's known column layouts `table` has, by one telling column of each.
pub(super) fn layout<L: Copy>(
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

/// The id of an example whose file gives none: its position under the split's prefix.
pub(super) fn fallback_id(id_prefix: &str, index: usize) -> String {
    format!("{id_prefix}/{index}")
}
