//! The early-exit oracle against the rules: per generated position, the fewest layers whose
//! exit gives the full model's token (from an `oracle` run's records), beside the layers each
//! strategy ran there (a figure), and each strategy's distance to it (a table): how often it
//! ran fewer layers than the token needed, and how many it ran beyond.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hsd_plot::{LineChart, Point, RefLine, Series};

use crate::report_rows::{groups, lines_by_label, target};
use crate::results::{Record, SummaryRow};

/// The oracle's need in a (model, dataset) group with an oracle run: the model's depth, and
/// per example the fewest layers at each generated position (a token no layer below the last
/// gets right needs all of them).
fn oracle_needs(
    members: &[&SummaryRow],
    records: &[Record],
) -> Option<(usize, BTreeMap<String, Vec<usize>>)> {
    let oracle = members.iter().find(|r| r.strategy == "oracle")?;
    let oracle_records: Vec<&Record> = records.iter().filter(|r| r.run == oracle.run).collect();
    let layers = oracle_records
        .iter()
        .flat_map(|r| r.layers.first())
        .map(String::len)
        .next()?;
    let needs = oracle_records
        .iter()
        .filter_map(|r| {
            let per_token = r.oracle_layers.as_ref()?;
            Some((
                r.example.clone(),
                per_token.iter().map(|l| l.unwrap_or(layers)).collect(),
            ))
        })
        .collect();
    Some((layers, needs))
}

/// The oracle bound per dataset: at each generated position, the mean over examples of the
/// fewest layers that reproduce the full model's token, against the mean layers each
/// strategy ran there (at its median target). Tokens no intermediate layer gets right count
/// as needing every layer.
pub fn panels(rows: &[SummaryRow], records: &[Record]) -> Vec<LineChart> {
    let mean_by_position = |per_example: Vec<Vec<f64>>| -> Vec<Point> {
        let positions = per_example.iter().map(Vec::len).max().unwrap_or(0);
        (0..positions)
            .filter_map(|t| {
                let values: Vec<f64> = per_example
                    .iter()
                    .filter_map(|v| v.get(t).copied())
                    .collect();
                (!values.is_empty())
                    .then(|| Point::new(t as f64, values.iter().sum::<f64>() / values.len() as f64))
            })
            .collect()
    };
    let mut panels = Vec::new();
    for ((model, dataset), members) in groups(rows) {
        let Some((layers, needs)) = oracle_needs(&members, records) else {
            continue;
        };
        let needed = needs
            .into_values()
            .map(|per_token| per_token.into_iter().map(|n| n as f64).collect())
            .collect();
        let mut series = vec![Series::measured("oracle minimum", mean_by_position(needed))];
        for (label, mut runs) in lines_by_label(&members)
            .into_iter()
            .filter(|(_, runs)| runs[0].strategy != "oracle")
        {
            runs.sort_by(|a, b| {
                a.target_skip_ratio
                    .unwrap_or(0.0)
                    .total_cmp(&b.target_skip_ratio.unwrap_or(0.0))
            });
            let run = runs[runs.len() / 2];
            let ran = records
                .iter()
                .filter(|r| r.run == run.run)
                .map(|r| r.layers_run().map(|n| n as f64).collect())
                .collect();
            series.push(Series::measured(
                format!("{label} @ {}", target(run)),
                mean_by_position(ran),
            ));
        }
        panels.push(LineChart {
            title: format!("oracle bound: {dataset} ({model})"),
            x_label: "generated position".into(),
            y_label: "layers (mean over examples)".into(),
            series,
            ref_lines: vec![RefLine {
                y: layers as f64,
                label: "all layers".into(),
            }],
            x_range: None,
            y_range: Some((0.0, layers as f64 * 1.08)),
        });
    }
    panels
}

/// Per (model, dataset) with an oracle run, each strategy run's distance to the oracle over
/// the positions both have (matched by example and index; the first token, from the prompt's
/// full pass, left out): mean layers run against mean needed, the share of positions that ran
/// fewer layers than needed, and the mean layers run beyond the need.
pub fn markdown_table(rows: &[SummaryRow], records: &[Record]) -> Option<String> {
    let mut out = String::new();
    for ((model, dataset), members) in groups(rows) {
        let Some((_, needed)) = oracle_needs(&members, records) else {
            continue;
        };
        let _ = writeln!(
            out,
            "### {dataset} ({model})\n\n| strategy | target | skip | layers run | layers needed | ran fewer than needed | excess layers |\n|---|---:|---:|---:|---:|---:|---:|"
        );
        for run in members
            .iter()
            .filter(|r| !matches!(r.strategy.as_str(), "oracle" | "full"))
        {
            let (mut ran, mut need, mut under, mut excess, mut positions) = (0, 0, 0, 0, 0usize);
            for record in records.iter().filter(|r| r.run == run.run) {
                let Some(needs) = needed.get(&record.example) else {
                    continue;
                };
                for (layers_run, &layers_needed) in record.layers_run().zip(needs).skip(1) {
                    ran += layers_run;
                    need += layers_needed;
                    under += usize::from(layers_run < layers_needed);
                    excess += layers_run.saturating_sub(layers_needed);
                    positions += 1;
                }
            }
            if positions == 0 {
                continue;
            }
            let per = |total: usize| total as f64 / positions as f64;
            let _ = writeln!(
                out,
                "| {} | {} | {:.3} | {:.2} | {:.2} | {:.3} | {:.2} |",
                run.label,
                target(run),
                run.skip_ratio,
                per(ran),
                per(need),
                per(under),
                per(excess)
            );
        }
        out.push('\n');
    }
    (!out.is_empty()).then(|| {
        format!(
            "The oracle's need at a position is the fewest layers whose exit gives the full \
             model's token there (all layers when none below the last does). Positions are \
             matched by example and index, the first (from the prompt's full pass) left out. \
             *Ran fewer than needed* is the share of positions where a rule ran fewer layers \
             than the need, *excess* the mean layers it ran beyond it.\n\n{out}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_count_shortfalls_and_excess_against_the_need() {
        let dir = tempfile::tempdir().unwrap();
        let mut rows = crate::report::tests::synthetic_results(dir.path());
        let mut records: Vec<Record> =
            crate::results::recover(&dir.path().join("records.jsonl")).unwrap();
        let full = rows
            .iter()
            .find(|r| r.dataset == "e2e" && r.strategy == "full")
            .unwrap()
            .clone();
        let mut oracle = full.clone();
        oracle.strategy = "oracle".into();
        oracle.label = "oracle".into();
        oracle.run = "m/e2e/oracle".into();
        rows.push(oracle);
        let template = records.iter().find(|r| r.run == full.run).unwrap().clone();
        let mut oracle_record = template.clone();
        oracle_record.run = "m/e2e/oracle".into();
        oracle_record.layers = vec!["1111".into(); 3];
        oracle_record.oracle_layers = Some(vec![None, Some(2), Some(4)]);
        records.push(oracle_record);
        let mut hsd = template.clone();
        hsd.run = rows
            .iter()
            .find(|r| r.dataset == "e2e" && r.strategy == "hsd")
            .unwrap()
            .run
            .clone();
        records.retain(|r| r.run != hsd.run);
        // Positions 1 and 2 ran 3 and 1 layers against needs of 2 and 4.
        hsd.layers = vec!["1111".into(), "0111".into(), "0001".into()];
        records.push(hsd);
        let table = markdown_table(&rows, &records).unwrap();
        assert!(table.contains("### e2e (m)"), "{table}");
        assert!(table.contains("| 2.00 | 3.00 | 0.500 | 0.50 |"), "{table}");
        assert!(!table.contains("### xsum"), "{table}");
    }
}
