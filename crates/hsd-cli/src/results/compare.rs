//! Whether two results folders hold the same records: line by line, byte for byte, and where
//! they differ, the first differing record and field.

use std::fmt;
use std::path::Path;

use anyhow::Context;

/// The outcome of comparing a fresh `records.jsonl` with a reference one.
#[derive(Debug, PartialEq)]
pub struct RecordsComparison {
    /// Records of the fresh run.
    pub fresh: usize,
    /// Records of the reference run.
    pub reference: usize,
    /// Leading records equal byte for byte.
    pub identical: usize,
    /// The first record that differs, when one does.
    pub first_difference: Option<Difference>,
}

#[derive(Debug, PartialEq)]
pub struct Difference {
    /// 1-based line.
    pub line: usize,
    /// `run` and `example` of the reference record at that line, when it parses.
    pub record: Option<(String, String)>,
    /// The first top-level field whose values differ, or why no field can be named.
    pub field: String,
}

impl RecordsComparison {
    pub fn is_identical(&self) -> bool {
        self.first_difference.is_none() && self.fresh == self.reference
    }
}

impl fmt::Display for RecordsComparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first_difference {
            None if self.fresh == self.reference => write!(
                f,
                "{}/{} records byte-identical",
                self.identical, self.reference
            ),
            None => write!(
                f,
                "the first {} records are byte-identical, but the fresh run has {} records and the reference {}",
                self.identical, self.fresh, self.reference
            ),
            Some(d) => {
                write!(
                    f,
                    "{}/{} records byte-identical; the first difference is line {}",
                    self.identical, self.reference, d.line
                )?;
                if let Some((run, example)) = &d.record {
                    write!(f, " ({run} on {example})")?;
                }
                write!(f, ", field {}", d.field)
            }
        }
    }
}

/// Compares `fresh` with `reference` (two `records.jsonl` files).
pub fn compare_records(fresh: &Path, reference: &Path) -> anyhow::Result<RecordsComparison> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let (fresh_text, reference_text) = (read(fresh)?, read(reference)?);
    let fresh_lines: Vec<&str> = fresh_text.lines().collect();
    let reference_lines: Vec<&str> = reference_text.lines().collect();
    let identical = fresh_lines
        .iter()
        .zip(&reference_lines)
        .take_while(|(a, b)| a == b)
        .count();
    let first_difference = match (fresh_lines.get(identical), reference_lines.get(identical)) {
        (Some(a), Some(b)) => Some(difference(identical + 1, a, b)),
        _ => None,
    };
    Ok(RecordsComparison {
        fresh: fresh_lines.len(),
        reference: reference_lines.len(),
        identical,
        first_difference,
    })
}

fn difference(line: usize, fresh: &str, reference: &str) -> Difference {
    let parse =
        |text: &str| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text);
    let (Ok(a), Ok(b)) = (parse(fresh), parse(reference)) else {
        return Difference {
            line,
            record: None,
            field: "(a line is not a JSON object)".into(),
        };
    };
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).unwrap_or("?").to_owned();
    let record = Some((text(b.get("run")), text(b.get("example"))));
    let field = b
        .keys()
        .chain(a.keys())
        .find(|k| a.get(*k) != b.get(*k))
        .map_or_else(|| "(same values, different bytes)".to_owned(), Clone::clone);
    Difference {
        line,
        record,
        field,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, lines: &[&str]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(
            &path,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
        path
    }

    #[test]
    fn equal_files_are_identical_and_a_change_names_its_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let a = r#"{"run":"m/e2e/full","example":"e1","tokens":[1,2]}"#;
        let b = r#"{"run":"m/e2e/full","example":"e2","tokens":[3]}"#;
        let changed = r#"{"run":"m/e2e/full","example":"e2","tokens":[4]}"#;
        let reference = write(dir.path(), "ref.jsonl", &[a, b]);

        let same = compare_records(&write(dir.path(), "same.jsonl", &[a, b]), &reference).unwrap();
        assert!(same.is_identical());
        assert_eq!(same.to_string(), "2/2 records byte-identical");

        let other =
            compare_records(&write(dir.path(), "x.jsonl", &[a, changed]), &reference).unwrap();
        assert!(!other.is_identical());
        assert_eq!(
            other.to_string(),
            "1/2 records byte-identical; the first difference is line 2 (m/e2e/full on e2), field tokens"
        );

        let short = compare_records(&write(dir.path(), "s.jsonl", &[a]), &reference).unwrap();
        assert!(!short.is_identical());
        assert!(
            short
                .to_string()
                .contains("the fresh run has 1 records and the reference 2")
        );
    }
}
