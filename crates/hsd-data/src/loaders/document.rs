//! Single-document summarisation: CNN/DailyMail (`article` -> `highlights`), XSum
//! (`document` -> `summary`), both keyed by `id`, and SciTLDR-A (abstract sentences `source`
//! -> TLDRs `target`, keyed by `paper_id`). The shared files already use the HF field names.

use std::path::Path;

use crate::error::DataError;
use crate::example::{Example, Source};
use crate::table::Table;

pub(super) fn load_news(
    path: &Path,
    document_field: &str,
    summary_field: &str,
) -> Result<Vec<Example>, DataError> {
    let table = Table::read(path)?;
    (0..table.len())
        .map(|row| {
            let at = table.at(row);
            let text = at.non_empty(document_field, table.get(row, document_field).text()?)?;
            let summary = at.reference(summary_field, table.get(row, summary_field).text()?)?;
            Ok(Example {
                id: table.get(row, "id").id()?,
                source: Source::Document { text },
                references: vec![summary],
            })
        })
        .collect()
}

pub(super) fn load_scitldr(path: &Path) -> Result<Vec<Example>, DataError> {
    let table = Table::read(path)?;
    (0..table.len())
        .map(|row| {
            let at = table.at(row);
            let sentences = table.get(row, "source").texts()?;
            if sentences.iter().all(|s| s.trim().is_empty()) {
                return Err(at.empty("source"));
            }
            let references = table
                .get(row, "target")
                .items()?
                .into_iter()
                .map(|target| {
                    let field = target.field().to_owned();
                    at.reference(&field, target.text()?)
                })
                .collect::<Result<Vec<_>, _>>()?;
            if references.is_empty() {
                return Err(at.empty_reference("target"));
            }
            Ok(Example {
                id: table.get(row, "paper_id").id()?,
                source: Source::Abstract { sentences },
                references,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::example::Source;
    use crate::names::{DatasetName, Split};
    use crate::testing::{check_counts, convert, load_error, round_trip, write_jsonl};

    #[test]
    fn shared_cnn_dailymail_test_has_250_documents() {
        check_counts(DatasetName::CnnDailymail, Split::Test, 250, 250);
    }

    #[test]
    fn shared_xsum_test_has_1000_documents() {
        check_counts(DatasetName::Xsum, Split::Test, 1000, 1000);
    }

    #[test]
    fn shared_scitldr_splits_match_provenance() {
        check_counts(DatasetName::Scitldr, Split::Test, 618, 1967);
        check_counts(DatasetName::Scitldr, Split::Dev, 619, 1453);
    }

    #[test]
    fn hf_cnn_dailymail_reads_from_jsonl_parquet_and_csv() {
        let rows = [
            json!({"article": "First article.\nSecond line.", "highlights": "One.", "id": "a1"}),
            json!({"article": "Another, \"quoted\" one.", "highlights": "Two.", "id": "a2"}),
        ];
        let examples = round_trip(DatasetName::CnnDailymail, &rows, &["parquet", "csv"]);
        assert_eq!(examples[0].id, "a1");
        assert_eq!(
            examples[0].source,
            Source::Document {
                text: "First article.\nSecond line.".into()
            }
        );
        assert_eq!(examples[1].references, vec!["Two."]);
    }

    #[test]
    fn hf_xsum_reads_from_jsonl_parquet_and_csv() {
        let rows = [
            json!({"document": "Doc one.", "summary": "S1", "id": "38264402"}),
            json!({"document": "Doc two.", "summary": "S2", "id": "34227252"}),
        ];
        let examples = round_trip(DatasetName::Xsum, &rows, &["parquet", "csv"]);
        assert_eq!(examples.len(), 2);
        assert_eq!(examples[1].id, "34227252");
    }

    #[test]
    fn hf_scitldr_reads_from_jsonl_and_parquet() {
        let rows = [json!({
            "source": ["We study X.", "We find Y."],
            "source_labels": [0, 1],
            "rouge_scores": [0.1, 0.5],
            "paper_id": "p1",
            "target": ["X gives Y.", "Y from X."]
        })];
        let examples = round_trip(DatasetName::Scitldr, &rows, &["parquet"]);
        assert_eq!(examples[0].references.len(), 2);
        assert_eq!(examples[0].source.render(), "We study X. We find Y.");
    }

    #[test]
    fn a_missing_summary_names_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xsum.jsonl");
        write_jsonl(
            &path,
            &[
                json!({"document": "d", "summary": "s", "id": "1"}),
                json!({"document": "d", "id": "2"}),
            ],
        );
        let err = load_error(DatasetName::Xsum, &path);
        assert!(
            err.contains("xsum.jsonl: line 2: field `summary` is missing"),
            "{err}"
        );
    }

    #[test]
    fn a_null_in_parquet_names_file_row_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = dir.path().join("cnn.jsonl");
        write_jsonl(
            &jsonl,
            &[
                json!({"article": "a", "highlights": "h", "id": "1"}),
                json!({"article": null, "highlights": "h", "id": "2"}),
            ],
        );
        let parquet = dir.path().join("cnn.parquet");
        convert(&jsonl, &parquet);
        let err = load_error(DatasetName::CnnDailymail, &parquet);
        assert!(
            err.contains("cnn.parquet: row 2: field `article` is missing"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_tldr_names_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scitldr.jsonl");
        write_jsonl(
            &path,
            &[
                json!({"source": ["a"], "paper_id": "p1", "target": ["t"]}),
                json!({"source": ["a"], "paper_id": "p2", "target": ["t", "  "]}),
            ],
        );
        let err = load_error(DatasetName::Scitldr, &path);
        assert!(
            err.contains("scitldr.jsonl: line 2: field `target[1]` is an empty reference"),
            "{err}"
        );
    }
}
