//! The paper's claim put to each (model, dataset) of a results folder: does HSD keep about 90%
//! of vanilla quality at about half the layers, and is it ahead of SkipDecode and CALM at the
//! same target? Plus the frontier figure: task quality against measured wall-clock speed-up.

use std::fmt::Write as _;

use hsd_plot::{LineChart, Point, RefLine, Series, Stroke};

use crate::report_rows::{groups, metric_name, primary_metric};
use crate::results::{MetricSummary, SummaryRow};

/// The skip ratio the claim is about ("about half the layers").
const HALF: f64 = 0.5;
/// The share of vanilla quality the claim keeps.
const KEPT: f64 = 0.9;
/// Significance level of the paired bootstrap test against HSD.
const ALPHA: f64 = 0.05;
/// How far HSD's measured skip ratio may lie from 0.5 and still count as "about half", and
/// below a rival's and still count as "equal": a model that stops early under skipping
/// realizes far less than its target, and a verdict there is not about the claim.
const SKIP_TOLERANCE: f64 = 0.1;

/// The rivals the claim names, by label.
const RIVALS: [&str; 2] = ["skipdecode", "calm"];

/// A run's corpus score as a share of vanilla's, with the per-example-mean interval re-centred
/// on the corpus score (as the quality figures draw it) and divided by vanilla's corpus score;
/// vanilla's own sampling error is not in it.
fn kept(run: &MetricSummary, vanilla: &MetricSummary) -> Option<(f64, f64, f64)> {
    (vanilla.corpus != 0.0).then(|| {
        let (lo, hi) = run.corpus_interval();
        (
            run.corpus / vanilla.corpus,
            lo / vanilla.corpus,
            hi / vanilla.corpus,
        )
    })
}

/// The verdict table; `None` when no (model, dataset) has vanilla and HSD runs.
pub fn markdown_table(rows: &[SummaryRow]) -> Option<String> {
    let mut lines = Vec::new();
    for ((model, dataset), members) in groups(rows) {
        let Some(metric) = primary_metric(&members) else {
            continue;
        };
        let Some(vanilla) = members
            .iter()
            .find(|r| r.strategy == "full")
            .and_then(|r| r.metrics.get(metric))
        else {
            continue;
        };
        let Some(hsd) = members
            .iter()
            .filter(|r| r.label == "hsd" && r.target_skip_ratio.is_some())
            .min_by(|a, b| {
                let distance = |r: &SummaryRow| (r.target_skip_ratio.unwrap_or(0.0) - HALF).abs();
                distance(a).total_cmp(&distance(b))
            })
        else {
            continue;
        };
        let Some(hsd_metric) = hsd.metrics.get(metric) else {
            continue;
        };
        let Some((share, lo, hi)) = kept(hsd_metric, vanilla) else {
            continue;
        };
        let mut half = if lo >= KEPT {
            "yes"
        } else if hi < KEPT {
            "no"
        } else {
            "CI spans 90%"
        }
        .to_owned();
        if (hsd.skip_ratio - HALF).abs() > SKIP_TOLERANCE {
            half = format!("{half}, but at skip {:.2}", hsd.skip_ratio);
        }
        let mut skips_less = false;
        let mut rival_cells = Vec::new();
        let mut ahead_of_all = true;
        let mut behind_any = false;
        for rival in RIVALS {
            let found = members
                .iter()
                .find(|r| r.label == rival && r.target_skip_ratio == hsd.target_skip_ratio);
            let Some((rival_metric, row)) =
                found.and_then(|r| r.metrics.get(metric).map(|m| (m, r)))
            else {
                rival_cells.push("–".to_owned());
                ahead_of_all = false;
                continue;
            };
            skips_less |= row.skip_ratio - hsd.skip_ratio > SKIP_TOLERANCE;
            let significant = rival_metric.p_vs_hsd.is_some_and(|p| p < ALPHA);
            let hsd_higher = hsd_metric.mean > rival_metric.mean;
            ahead_of_all &= hsd_higher && significant;
            behind_any |= !hsd_higher && significant;
            rival_cells.push(format!(
                "{:.2} at skip {:.2} (p {})",
                rival_metric.corpus / vanilla.corpus,
                row.skip_ratio,
                rival_metric
                    .p_vs_hsd
                    .map_or_else(|| "–".to_owned(), |p| format!("{p:.3}"))
            ));
        }
        let ahead = match (ahead_of_all, behind_any, skips_less) {
            (true, _, false) => "yes",
            (true, _, true) => "yes, but HSD skips less",
            (false, true, _) => "no",
            (false, false, _) => "not significant",
        };
        lines.push(format!(
            "| {model} | {dataset} | {} | {:.2} | {:.3} | {share:.2} [{lo:.2}, {hi:.2}] | {half} | {} | {ahead} |",
            metric_name(metric),
            hsd.target_skip_ratio.unwrap_or_default(),
            hsd.skip_ratio,
            rival_cells.join(" | "),
        ));
    }
    if lines.is_empty() {
        return None;
    }
    let mut out = format!(
        "The claim, per model and dataset: HSD at the target nearest {HALF} keeps about {:.0}% \
         of vanilla's score (yes when the 95% interval lies above it, no when below), and is \
         ahead of SkipDecode and CALM at the same target (yes when its per-example mean is \
         higher than both with paired bootstrap p < {ALPHA}, no when either is significantly \
         higher). Kept = corpus score over vanilla's; the interval is the per-example mean's, \
         re-centred on the corpus score, over vanilla's corpus score. A verdict is qualified \
         when HSD's measured skip ratio lies more than {SKIP_TOLERANCE} from {HALF} (\"but at \
         skip\") or more than {SKIP_TOLERANCE} below a rival's (\"but HSD skips less\"), as \
         when a model stops early under skipping.\n\n\
         | model | dataset | metric | HSD target | HSD skip | HSD kept [95% CI] | ~90% at ~half? | SkipDecode kept (p vs HSD) | CALM kept (p vs HSD) | HSD ahead? |\n\
         |---|---|---|---:|---:|---:|---|---:|---:|---|\n",
        KEPT * 100.0
    );
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    Some(out)
}

/// Task quality kept (% of the same model's vanilla score) against measured wall-clock
/// speed-up over vanilla decoding, one panel per dataset, one line per (model, strategy label)
/// with vanilla as the point (1x, 100%). A label has one colour in every panel and a model one
/// stroke, so arms compare along a line style; one 90% line serves every arm.
pub fn frontier_panels(rows: &[SummaryRow]) -> Vec<LineChart> {
    let mut datasets: Vec<&str> = Vec::new();
    let mut models: Vec<&str> = Vec::new();
    let mut labels: Vec<&str> = Vec::new();
    for row in rows {
        if !datasets.contains(&row.dataset.as_str()) {
            datasets.push(&row.dataset);
        }
        if !models.contains(&row.model.as_str()) {
            models.push(&row.model);
        }
        if row.strategy != "full"
            && row.strategy != "oracle"
            && !labels.contains(&row.label.as_str())
        {
            labels.push(&row.label);
        }
    }
    let mut panels = Vec::new();
    for dataset in datasets {
        let members: Vec<&SummaryRow> = rows.iter().filter(|r| r.dataset == dataset).collect();
        let Some(metric) = primary_metric(&members) else {
            continue;
        };
        let mut series: Vec<Series> = Vec::new();
        for (arm, model) in models.iter().enumerate() {
            let group: Vec<&SummaryRow> = members
                .iter()
                .copied()
                .filter(|r| r.model == *model)
                .collect();
            let Some(vanilla) = group
                .iter()
                .find(|r| r.strategy == "full")
                .and_then(|r| r.metrics.get(metric).map(|m| m.corpus))
                .filter(|v| *v != 0.0)
            else {
                continue;
            };
            for (color, label) in labels.iter().enumerate() {
                let mut points: Vec<Point> = group
                    .iter()
                    .filter(|r| r.label == *label)
                    .filter_map(|r| {
                        let score = r.metrics.get(metric)?.corpus;
                        Some(Point::new(r.speedup?, 100.0 * score / vanilla))
                    })
                    .collect();
                if points.is_empty() {
                    continue;
                }
                points.push(Point::new(1.0, 100.0));
                points.sort_by(|a, b| a.x.total_cmp(&b.x));
                let name = if models.len() > 1 {
                    format!("{model} {label}")
                } else {
                    (*label).to_owned()
                };
                series.push(
                    Series::measured(name, points)
                        .with_color(color)
                        .with_stroke(Stroke::nth(arm)),
                );
            }
        }
        if series.is_empty() {
            continue;
        }
        panels.push(LineChart {
            title: format!("{dataset}: quality kept against speed-up"),
            x_label: "measured decode speed-up over vanilla".into(),
            y_label: format!("{} kept (% of vanilla)", metric_name(metric)),
            series,
            ref_lines: vec![RefLine {
                y: KEPT * 100.0,
                label: "90% of vanilla".into(),
            }],
            x_range: None,
            y_range: None,
        });
    }
    panels
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The synthetic folder's E2E row of a verdict table.
    fn e2e_row(table: &str) -> &str {
        table
            .lines()
            .find(|l| l.starts_with("| m | e2e | BLEU |"))
            .unwrap()
    }

    #[test]
    fn the_claim_is_judged_from_intervals_and_paired_tests() {
        let dir = tempfile::tempdir().unwrap();
        let mut rows = crate::report::tests::synthetic_results(dir.path());
        // The synthetic HSD keeps 81% at 0.4 and 57% at 0.6 (intervals below 90%), SkipDecode
        // less with p = 0.01 against HSD; give the folder a CALM that is not significantly apart.
        let mut calm: Vec<SummaryRow> = rows
            .iter()
            .filter(|r| r.strategy == "skipdecode")
            .cloned()
            .collect();
        for row in &mut calm {
            row.strategy = "calm".into();
            row.label = "calm".into();
            for m in row.metrics.values_mut() {
                m.p_vs_hsd = Some(0.5);
            }
        }
        rows.extend(calm);
        let table = markdown_table(&rows).unwrap();
        assert_eq!(table.matches("\n| m |").count(), 2, "{table}");
        let e2e = e2e_row(&table);
        assert!(e2e.contains("| no |"), "{e2e}");
        assert!(e2e.ends_with("| not significant |"), "{e2e}");
        assert!(
            e2e.contains("(p 0.010)") && e2e.contains("(p 0.500)"),
            "{e2e}"
        );
        assert!(markdown_table(&[]).is_none());

        // HSD that stops early: far from half, and below the rivals' measured ratios.
        for row in rows.iter_mut().filter(|r| r.label == "hsd") {
            row.skip_ratio = 0.12;
            for m in row.metrics.values_mut() {
                m.mean += 100.0;
            }
        }
        for row in rows.iter_mut().filter(|r| r.label == "calm") {
            for m in row.metrics.values_mut() {
                m.p_vs_hsd = Some(0.01);
            }
        }
        let table = markdown_table(&rows).unwrap();
        let e2e = e2e_row(&table);
        assert!(e2e.contains("| no, but at skip 0.12 |"), "{e2e}");
        assert!(e2e.ends_with("| yes, but HSD skips less |"), "{e2e}");
    }

    #[test]
    fn the_frontier_has_a_panel_per_dataset_with_vanilla_at_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut rows = crate::report::tests::synthetic_results(dir.path());
        for row in &mut rows {
            row.speedup = Some(1.0 / (1.0 - 0.8 * row.skip_ratio));
        }
        let panels = frontier_panels(&rows);
        assert_eq!(panels.len(), 2);
        let first = &panels[0].series[0];
        assert_eq!((first.points[0].x, first.points[0].y), (1.0, 100.0));
        assert_eq!(first.points.len(), 4);
        assert!(first.points.iter().all(|p| p.y <= 100.0));
        assert_eq!(panels[0].ref_lines[0].y, 90.0);
        // A second arm: the same labels in the same colours, on another stroke.
        let arm: Vec<SummaryRow> = rows
            .iter()
            .cloned()
            .map(|mut row| {
                row.model = format!("{}-tuned", row.model);
                row
            })
            .collect();
        rows.extend(arm);
        let panels = frontier_panels(&rows);
        let series = &panels[0].series;
        let half = series.len() / 2;
        for (a, b) in series[..half].iter().zip(&series[half..]) {
            assert_eq!(a.color, b.color, "{} / {}", a.label, b.label);
            assert_ne!(a.stroke, b.stroke, "{} / {}", a.label, b.label);
        }
    }
}
