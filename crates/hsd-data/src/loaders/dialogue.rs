//! Dialogue summarisation. SAMSum: `dialogue` -> `summary`, keyed by `id` in the HF export
//! and by position in the InstructDS copy (which has none). DialogSum: the release keys by
//! `fname` and gives test dialogues three references (`summary1..3`); the HF
//! `knkarthick/dialogsum` export keys by `id` and repeats a test dialogue once per reference
//! (`test_0_1`, `test_0_2`, ...), so rows with the same dialogue are grouped back together.

use std::collections::HashMap;
use std::path::Path;

use super::layout::fallback_id;
use crate::error::DataError;
use crate::example::{Example, Source};
use crate::table::Table;

pub(super) fn load_samsum(path: &Path, id_prefix: &str) -> Result<Vec<Example>, DataError> {
    let table = Table::read(path)?;
    let has_ids = table.has("id");
    (0..table.len())
        .map(|row| {
            let at = table.at(row);
            let text = at.non_empty("dialogue", table.get(row, "dialogue").text()?)?;
            let summary = at.reference("summary", table.get(row, "summary").text()?)?;
            let id = if has_ids {
                table.get(row, "id").id()?
            } else {
                fallback_id(id_prefix, row)
            };
            Ok(Example {
                id,
                source: Source::Dialogue { text },
                references: vec![summary],
            })
        })
        .collect()
}

pub(super) fn load_dialogsum(path: &Path) -> Result<Vec<Example>, DataError> {
    let table = Table::read(path)?;
    let id_field = if table.has("fname") { "fname" } else { "id" };
    let numbered: Vec<String> = (1..)
        .map(|n| format!("summary{n}"))
        .take_while(|field| table.has(field))
        .collect();
    if !numbered.is_empty() {
        return (0..table.len())
            .map(|row| {
                let at = table.at(row);
                let references = numbered
                    .iter()
                    .map(|field| at.reference(field, table.get(row, field).text()?))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Example {
                    id: table.get(row, id_field).id()?,
                    source: Source::Dialogue {
                        text: at.non_empty("dialogue", table.get(row, "dialogue").text()?)?,
                    },
                    references,
                })
            })
            .collect();
    }

    let mut position: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<(Vec<String>, String, Vec<String>)> = Vec::new();
    for row in 0..table.len() {
        let at = table.at(row);
        let id = table.get(row, id_field).id()?;
        let text = at.non_empty("dialogue", table.get(row, "dialogue").text()?)?;
        let summary = at.reference("summary", table.get(row, "summary").text()?)?;
        let index = *position.entry(text.clone()).or_insert_with(|| {
            groups.push((Vec::new(), text, Vec::new()));
            groups.len() - 1
        });
        groups[index].0.push(id);
        groups[index].2.push(summary);
    }
    Ok(groups
        .into_iter()
        .map(|(ids, text, references)| Example {
            id: group_id(&ids),
            source: Source::Dialogue { text },
            references,
        })
        .collect())
}

/// `test_0_1`, `test_0_2`, `test_0_3` -> `test_0`, the release's `fname`; a lone row keeps its id.
fn group_id(ids: &[String]) -> String {
    let stem = |id: &str| {
        id.rsplit_once('_')
            .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .map(|(stem, _)| stem.to_owned())
    };
    if ids.len() > 1
        && let Some(first) = stem(&ids[0])
        && ids.iter().all(|id| stem(id).as_ref() == Some(&first))
    {
        return first;
    }
    ids[0].clone()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::names::{DatasetName, Split};
    use crate::testing::{check_counts, load_error, round_trip, write_jsonl};

    #[test]
    fn shared_samsum_splits_match_provenance() {
        check_counts(DatasetName::Samsum, Split::Test, 819, 819);
        check_counts(DatasetName::Samsum, Split::Dev, 818, 818);
    }

    #[test]
    fn shared_dialogsum_splits_match_provenance() {
        check_counts(DatasetName::Dialogsum, Split::Test, 500, 1500);
        check_counts(DatasetName::Dialogsum, Split::Dev, 500, 500);
    }

    #[test]
    fn hf_samsum_keeps_its_ids() {
        let rows = [
            json!({"id": "13818513", "dialogue": "Amanda: I baked cookies.\nJerry: Sure!", "summary": "Amanda baked cookies."}),
            json!({"id": "13728867", "dialogue": "Olivia: Who are you voting for?", "summary": "Olivia asks."}),
        ];
        let examples = round_trip(DatasetName::Samsum, &rows, &["parquet", "csv"]);
        assert_eq!(examples[0].id, "13818513");
        assert_eq!(
            examples[0].source.render(),
            "Amanda: I baked cookies.\nJerry: Sure!"
        );
    }

    #[test]
    fn hf_dialogsum_test_rows_regroup_into_three_references() {
        let dialogue = "#Person1#: Hi.\n#Person2#: Hello.";
        let rows = [
            json!({"id": "test_0_1", "dialogue": dialogue, "summary": "A", "topic": "greeting"}),
            json!({"id": "test_0_2", "dialogue": dialogue, "summary": "B", "topic": "greeting"}),
            json!({"id": "test_0_3", "dialogue": dialogue, "summary": "C", "topic": "hello"}),
            json!({"id": "test_1_1", "dialogue": "#Person1#: Bye.", "summary": "D", "topic": "bye"}),
        ];
        let examples = round_trip(DatasetName::Dialogsum, &rows, &["parquet", "csv"]);
        assert_eq!(examples.len(), 2);
        assert_eq!(examples[0].id, "test_0");
        assert_eq!(examples[0].references, vec!["A", "B", "C"]);
        assert_eq!(examples[1].id, "test_1_1");
    }

    #[test]
    fn a_missing_third_summary_names_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dialogsum.test.jsonl");
        write_jsonl(
            &path,
            &[
                json!({"fname": "test_0", "dialogue": "a", "summary1": "x", "summary2": "y", "summary3": "z"}),
                json!({"fname": "test_1", "dialogue": "b", "summary1": "x", "summary2": "y"}),
            ],
        );
        let err = load_error(DatasetName::Dialogsum, &path);
        assert!(
            err.contains("dialogsum.test.jsonl: line 2: field `summary3` is missing"),
            "{err}"
        );
    }

    #[test]
    fn a_samsum_array_record_is_named_by_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.json");
        std::fs::write(
            &path,
            r#"[{"dialogue": "a: b", "summary": "s"}, {"dialogue": "a: c", "summary": ""}]"#,
        )
        .unwrap();
        let err = load_error(DatasetName::Samsum, &path);
        assert!(
            err.contains("test.json: record 2: field `summary` is an empty reference"),
            "{err}"
        );
    }
}
