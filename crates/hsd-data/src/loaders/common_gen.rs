//! CommonGen: a concept set -> sentences using all of it. The INK-USC release has one line per
//! concept set (`concept_set` = `field_N#look_V#stand_V`, references in `scene`), the HF
//! `allenai/common_gen` export one row per reference (`concept_set_idx`, `concepts`,
//! `target`), grouped here by `concept_set_idx` in order of first appearance.

use std::collections::HashMap;
use std::path::Path;

use super::layout::layout;
use crate::error::DataError;
use crate::example::{Example, Source};
use crate::names::DatasetName;
use crate::table::Table;

#[derive(Clone, Copy)]
enum Layout {
    Release,
    HuggingFace,
}

pub(super) fn load(path: &Path) -> Result<Vec<Example>, DataError> {
    let table = Table::read(path)?;
    match layout(
        &table,
        DatasetName::CommonGen,
        &[
            ("concept_set", Layout::Release),
            ("concept_set_idx", Layout::HuggingFace),
        ],
    )? {
        Layout::Release => load_release(&table),
        Layout::HuggingFace => load_hf(&table),
    }
}

fn load_release(table: &Table) -> Result<Vec<Example>, DataError> {
    (0..table.len())
        .map(|row| {
            let at = table.at(row);
            let concept_set = at.non_empty("concept_set", table.get(row, "concept_set").text()?)?;
            let concepts = concept_set.split('#').map(strip_pos_tag).collect();
            let references = table
                .get(row, "scene")
                .items()?
                .into_iter()
                .map(|scene| {
                    let field = scene.field().to_owned();
                    at.reference(&field, scene.text()?)
                })
                .collect::<Result<Vec<_>, _>>()?;
            if references.is_empty() {
                return Err(at.empty_reference("scene"));
            }
            Ok(Example {
                id: concept_set,
                source: Source::Concepts { concepts },
                references,
            })
        })
        .collect()
}

fn load_hf(table: &Table) -> Result<Vec<Example>, DataError> {
    let mut position: HashMap<String, usize> = HashMap::new();
    let mut examples: Vec<Example> = Vec::new();
    for row in 0..table.len() {
        let at = table.at(row);
        let id = table.get(row, "concept_set_idx").id()?;
        // The HF test split ships without targets: every one is "", and is refused here.
        let reference = at.reference("target", table.get(row, "target").text()?)?;
        let index = match position.get(&id) {
            Some(&index) => index,
            None => {
                let concepts = table.get(row, "concepts").texts()?;
                if concepts.is_empty() {
                    return Err(at.empty("concepts"));
                }
                examples.push(Example {
                    id: id.clone(),
                    source: Source::Concepts { concepts },
                    references: Vec::new(),
                });
                position.insert(id, examples.len() - 1);
                examples.len() - 1
            }
        };
        examples[index].references.push(reference);
    }
    Ok(examples)
}

/// `look_V` -> `look`: the release tags each concept with its part of speech.
fn strip_pos_tag(concept: &str) -> String {
    match concept.rsplit_once('_') {
        Some((word, tag)) if !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_uppercase()) => {
            word.to_owned()
        }
        _ => concept.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::strip_pos_tag;
    use crate::example::Source;
    use crate::names::{DatasetName, Split};
    use crate::testing::{check_counts, load_error, round_trip, write_jsonl};

    #[test]
    fn shared_common_gen_splits_match_provenance() {
        check_counts(DatasetName::CommonGen, Split::Dev, 993, 4018);
        check_counts(DatasetName::CommonGen, Split::Test, 1497, 6042);
    }

    #[test]
    fn pos_tags_are_stripped_and_only_pos_tags() {
        assert_eq!(strip_pos_tag("field_N"), "field");
        assert_eq!(strip_pos_tag("t_shirt"), "t_shirt");
        assert_eq!(strip_pos_tag("dog"), "dog");
    }

    #[test]
    fn hf_rows_group_by_concept_set_idx() {
        let rows = [
            json!({"concept_set_idx": 0, "concepts": ["ski", "mountain", "skier"], "target": "Skier skis down the mountain."}),
            json!({"concept_set_idx": 0, "concepts": ["ski", "mountain", "skier"], "target": "A skier on a mountain."}),
            json!({"concept_set_idx": 1, "concepts": ["dog", "frisbee"], "target": "The dog caught the frisbee."}),
        ];
        let examples = round_trip(DatasetName::CommonGen, &rows, &["parquet"]);
        assert_eq!(examples.len(), 2);
        assert_eq!(examples[0].id, "0");
        assert_eq!(examples[0].references.len(), 2);
        assert_eq!(
            examples[1].source,
            Source::Concepts {
                concepts: vec!["dog".into(), "frisbee".into()]
            }
        );
    }

    #[test]
    fn the_hf_test_split_without_targets_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("common_gen_test.jsonl");
        write_jsonl(
            &path,
            &[json!({"concept_set_idx": 0, "concepts": ["a", "b"], "target": ""})],
        );
        let err = load_error(DatasetName::CommonGen, &path);
        assert!(
            err.contains("common_gen_test.jsonl: line 1: field `target` is an empty reference"),
            "{err}"
        );
    }
}
