//! `hsd score`: one metric over a predictions file and a references file.
//!
//! Both files hold one example per line. A references line is either a JSON array of strings
//! (several references) or plain text (one reference); a plain line that happens to start
//! with `[` but is not a JSON string array is an error rather than a guess.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

#[derive(clap::Args)]
pub struct Args {
    /// The metric: rouge, bleu, chrf, meteor or cider.
    #[arg(long, value_parser = ["rouge", "bleu", "chrf", "meteor", "cider"])]
    metric: String,
    /// One prediction per line.
    #[arg(long)]
    predictions: PathBuf,
    /// One line per prediction: a JSON array of references, or a single plain-text reference.
    #[arg(long)]
    references: PathBuf,
    /// Print the corpus and per-example scores as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Report<'a> {
    metric: &'a str,
    corpus: &'a BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<&'a str>,
    per_example: &'a [BTreeMap<String, f64>],
}

fn read_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .map(|line| line.strip_suffix('\r').unwrap_or(line).to_owned())
        .collect())
}

fn parse_references(path: &Path, lines: Vec<String>) -> anyhow::Result<Vec<Vec<String>>> {
    lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            if !line.trim_start().starts_with('[') {
                return Ok(vec![line]);
            }
            let refs: Vec<String> = serde_json::from_str(&line).with_context(|| {
                format!(
                    "{}:{}: a line starting with '[' must be a JSON array of strings",
                    path.display(),
                    i + 1
                )
            })?;
            if refs.is_empty() {
                bail!(
                    "{}:{}: the JSON array holds no reference",
                    path.display(),
                    i + 1
                );
            }
            Ok(refs)
        })
        .collect()
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let predictions = read_lines(&args.predictions)?;
    let references = parse_references(&args.references, read_lines(&args.references)?)?;
    if predictions.len() != references.len() {
        bail!(
            "{} has {} lines but {} has {}: they must pair up line by line",
            args.predictions.display(),
            predictions.len(),
            args.references.display(),
            references.len()
        );
    }
    let metric = hsd_metrics::by_name(&args.metric)?;
    let scores = metric
        .score(&predictions, &references)
        .with_context(|| format!("scoring with {}", args.metric))?;
    // Write through a handle so a closed pipe (`| head`) ends the command with an error, not a panic.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        let report = Report {
            metric: metric.name(),
            corpus: &scores.corpus,
            signature: scores.signature.as_deref(),
            per_example: &scores.per_example,
        };
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        for (name, value) in &scores.corpus {
            writeln!(out, "{name}\t{value:.6}")?;
        }
        if let Some(signature) = &scores.signature {
            writeln!(out, "signature\t{signature}")?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_json_arrays_or_plain_lines() {
        let lines = vec!["[\"a\", \"b\"]".to_owned(), "plain text".to_owned()];
        let refs = parse_references(Path::new("refs.txt"), lines).unwrap();
        assert_eq!(
            refs,
            vec![
                vec!["a".to_owned(), "b".to_owned()],
                vec!["plain text".to_owned()]
            ]
        );
    }

    #[test]
    fn a_broken_array_names_the_file_and_line() {
        let lines = vec!["ok".to_owned(), "[not json".to_owned()];
        let err = parse_references(Path::new("refs.txt"), lines).unwrap_err();
        assert!(format!("{err:#}").contains("refs.txt:2"), "{err:#}");
    }
}
