//! E2E NLG: one CSV row per reference, grouped by meaning representation into one
//! multi-reference example per MR, in order of first appearance. The challenge files name the
//! columns `mr`, `ref`; the HF `tuetschek/e2e_nlg` export names them `meaning_representation`,
//! `human_reference`.

use std::collections::HashMap;
use std::path::Path;

use super::layout::{fallback_id, layout};
use crate::error::DataError;
use crate::example::{Attribute, Example, Source};
use crate::names::DatasetName;
use crate::table::{RecordAt, Table};

pub(super) fn load(path: &Path, id_prefix: &str) -> Result<Vec<Example>, DataError> {
    let table = Table::read(path)?;
    let (mr_field, ref_field) = layout(
        &table,
        DatasetName::E2e,
        &[
            ("mr", ("mr", "ref")),
            (
                "meaning_representation",
                ("meaning_representation", "human_reference"),
            ),
        ],
    )?;
    let mut position: HashMap<String, usize> = HashMap::new();
    let mut grouped: Vec<(Vec<Attribute>, Vec<String>)> = Vec::new();
    for row in 0..table.len() {
        let at = table.at(row);
        let mr = table.get(row, mr_field).text()?;
        let reference = at.reference(ref_field, table.get(row, ref_field).text()?)?;
        let index = match position.get(&mr) {
            Some(&index) => index,
            None => {
                grouped.push((parse_mr(&mr, at, mr_field)?, Vec::new()));
                position.insert(mr, grouped.len() - 1);
                grouped.len() - 1
            }
        };
        grouped[index].1.push(reference);
    }
    Ok(grouped
        .into_iter()
        .enumerate()
        .map(|(index, (attributes, references))| Example {
            id: fallback_id(id_prefix, index),
            source: Source::MeaningRepresentation { attributes },
            references,
        })
        .collect())
}

/// `name[The Eagle], eatType[coffee shop]` into its attribute-value pairs.
fn parse_mr(mr: &str, at: RecordAt<'_>, field: &str) -> Result<Vec<Attribute>, DataError> {
    let mut attributes = Vec::new();
    let mut rest = mr.trim();
    while !rest.is_empty() {
        let (name, after_name) = rest.split_once('[').ok_or_else(|| {
            at.malformed(field, format!("expected `attribute[value]` at `{rest}`"))
        })?;
        let (value, after_value) = after_name
            .split_once(']')
            .ok_or_else(|| at.malformed(field, format!("unclosed `[` after `{name}`")))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(at.malformed(
                field,
                format!("attribute without a name before `[{value}]`"),
            ));
        }
        attributes.push(Attribute {
            name: name.to_owned(),
            value: value.trim().to_owned(),
        });
        rest = after_value.trim_start();
        if let Some(next) = rest.strip_prefix(',') {
            rest = next.trim_start();
        } else if !rest.is_empty() {
            return Err(at.malformed(field, format!("expected `,` before `{rest}`")));
        }
    }
    if attributes.is_empty() {
        return Err(at.empty(field));
    }
    Ok(attributes)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::names::{DatasetName, Split};
    use crate::testing::{check_counts, load_error, load_path, round_trip};

    #[test]
    fn shared_e2e_splits_match_provenance() {
        check_counts(DatasetName::E2e, Split::Test, 630, 4693);
        check_counts(DatasetName::E2e, Split::Dev, 547, 4672);
    }

    #[test]
    fn hf_rows_group_by_mr_in_first_appearance_order() {
        let rows = [
            json!({"meaning_representation": "name[B], area[riverside]", "human_reference": "B1"}),
            json!({"meaning_representation": "name[A], priceRange[less than £20]", "human_reference": "A1"}),
            json!({"meaning_representation": "name[B], area[riverside]", "human_reference": "B2"}),
        ];
        let examples = round_trip(DatasetName::E2e, &rows, &["parquet", "csv"]);
        assert_eq!(examples.len(), 2);
        assert_eq!(examples[0].references, vec!["B1", "B2"]);
        assert_eq!(examples[0].id, "e2e/test/0");
        assert_eq!(
            examples[1].source.render(),
            "name[A], priceRange[less than £20]"
        );
    }

    #[test]
    fn an_empty_reference_names_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devset.csv");
        std::fs::write(
            &path,
            "mr,ref\n\"name[A]\",\"A is\nfine.\"\n\"name[A]\",\"\"\n",
        )
        .unwrap();
        let err = load_error(DatasetName::E2e, &path);
        assert!(err.contains("devset.csv: line 4: field `ref`"), "{err}");
    }

    #[test]
    fn a_malformed_mr_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, "mr,ref\n\"name[A], area riverside\",x\n").unwrap();
        let err = load_error(DatasetName::E2e, &path);
        assert!(err.contains("bad.csv: line 2: field `mr`"), "{err}");
        std::fs::write(&path, "mr,ref\n\"name[A]\",x\n").unwrap();
        assert_eq!(load_path(DatasetName::E2e, &path)[0].references, vec!["x"]);
    }
}
