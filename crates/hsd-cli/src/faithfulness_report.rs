//! The faithfulness table of a results folder: beside each run's skip ratio, how much of its
//! output is the same model's vanilla output token for token, where the two first part, and
//! how far the text degenerates (repeated 4-grams, empty outputs), and, fed vanilla's tokens,
//! how often the strategy predicts them and how far its distribution is from the full model's.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::results::SummaryRow;

/// One Markdown table per (model, dataset), or `None` when no row has the measures (summaries
/// written before they existed).
pub fn markdown_table(rows: &[SummaryRow]) -> Option<String> {
    if rows
        .iter()
        .all(|r| r.faithfulness.repeated_4grams.is_none())
    {
        return None;
    }
    let mut groups: BTreeMap<(&str, &str), Vec<&SummaryRow>> = BTreeMap::new();
    for row in rows {
        groups
            .entry((row.model.as_str(), row.dataset.as_str()))
            .or_default()
            .push(row);
    }
    let cell = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
    };
    let mut out = String::from(
        "Token agreement is the share of positions equal to the same model's vanilla output \
         (over the longer of the two); first divergence is the mean index of the first token \
         that differs; repeated 4-grams is the mean share of an output's 4-grams that repeat an \
         earlier one of the same output. Forced agreement and forced KL feed the strategy the \
         vanilla tokens as decoding would (no drift): the share of positions where its greedy token \
         is vanilla's, and the mean KL(full || strategy) in nats.\n\n",
    );
    for ((model, dataset), members) in groups {
        let _ = writeln!(
            out,
            "### {dataset} ({model}, {} examples)\n",
            members[0].examples
        );
        out.push_str(
            "| strategy | target | skip | token agreement | first divergence | forced agreement | forced KL | repeated 4-grams | empty |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for row in members {
            let f = &row.faithfulness;
            let _ = writeln!(
                out,
                "| {} | {} | {:.3} | {} | {} | {} | {} | {} | {} |",
                row.label,
                row.target_skip_ratio
                    .map_or_else(|| "–".to_owned(), |t| format!("{t:.2}")),
                row.skip_ratio,
                cell(f.vanilla_agreement, 3),
                cell(f.first_divergence, 1),
                cell(f.forced_agreement, 3),
                cell(f.forced_kl, 3),
                cell(f.repeated_4grams, 3),
                cell(f.empty_share, 2),
            );
        }
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Faithfulness;

    #[test]
    fn a_table_per_group_and_none_without_the_measures() {
        let dir = tempfile::tempdir().unwrap();
        let mut rows = crate::report::tests::synthetic_results(dir.path());
        assert_eq!(markdown_table(&rows), None);
        for (i, row) in rows.iter_mut().enumerate() {
            row.faithfulness = Faithfulness {
                vanilla_agreement: Some(1.0 - 0.1 * i as f64),
                first_divergence: Some(4.0),
                repeated_4grams: Some(0.0),
                empty_share: Some(0.0),
                forced_agreement: (i > 0).then_some(0.9),
                forced_kl: (i > 0).then_some(0.25),
            };
        }
        let table = markdown_table(&rows).unwrap();
        assert_eq!(table.matches("### ").count(), 2, "{table}");
        assert!(
            table.contains("| full | – | 0.000 | 1.000 | 4.0 | – | – | 0.000 | 0.00 |"),
            "{table}"
        );
        assert!(table.contains("| 0.900 | 0.250 |"), "{table}");
    }
}
