//! Tables and figures from a results folder alone: `summary.parquet` for the numbers,
//! `records.jsonl` for the layer-usage heat maps. No model, data or metric is touched.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hsd_plot::{HeatMap, LineChart, Point, RefLine, Series};

use crate::report_rows::{
    METRIC_NAMES, groups, lines_by_label, metric_name, primary_metric, target,
};
use crate::results::{Record, SummaryRow, read_parquet, recover, write_atomic};

/// What `hsd report` wrote.
#[derive(Debug, Default)]
pub struct Written {
    pub tables: Vec<PathBuf>,
    pub figures: Vec<PathBuf>,
}

/// Renders every table and figure for the results in `results_dir` (one manifest's folder)
/// into `paper_dir/tables` and `paper_dir/figures`, file names prefixed with `name`.
pub fn render(results_dir: &Path, paper_dir: &Path, name: &str) -> anyhow::Result<Written> {
    let all_rows = read_parquet(&results_dir.join("summary.parquet"))?;
    anyhow::ensure!(
        !all_rows.is_empty(),
        "{}: the summary has no rows",
        results_dir.join("summary.parquet").display()
    );
    // Lossless runs decode vanilla's tokens, and one-layer drops have no skip-ratio axis:
    // each gets its own table and figure.
    let (speculative, rows): (Vec<SummaryRow>, Vec<SummaryRow>) = all_rows
        .into_iter()
        .partition(crate::speculative_report::is_speculative);
    let (drops, rows): (Vec<SummaryRow>, Vec<SummaryRow>) = rows
        .into_iter()
        .partition(crate::importance_report::is_drop);
    let records: Vec<Record> = recover(&results_dir.join("records.jsonl"))?;
    let tables_dir = paper_dir.join("tables");
    let figures_dir = paper_dir.join("figures");
    for dir in [&tables_dir, &figures_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut written = Written::default();
    let md = tables_dir.join(format!("{name}.md"));
    write_atomic(&md, markdown_table(&rows).as_bytes())?;
    let tex = tables_dir.join(format!("{name}.tex"));
    write_atomic(&tex, latex_table(&rows).as_bytes())?;
    written.tables = vec![md, tex];
    if let Some(table) = crate::faithfulness_report::markdown_table(&rows) {
        let path = tables_dir.join(format!("{name}_faithfulness.md"));
        write_atomic(&path, table.as_bytes())?;
        written.tables.push(path);
    }
    if let Some(table) = crate::verdict_report::markdown_table(&rows) {
        let path = tables_dir.join(format!("{name}_verdict.md"));
        write_atomic(&path, table.as_bytes())?;
        written.tables.push(path);
    }
    if let Some(table) = crate::importance_report::markdown_table(&drops, &rows) {
        let path = tables_dir.join(format!("{name}_layer_importance.md"));
        write_atomic(&path, table.as_bytes())?;
        written.tables.push(path);
    }
    if !speculative.is_empty() {
        let path = tables_dir.join(format!("{name}_speculative.md"));
        write_atomic(
            &path,
            crate::speculative_report::markdown_table(&speculative).as_bytes(),
        )?;
        written.tables.push(path);
        let panels = crate::speculative_report::panels(&speculative);
        for extension in ["png", "svg"] {
            let path = figures_dir.join(format!("{name}_speculative.{extension}"));
            hsd_plot::render_panels(&panels, 2, &path)?;
            written.figures.push(path);
        }
    }

    let figures: [(&str, Vec<LineChart>); 5] = [
        ("quality", quality_panels(&rows, false)),
        ("retained", quality_panels(&rows, true)),
        ("speed", speed_panels(&rows)),
        ("frontier", crate::verdict_report::frontier_panels(&rows)),
        (
            "layer_importance",
            crate::importance_report::panels(&drops, &rows),
        ),
    ];
    for (kind, panels) in figures {
        if panels.is_empty() {
            continue;
        }
        let columns = panels.len().min(3);
        for extension in ["png", "svg"] {
            let path = figures_dir.join(format!("{name}_{kind}.{extension}"));
            hsd_plot::render_panels(&panels, columns, &path)?;
            written.figures.push(path);
        }
    }
    if let Some(table) = crate::oracle_report::markdown_table(&rows, &records) {
        let path = tables_dir.join(format!("{name}_oracle.md"));
        write_atomic(&path, table.as_bytes())?;
        written.tables.push(path);
    }
    let oracle = crate::oracle_report::panels(&rows, &records);
    if !oracle.is_empty() {
        for extension in ["png", "svg"] {
            let path = figures_dir.join(format!("{name}_oracle.{extension}"));
            hsd_plot::render_panels(&oracle, oracle.len().min(3), &path)?;
            written.figures.push(path);
        }
    }
    for (dataset, maps) in heat_maps(&rows, &records) {
        for extension in ["png", "svg"] {
            let path = figures_dir.join(format!("{name}_layers_{dataset}.{extension}"));
            hsd_plot::render_heat_map(&maps, &path)?;
            written.figures.push(path);
        }
    }
    Ok(written)
}

fn metric_keys(rows: &[&SummaryRow]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for (key, _) in METRIC_NAMES {
        if rows.iter().any(|r| r.metrics.contains_key(key)) && !keys.iter().any(|k| k == key) {
            keys.push(key.to_owned());
        }
    }
    for row in rows {
        for key in row.metrics.keys() {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
    }
    keys
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

/// One Markdown table per (model, dataset): every run, each metric's corpus score with its
/// interval ([`crate::results::MetricSummary::corpus_interval`]).
pub fn markdown_table(rows: &[SummaryRow]) -> String {
    let mut out = String::new();
    for ((model, dataset), members) in groups(rows) {
        let keys = metric_keys(&members);
        let primary = primary_metric(&members);
        let _ = writeln!(
            out,
            "### {dataset} ({model}, {} examples)\n",
            members[0].examples
        );
        let mut header = String::from("| strategy | target | skip | FLOPs | speed-up |");
        let mut rule = String::from("|---|---:|---:|---:|---:|");
        for key in &keys {
            let _ = write!(header, " {} |", metric_name(key));
            rule.push_str("---:|");
        }
        if let Some(p) = primary {
            let _ = write!(header, " retained {} | p vs HSD |", metric_name(p));
            rule.push_str("---:|---:|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        for row in &members {
            let _ = write!(
                out,
                "| {} | {} | {:.3} | {:.3} | {} |",
                row.label,
                target(row),
                row.skip_ratio,
                row.flops_ratio,
                fmt_opt(row.speedup, 2)
            );
            for key in &keys {
                match row.metrics.get(key) {
                    Some(m) => {
                        let (lo, hi) = m.corpus_interval();
                        let _ = write!(out, " {:.2} [{lo:.2}, {hi:.2}] |", m.corpus);
                    }
                    None => out.push_str(" – |"),
                }
            }
            if let Some(p) = primary {
                let m = row.metrics.get(p);
                let _ = write!(
                    out,
                    " {} | {} |",
                    fmt_opt(m.and_then(|m| m.retained).map(|r| 100.0 * r), 1),
                    fmt_opt(m.and_then(|m| m.p_vs_hsd), 3)
                );
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

fn latex_escape(text: &str) -> String {
    text.replace('\\', r"\textbackslash{}")
        .replace('_', r"\_")
        .replace('%', r"\%")
        .replace('&', r"\&")
        .replace('#', r"\#")
}

/// The same tables as LaTeX `booktabs` tabulars.
pub fn latex_table(rows: &[SummaryRow]) -> String {
    let mut out = String::from("% Generated by `hsd report`; needs \\usepackage{booktabs}.\n");
    for ((model, dataset), members) in groups(rows) {
        let keys = metric_keys(&members);
        let primary = primary_metric(&members);
        let extra = usize::from(primary.is_some());
        let _ = writeln!(out, "\\begin{{table}}[t]\n\\centering\\small");
        let _ = writeln!(
            out,
            "\\caption{{{} ({}, {} examples): corpus scores with 95\\% bootstrap intervals.}}",
            latex_escape(&dataset),
            latex_escape(&model),
            members[0].examples
        );
        let _ = writeln!(
            out,
            "\\begin{{tabular}}{{l{}}}\n\\toprule",
            "r".repeat(4 + keys.len() + extra)
        );
        let mut header = String::from("strategy & target & skip & FLOPs & speed-up");
        for key in &keys {
            let _ = write!(header, " & {}", metric_name(key));
        }
        if let Some(p) = primary {
            let _ = write!(header, " & ret.\\ {} (\\%)", metric_name(p));
        }
        let _ = writeln!(out, "{header} \\\\\n\\midrule");
        for row in &members {
            let _ = write!(
                out,
                "{} & {} & {:.3} & {:.3} & {}",
                latex_escape(&row.label),
                target(row),
                row.skip_ratio,
                row.flops_ratio,
                fmt_opt(row.speedup, 2)
            );
            for key in &keys {
                match row.metrics.get(key) {
                    Some(m) => {
                        let (lo, hi) = m.corpus_interval();
                        let _ = write!(out, " & {:.2} \\tiny[{lo:.2}, {hi:.2}]", m.corpus);
                    }
                    None => out.push_str(" & --"),
                }
            }
            if let Some(p) = primary {
                let _ = write!(
                    out,
                    " & {}",
                    fmt_opt(
                        row.metrics
                            .get(p)
                            .and_then(|m| m.retained)
                            .map(|r| 100.0 * r),
                        1
                    )
                );
            }
            out.push_str(" \\\\\n");
        }
        let _ = writeln!(out, "\\bottomrule\n\\end{{tabular}}\n\\end{{table}}\n");
    }
    out
}

/// Quality (or quality retained, %) against measured skip ratio, one panel per dataset.
/// Bands are the per-example-mean intervals, re-centred on the corpus score.
fn quality_panels(rows: &[SummaryRow], retained: bool) -> Vec<LineChart> {
    let mut panels = Vec::new();
    for ((model, dataset), members) in groups(rows) {
        let Some(metric) = primary_metric(&members) else {
            continue;
        };
        let vanilla = members
            .iter()
            .find(|r| r.strategy == "full")
            .and_then(|r| r.metrics.get(metric));
        let scale = match (retained, vanilla) {
            (false, _) => 1.0,
            (true, Some(v)) if v.corpus != 0.0 => 100.0 / v.corpus,
            (true, _) => continue,
        };
        let series: Vec<Series> = lines_by_label(&members)
            .into_iter()
            .map(|(label, runs)| {
                let points = runs
                    .iter()
                    .filter_map(|r| {
                        let m = r.metrics.get(metric)?;
                        let (lo, hi) = m.corpus_interval();
                        Some(Point::with_band(
                            r.skip_ratio,
                            m.corpus * scale,
                            lo * scale,
                            hi * scale,
                        ))
                    })
                    .collect();
                Series::measured(label, points)
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        if series.is_empty() {
            continue;
        }
        let ref_lines = match (retained, vanilla) {
            (true, _) => vec![RefLine {
                y: 90.0,
                label: "90% of vanilla".into(),
            }],
            (false, Some(v)) => vec![RefLine {
                y: v.corpus,
                label: "vanilla".into(),
            }],
            (false, None) => Vec::new(),
        };
        panels.push(LineChart {
            title: format!("{dataset} ({model})"),
            x_label: "measured skip ratio".into(),
            y_label: if retained {
                format!("{} retained (%)", metric_name(metric))
            } else {
                metric_name(metric).to_owned()
            },
            series,
            ref_lines,
            x_range: Some((0.0, 0.7)),
            y_range: None,
        });
    }
    panels
}

/// Wall-clock speed-up and FLOPs ratio against measured skip ratio, pooled over datasets per
/// model, with the Amdahl bound 1 / (1 - s) (all time in the skipped layers) and the ideal
/// FLOPs line 1 - s.
fn speed_panels(rows: &[SummaryRow]) -> Vec<LineChart> {
    let bound = |f: fn(f64) -> f64| {
        (0..=12)
            .map(|i| f64::from(i) * 0.05)
            .map(|s| Point::new(s, f(s)))
            .collect::<Vec<_>>()
    };
    let mut panels = Vec::new();
    let mut models: Vec<&str> = rows.iter().map(|r| r.model.as_str()).collect();
    models.dedup();
    for model in models {
        let members: Vec<&SummaryRow> = rows.iter().filter(|r| r.model == model).collect();
        let lines = lines_by_label(&members);
        let series_of = |value: fn(&SummaryRow) -> Option<f64>| -> Vec<Series> {
            lines
                .iter()
                .map(|(label, runs)| {
                    let mut points: Vec<Point> = runs
                        .iter()
                        .filter_map(|r| value(r).map(|v| Point::new(r.skip_ratio, v)))
                        .collect();
                    points.sort_by(|a, b| a.x.total_cmp(&b.x));
                    Series::measured(label.clone(), points)
                })
                .filter(|s| !s.points.is_empty())
                .collect()
        };
        let mut speed = series_of(|r| r.speedup);
        if !speed.is_empty() {
            speed.push(Series::reference(
                "Amdahl bound 1/(1-s)",
                bound(|s| 1.0 / (1.0 - s)),
            ));
            panels.push(LineChart {
                title: format!("wall-clock speed-up ({model})"),
                x_label: "measured skip ratio".into(),
                y_label: "speed-up over vanilla".into(),
                series: speed,
                ref_lines: Vec::new(),
                x_range: Some((0.0, 0.62)),
                y_range: Some((0.5, 2.8)),
            });
        }
        let mut flops = series_of(|r| Some(r.flops_ratio));
        flops.push(Series::reference("ideal 1-s", bound(|s| 1.0 - s)));
        panels.push(LineChart {
            title: format!("FLOPs ratio ({model})"),
            x_label: "measured skip ratio".into(),
            y_label: "FLOPs / vanilla FLOPs".into(),
            series: flops,
            ref_lines: Vec::new(),
            x_range: Some((0.0, 0.62)),
            y_range: Some((0.3, 1.05)),
        });
    }
    panels
}

/// Per dataset, one heat map per strategy (at its median target): the fraction of examples
/// that ran layer l at generated position t, among those that reached t.
fn heat_maps(rows: &[SummaryRow], records: &[Record]) -> BTreeMap<String, Vec<HeatMap>> {
    let mut by_run: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for record in records {
        by_run.entry(record.run.as_str()).or_default().push(record);
    }
    let mut out: BTreeMap<String, Vec<HeatMap>> = BTreeMap::new();
    for ((model, dataset), members) in groups(rows) {
        for (label, mut runs) in lines_by_label(&members) {
            runs.sort_by(|a, b| {
                a.target_skip_ratio
                    .unwrap_or(0.0)
                    .total_cmp(&b.target_skip_ratio.unwrap_or(0.0))
            });
            let run = runs[runs.len() / 2];
            let Some(recs) = by_run.get(run.run.as_str()) else {
                continue;
            };
            let positions = recs.iter().map(|r| r.layers.len()).max().unwrap_or(0);
            let layers = recs
                .iter()
                .flat_map(|r| r.layers.first())
                .map(String::len)
                .max()
                .unwrap_or(0);
            if positions == 0 || layers == 0 {
                continue;
            }
            let mut ran = vec![vec![0usize; positions]; layers];
            let mut reached = vec![0usize; positions];
            for record in recs {
                for (t, plan) in record.layers.iter().enumerate() {
                    reached[t] += 1;
                    for (l, c) in plan.bytes().enumerate().take(layers) {
                        ran[l][t] += usize::from(c == b'1');
                    }
                }
            }
            let values = ran
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(&reached)
                        .map(|(&r, &n)| if n == 0 { 0.0 } else { r as f64 / n as f64 })
                        .collect()
                })
                .collect();
            out.entry(dataset.clone()).or_default().push(HeatMap {
                title: format!("{label} @ {} ({model})", target(run)),
                x_label: "generated position".into(),
                y_label: "layer".into(),
                colorbar_label: "fraction of tokens running the layer".into(),
                values,
            });
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::results::{MetricSummary, write_summary};

    /// A synthetic results folder: two datasets, vanilla plus two strategies at three targets.
    pub(crate) fn synthetic_results(dir: &Path) -> Vec<SummaryRow> {
        let mut rows = Vec::new();
        let mut records = Vec::new();
        for (dataset, metric, base) in [("xsum", "rougeL", 30.0), ("e2e", "bleu", 60.0)] {
            for (strategy, targets, slope) in [
                ("full", vec![None], 0.0),
                ("hsd", vec![Some(0.2), Some(0.4), Some(0.6)], 12.0),
                ("skipdecode", vec![Some(0.2), Some(0.4), Some(0.6)], 30.0),
            ] {
                for t in targets {
                    let s = t.unwrap_or(0.0);
                    let value = base - slope * s * s * base / 10.0;
                    let run = format!(
                        "m/{dataset}/{strategy}{}",
                        t.map(|t| format!("@{t:.2}")).unwrap_or_default()
                    );
                    rows.push(SummaryRow {
                        run: run.clone(),
                        model: "m".into(),
                        dataset: dataset.into(),
                        strategy: strategy.into(),
                        label: strategy.into(),
                        target_skip_ratio: t,
                        examples: 2,
                        generated_tokens: 8,
                        skip_ratio: s,
                        mean_layers: 4.0 * (1.0 - s),
                        flops_ratio: 1.0 - 0.9 * s,
                        metrics: BTreeMap::from([(
                            metric.to_owned(),
                            MetricSummary {
                                corpus: value,
                                mean: value,
                                ci_lo: value - 2.0,
                                ci_hi: value + 2.0,
                                retained: Some(value / base),
                                p_vs_hsd: (strategy == "skipdecode").then_some(0.01),
                            },
                        )]),
                        acceptance_rate: None,
                        accepted_per_round: None,
                        faithfulness: Default::default(),
                        decode_seconds: Some(1.0 - 0.5 * s),
                        tokens_per_second: Some(8.0 / (1.0 - 0.5 * s)),
                        speedup: Some(1.0 / (1.0 - 0.5 * s)),
                    });
                    for example in ["a", "b"] {
                        records.push(Record {
                            run: run.clone(),
                            example: example.into(),
                            index: 0,
                            prompt_tokens: 5,
                            prediction: "x".into(),
                            references: vec!["x".into()],
                            tokens: vec![1, 2, 3, 4],
                            layers: (0..4)
                                .map(|p| {
                                    (0..4)
                                        .map(|l| {
                                            if strategy == "full" || (l + p) % 2 == 0 {
                                                '1'
                                            } else {
                                                '0'
                                            }
                                        })
                                        .collect()
                                })
                                .collect(),
                            skip_ratio: s,
                            flops: 1,
                            vanilla_flops: 1,
                            stop: "max_new_tokens".into(),
                            oracle_layers: None,
                            speculative: None,
                            teacher_forced: None,
                        });
                    }
                }
            }
        }
        write_summary(&rows, dir).unwrap();
        crate::results::Appender::open(&dir.join("records.jsonl"))
            .unwrap()
            .append(&records)
            .unwrap();
        rows
    }

    #[test]
    fn a_synthetic_results_folder_renders_tables_and_figures() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("results");
        std::fs::create_dir_all(&results).unwrap();
        synthetic_results(&results);
        let paper = dir.path().join("paper");
        let written = render(&results, &paper, "demo").unwrap();
        // The main table in Markdown and LaTeX, and the verdict on the claim.
        assert_eq!(written.tables.len(), 3);
        assert!(paper.join("tables/demo_verdict.md").exists());
        let names: Vec<String> = written
            .figures
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for expected in [
            "demo_quality.png",
            "demo_retained.svg",
            "demo_speed.png",
            "demo_layers_xsum.png",
            "demo_layers_e2e.svg",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} missing from {names:?}"
            );
        }
        let md = std::fs::read_to_string(paper.join("tables/demo.md")).unwrap();
        assert!(md.contains("### xsum (m, 2 examples)"), "{md}");
        assert!(
            md.contains("| hsd | 0.40 | 0.400 | 0.640 | 1.25 | 24.24 [22.24, 26.24] | 80.8 | – |"),
            "{md}"
        );
        assert!(md.contains("| skipdecode | 0.60 |"), "{md}");
        let tex = std::fs::read_to_string(paper.join("tables/demo.tex")).unwrap();
        assert!(
            tex.contains("\\toprule") && tex.contains("\\bottomrule") && tex.contains("ROUGE-L"),
            "{tex}"
        );
        let svg = std::fs::read_to_string(paper.join("figures/demo_retained.svg")).unwrap();
        assert!(svg.contains("90% of vanilla") && svg.contains("skipdecode"));
    }
}
