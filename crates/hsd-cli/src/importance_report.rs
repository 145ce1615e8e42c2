//! Layer importance from `drop` runs (one layer skipped at every decoding step): per dataset,
//! the quality kept and the teacher-forced agreement with vanilla when each layer is the one
//! skipped, as a table (layers down, datasets across) and one curve per dataset.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hsd_plot::{LineChart, Point, RefLine, Series};

use crate::report_rows::primary_metric;
use crate::results::SummaryRow;

/// Whether `row` is a one-layer drop run; such rows go here, not to the skip-ratio figures.
pub fn is_drop(row: &SummaryRow) -> bool {
    row.strategy == "drop"
}

/// The dropped layer (1-based) from a `drop` run's label, `drop-L07` -> 7.
fn dropped_layer(row: &SummaryRow) -> Option<usize> {
    row.label.rsplit_once("-L")?.1.parse().ok()
}

/// A dropped layer's quality kept and teacher-forced agreement.
type KeptAndAgreement = (Option<f64>, Option<f64>);

/// Per (model, dataset): the metric plotted, and per dropped layer the quality kept (corpus
/// score over vanilla's) and the teacher-forced top-1 agreement.
struct Curve {
    metric: &'static str,
    points: BTreeMap<usize, KeptAndAgreement>,
}

fn curves(drops: &[SummaryRow], all: &[SummaryRow]) -> BTreeMap<(String, String), Curve> {
    let mut out = BTreeMap::new();
    for row in drops {
        let Some(layer) = dropped_layer(row) else {
            continue;
        };
        let group: Vec<&SummaryRow> = all
            .iter()
            .filter(|r| r.model == row.model && r.dataset == row.dataset)
            .collect();
        let Some(metric) = primary_metric(&group) else {
            continue;
        };
        let curve = out
            .entry((row.model.clone(), row.dataset.clone()))
            .or_insert_with(|| Curve {
                metric,
                points: BTreeMap::new(),
            });
        let kept = row.metrics.get(metric).and_then(|m| m.retained);
        curve
            .points
            .insert(layer, (kept, row.faithfulness.forced_agreement));
    }
    out
}

/// One table, a row per layer and per (model, dataset) a column "kept / agreement"; `None`
/// without drop runs.
pub fn markdown_table(drops: &[SummaryRow], all: &[SummaryRow]) -> Option<String> {
    let curves = curves(drops, all);
    if curves.is_empty() {
        return None;
    }
    let cell = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"));
    let mut out = String::from(
        "Each row skips one layer (1-based) at every decoding step, K/V propagated. Each cell: \
         the dataset's metric as a share of vanilla's / the teacher-forced top-1 agreement with \
         vanilla's tokens.\n\n| layer |",
    );
    for ((model, dataset), curve) in &curves {
        let _ = write!(out, " {dataset} ({model}, {}) |", curve.metric);
    }
    out.push_str("\n|---:|");
    out.push_str(&"---:|".repeat(curves.len()));
    out.push('\n');
    let layers: std::collections::BTreeSet<usize> = curves
        .values()
        .flat_map(|c| c.points.keys().copied())
        .collect();
    for layer in layers {
        let _ = write!(out, "| {layer} |");
        for curve in curves.values() {
            let (kept, agreement) = curve.points.get(&layer).copied().unwrap_or_default();
            let _ = write!(out, " {} / {} |", cell(kept), cell(agreement));
        }
        out.push('\n');
    }
    Some(out)
}

/// Two panels per model: quality kept and teacher-forced agreement against the dropped layer,
/// one curve per dataset.
pub fn panels(drops: &[SummaryRow], all: &[SummaryRow]) -> Vec<LineChart> {
    let curves = curves(drops, all);
    let mut models: Vec<&str> = curves.keys().map(|(m, _)| m.as_str()).collect();
    models.dedup();
    let mut panels = Vec::new();
    for model in models {
        let series_of = |value: fn(&KeptAndAgreement) -> Option<f64>| -> Vec<Series> {
            curves
                .iter()
                .filter(|((m, _), _)| m == model)
                .map(|((_, dataset), curve)| {
                    let points = curve
                        .points
                        .iter()
                        .filter_map(|(&layer, v)| value(v).map(|y| Point::new(layer as f64, y)))
                        .collect();
                    Series::measured(dataset.clone(), points)
                })
                .filter(|s| !s.points.is_empty())
                .collect()
        };
        let x_range = Some((
            0.5,
            curves
                .values()
                .flat_map(|c| c.points.keys())
                .max()
                .copied()
                .unwrap_or(1) as f64
                + 0.5,
        ));
        // Quality kept can pass 1 (a skip that happens to help); agreement cannot.
        for (title, y_label, series, reference, y_range) in [
            (
                "quality kept",
                "metric / vanilla",
                series_of(|v| v.0),
                Some(0.9),
                None,
            ),
            (
                "teacher-forced agreement",
                "top-1 agreement with vanilla",
                series_of(|v| v.1),
                None,
                Some((0.0, 1.05)),
            ),
        ] {
            if series.is_empty() {
                continue;
            }
            panels.push(LineChart {
                title: format!("{title}, one layer skipped ({model})"),
                x_label: "skipped layer (1-based)".into(),
                y_label: y_label.into(),
                series,
                ref_lines: reference
                    .map(|y| RefLine {
                        y,
                        label: "90% of vanilla".into(),
                    })
                    .into_iter()
                    .collect(),
                x_range,
                y_range,
            });
        }
    }
    panels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dropped_layer_is_a_row_and_a_point() {
        let dir = tempfile::tempdir().unwrap();
        let mut all = crate::report::tests::synthetic_results(dir.path());
        let vanilla = all
            .iter()
            .find(|r| r.dataset == "e2e" && r.strategy == "full")
            .unwrap()
            .clone();
        for (layer, kept, agreement) in [(1, 0.2, 0.25), (2, 0.9, 0.95)] {
            let mut drop = vanilla.clone();
            drop.strategy = "drop".into();
            drop.label = format!("drop-L{layer:02}");
            let bleu = drop.metrics.get_mut("bleu").unwrap();
            bleu.corpus *= kept;
            bleu.retained = Some(kept);
            drop.faithfulness.forced_agreement = Some(agreement);
            all.push(drop);
        }
        let drops: Vec<SummaryRow> = all.iter().filter(|r| is_drop(r)).cloned().collect();
        let table = markdown_table(&drops, &all).unwrap();
        assert!(table.contains("| 1 | 0.20 / 0.25 |"), "{table}");
        assert!(table.contains("| 2 | 0.90 / 0.95 |"), "{table}");
        assert!(table.contains("e2e (m, bleu)"), "{table}");
        let panels = panels(&drops, &all);
        assert_eq!(panels.len(), 2);
        assert_eq!(panels[0].series[0].points.len(), 2);
        assert_eq!(panels[0].series[0].points[0].x, 1.0);
        assert!(markdown_table(&[], &all).is_none());
    }
}
