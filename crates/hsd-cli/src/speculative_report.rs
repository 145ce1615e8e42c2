//! The lossless runs of a results folder (strategies drafting for the full model): their
//! tokens are vanilla's, so what a reader needs is acceptance and wall-clock speed-up against
//! the draft skip ratio, one line per strategy and draft length.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hsd_plot::{LineChart, Point, RefLine, Series};

use crate::results::SummaryRow;

/// Whether `row` is a lossless run.
pub fn is_speculative(row: &SummaryRow) -> bool {
    row.acceptance_rate.is_some()
}

/// `+k4` / `+k4a` of a lossless run's id, as a label suffix (`k=4`, `k=4 adaptive`).
fn draft_length(row: &SummaryRow) -> String {
    match row.run.rsplit_once('+') {
        Some((_, k)) => match k.strip_suffix('a') {
            Some(k) => format!("{} adaptive", k.replacen('k', "k=", 1)),
            None => k.replacen('k', "k=", 1),
        },
        None => String::new(),
    }
}

/// The skip ratio the drafter was solved for; 0 for the full model drafting for itself (on
/// other weights, e.g. the GGUF's blocks).
fn draft_skip_ratio(row: &SummaryRow) -> Option<f64> {
    row.target_skip_ratio
        .or_else(|| (row.strategy == "full").then_some(0.0))
}

fn line_label(row: &SummaryRow) -> String {
    format!("{} {}", row.label, draft_length(row))
}

/// Per dataset of each model, a speed-up panel and an acceptance panel against the draft
/// skip ratio (the target the drafter was solved for).
pub fn panels(rows: &[SummaryRow]) -> Vec<LineChart> {
    let mut by_group: BTreeMap<(&str, &str), Vec<&SummaryRow>> = BTreeMap::new();
    for row in rows.iter().filter(|r| is_speculative(r)) {
        by_group
            .entry((row.model.as_str(), row.dataset.as_str()))
            .or_default()
            .push(row);
    }
    let mut panels = Vec::new();
    for ((model, dataset), members) in by_group {
        let mut lines: BTreeMap<String, Vec<&SummaryRow>> = BTreeMap::new();
        for row in members {
            lines.entry(line_label(row)).or_default().push(row);
        }
        let series_of = |value: fn(&SummaryRow) -> Option<f64>| -> Vec<Series> {
            lines
                .iter()
                .map(|(label, runs)| {
                    let mut points: Vec<Point> = runs
                        .iter()
                        .filter_map(|r| Some(Point::new(draft_skip_ratio(r)?, value(r)?)))
                        .collect();
                    points.sort_by(|a, b| a.x.total_cmp(&b.x));
                    Series::measured(label.clone(), points)
                })
                .filter(|s| !s.points.is_empty())
                .collect()
        };
        let speed = series_of(|r| r.speedup);
        if !speed.is_empty() {
            panels.push(LineChart {
                title: format!("lossless speed-up, {dataset} ({model})"),
                x_label: "draft skip ratio".into(),
                y_label: "speed-up over vanilla".into(),
                series: speed,
                ref_lines: vec![RefLine {
                    y: 1.0,
                    label: "vanilla".into(),
                }],
                x_range: None,
                y_range: None,
            });
        }
        let acceptance = series_of(|r| r.acceptance_rate);
        if !acceptance.is_empty() {
            panels.push(LineChart {
                title: format!("draft acceptance, {dataset} ({model})"),
                x_label: "draft skip ratio".into(),
                y_label: "accepted / drafted tokens".into(),
                series: acceptance,
                ref_lines: Vec::new(),
                x_range: None,
                y_range: Some((0.0, 1.0)),
            });
        }
    }
    panels
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// One row per lossless run: the drafter, its draft skip ratio and length, acceptance,
/// accepted drafts per round and wall-clock speed-up over vanilla.
pub fn markdown_table(rows: &[SummaryRow]) -> String {
    let mut out = String::from(
        "| model | dataset | drafter | draft skip ratio | k | acceptance | accepted / round | speed-up |\n\
         |---|---|---|---:|---|---:|---:|---:|\n",
    );
    for row in rows.iter().filter(|r| is_speculative(r)) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.model,
            row.dataset,
            row.label,
            cell(draft_skip_ratio(row), 2),
            draft_length(row).trim_start_matches("k="),
            cell(row.acceptance_rate, 3),
            cell(row.accepted_per_round, 2),
            cell(row.speedup, 2),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(run: &str, label: &str, target: f64, acceptance: f64, speedup: f64) -> SummaryRow {
        SummaryRow {
            run: run.into(),
            model: "m".into(),
            dataset: "e2e".into(),
            strategy: "hsd".into(),
            label: label.into(),
            target_skip_ratio: Some(target),
            examples: 2,
            generated_tokens: 20,
            skip_ratio: 0.1,
            mean_layers: 27.0,
            flops_ratio: 0.9,
            metrics: BTreeMap::new(),
            acceptance_rate: Some(acceptance),
            accepted_per_round: Some(1.5),
            faithfulness: Default::default(),
            decode_seconds: Some(1.0),
            tokens_per_second: Some(20.0),
            speedup: Some(speedup),
        }
    }

    #[test]
    fn lines_are_drafter_and_k_and_lossy_rows_stay_out() {
        let mut lossy = row("m/e2e/hsd@0.25", "hsd", 0.25, 0.0, 1.3);
        lossy.acceptance_rate = None;
        let rows = vec![
            row("m/e2e/hsd-draft@0.25+k2", "hsd-draft", 0.25, 0.8, 1.1),
            row("m/e2e/hsd-draft@0.50+k2", "hsd-draft", 0.5, 0.4, 0.8),
            row("m/e2e/hsd-draft@0.25+k4a", "hsd-draft", 0.25, 0.7, 1.0),
            lossy,
        ];
        let mut full_native = row("m/e2e/full-native+k4", "full-native", 0.0, 0.99, 1.9);
        full_native.strategy = "full".into();
        full_native.target_skip_ratio = None;
        let mut rows = rows;
        rows.push(full_native);
        let panels = panels(&rows);
        assert_eq!(panels.len(), 2);
        let labels: Vec<&str> = panels[0].series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            ["full-native k=4", "hsd-draft k=2", "hsd-draft k=4 adaptive"]
        );
        // The full model drafting for itself (on other weights) sits at draft skip 0.
        assert_eq!(panels[0].series[0].points[0].x, 0.0);
        assert_eq!(panels[0].series[1].points.len(), 2);
        assert_eq!(panels[1].series[1].points[1].y, 0.4);
        let table = markdown_table(&rows);
        assert_eq!(table.lines().count(), 6, "{table}");
        assert!(table.contains("| m | e2e | full-native | 0.00 | 4 | 0.990 | 1.50 | 1.90 |"));
        assert!(
            table.contains("| m | e2e | hsd-draft | 0.25 | 4 adaptive | 0.700 | 1.50 | 1.00 |")
        );
    }
}
