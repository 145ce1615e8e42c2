//! Figures from a speed-benchmark folder (`bench/run.sh` output: `hsd.json`, `hsd-native.json`,
//! `hf.json`, `llamacpp.json` and `hsd-skip*.json`, one JSON object per batch size and line, as
//! `hsd bench --json`, `bench/hf_generate.py` and `bench/llamacpp_generate.py` print them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hsd_plot::{LineChart, Point, Series};
use serde::Deserialize;

/// The fields of one benchmark line the figures use; the others are ignored.
#[derive(Clone, Debug, Deserialize)]
struct BenchLine {
    engine: String,
    backend: String,
    /// `native` for hsd reading the GGUF's blocks; absent for `f32` and for the peers.
    weights: Option<String>,
    batch: usize,
    prefill_tok_s: f64,
    decode_tok_s: f64,
    strategy: Option<String>,
    skip_ratio: Option<f64>,
    flops_speedup: Option<f64>,
    amdahl_speedup: Option<f64>,
    speedup: Option<f64>,
}

/// Whether `dir` holds a speed benchmark rather than a manifest's results.
pub fn is_bench_folder(dir: &Path) -> bool {
    dir.join("hsd.json").is_file()
}

fn read_lines(path: &Path) -> anyhow::Result<Vec<BenchLine>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a benchmark line", path.display(), i + 1))
        })
        .collect()
}

/// Renders `speed_throughput` (hsd and the peer, tokens/s against batch size) and, when the
/// folder has strategy runs, `speed_skip` (wall-clock speed-up against the measured skip
/// ratio, beside the FLOP prediction and the Amdahl bound) into `paper_dir/figures`.
pub fn render(bench_dir: &Path, paper_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let hsd = read_lines(&bench_dir.join("hsd.json"))?;
    anyhow::ensure!(
        !hsd.is_empty(),
        "{}: no benchmark lines",
        bench_dir.join("hsd.json").display()
    );
    // The other engines, each where the run made it.
    let mut engines = vec![hsd];
    for name in ["hsd-native.json", "hf.json", "llamacpp.json"] {
        let path = bench_dir.join(name);
        if path.is_file() {
            engines.push(read_lines(&path)?);
        }
    }
    let mut skip_paths: Vec<PathBuf> = std::fs::read_dir(bench_dir)
        .with_context(|| format!("listing {}", bench_dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("hsd-skip") && n.ends_with(".json"))
        })
        .collect();
    skip_paths.sort();
    let mut skips = Vec::new();
    for path in &skip_paths {
        skips.extend(read_lines(path)?);
    }

    let figures_dir = paper_dir.join("figures");
    std::fs::create_dir_all(&figures_dir)
        .with_context(|| format!("creating {}", figures_dir.display()))?;
    let mut written = Vec::new();
    let mut figures = vec![("speed_throughput", throughput_panels(&engines))];
    let skip = skip_panels(&skips);
    if !skip.is_empty() {
        figures.push(("speed_skip", skip));
    }
    for (name, panels) in figures {
        for extension in ["png", "svg"] {
            let path = figures_dir.join(format!("{name}.{extension}"));
            hsd_plot::render_panels(&panels, panels.len().min(3), &path)?;
            written.push(path);
        }
    }
    Ok(written)
}

fn engine_label(line: &BenchLine) -> String {
    match line.engine.as_str() {
        "hsd" => match &line.weights {
            Some(weights) => format!("hsd ({}, {weights} weights)", line.backend),
            None => format!("hsd ({})", line.backend),
        },
        "hf" => format!("HF transformers ({})", line.backend),
        other => format!("{other} ({})", line.backend),
    }
}

/// Decode and prefill tokens/s against batch size, one line per engine.
fn throughput_panels(engines: &[Vec<BenchLine>]) -> Vec<LineChart> {
    let series = |value: fn(&BenchLine) -> f64| -> Vec<Series> {
        engines
            .iter()
            .filter(|lines| !lines.is_empty())
            .map(|lines| {
                let mut points: Vec<Point> = lines
                    .iter()
                    .map(|l| Point::new(l.batch as f64, value(l)))
                    .collect();
                points.sort_by(|a, b| a.x.total_cmp(&b.x));
                Series::measured(engine_label(&lines[0]), points)
            })
            .collect()
    };
    let panel = |title: &str, value: fn(&BenchLine) -> f64| {
        let series = series(value);
        let top = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.y))
            .fold(0.0, f64::max);
        LineChart {
            title: title.into(),
            x_label: "batch size".into(),
            y_label: "tokens/s (all rows)".into(),
            series,
            y_range: Some((0.0, top * 1.15)),
            ..LineChart::default()
        }
    };
    vec![
        panel("decode throughput", |l| l.decode_tok_s),
        panel("prefill throughput", |l| l.prefill_tok_s),
    ]
}

/// Per batch size: the measured wall-clock speed-up of each strategy against its measured skip
/// ratio, with the FLOP-predicted speed-up and the Amdahl bound at the same points; full
/// decoding is the point (0, 1) of every line.
fn skip_panels(skips: &[BenchLine]) -> Vec<LineChart> {
    let mut by_batch: BTreeMap<usize, Vec<&BenchLine>> = BTreeMap::new();
    for line in skips.iter().filter(|l| l.skip_ratio.is_some()) {
        by_batch.entry(line.batch).or_default().push(line);
    }
    by_batch
        .into_iter()
        .map(|(batch, mut lines)| {
            lines.sort_by(|a, b| {
                a.skip_ratio
                    .unwrap_or(0.0)
                    .total_cmp(&b.skip_ratio.unwrap_or(0.0))
            });
            let strategy = lines[0].strategy.clone().unwrap_or_default();
            let line = |value: fn(&BenchLine) -> Option<f64>| -> Vec<Point> {
                std::iter::once(Point::new(0.0, 1.0))
                    .chain(
                        lines
                            .iter()
                            .filter_map(|l| Some(Point::new(l.skip_ratio?, value(l)?))),
                    )
                    .collect()
            };
            LineChart {
                title: format!("{strategy} decode speed-up, batch {batch}"),
                x_label: "measured skip ratio".into(),
                y_label: "speed-up over full decoding".into(),
                series: vec![
                    Series::measured("wall clock", line(|l| l.speedup)),
                    Series::measured("FLOP prediction 1/FLOPs ratio", line(|l| l.flops_speedup)),
                    Series::reference("Amdahl bound (LM head kept)", line(|l| l.amdahl_speedup)),
                ],
                ..LineChart::default()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HSD: &str = r#"{"engine":"hsd","model":"m","backend":"flex","threads":2,"batch":1,"prefill_tok_s":390.0,"decode_tok_s":45.0,"peak_rss_mb":700.0}
{"engine":"hsd","model":"m","backend":"flex","threads":2,"batch":8,"prefill_tok_s":400.0,"decode_tok_s":140.0,"peak_rss_mb":900.0}
"#;
    const HF: &str = r#"{"engine":"hf","model":"m","backend":"torch","threads":2,"batch":1,"prefill_tok_s":630.0,"decode_tok_s":21.0,"peak_rss_mb":1400.0}
"#;
    const SKIP: &str = r#"{"engine":"hsd","backend":"flex","batch":1,"prefill_tok_s":390.0,"decode_tok_s":60.0,"strategy":"hsd","skip_ratio":0.25,"flops_speedup":1.24,"amdahl_speedup":1.26,"speedup":1.2}
"#;

    #[test]
    fn a_bench_folder_renders_both_figures() {
        let dir = tempfile::tempdir().unwrap();
        let bench = dir.path().join("speed");
        std::fs::create_dir_all(&bench).unwrap();
        std::fs::write(bench.join("hsd.json"), HSD).unwrap();
        std::fs::write(bench.join("hf.json"), HF).unwrap();
        std::fs::write(bench.join("hsd-skip25.json"), SKIP).unwrap();
        assert!(is_bench_folder(&bench));
        let written = render(&bench, &dir.path().join("paper")).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "speed_throughput.png",
                "speed_throughput.svg",
                "speed_skip.png",
                "speed_skip.svg"
            ]
        );
        assert!(written.iter().all(|p| p.metadata().unwrap().len() > 1000));
        let panels = skip_panels(&read_lines(&bench.join("hsd-skip25.json")).unwrap());
        assert_eq!(panels.len(), 1);
        let wall = &panels[0].series[0].points;
        assert_eq!(wall, &[Point::new(0.0, 1.0), Point::new(0.25, 1.2)]);
    }

    #[test]
    fn a_malformed_line_is_reported_with_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hsd.json"),
            format!("{HSD}{{\"batch\": 2}}\n"),
        )
        .unwrap();
        let err = render(dir.path(), &dir.path().join("paper")).unwrap_err();
        assert!(format!("{err:#}").contains("hsd.json:3"), "{err:#}");
    }

    #[test]
    fn every_engine_the_run_made_gets_a_line_named_for_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hsd.json"), HSD).unwrap();
        let native = HSD.replace(r#""flex","#, r#""flex","weights":"native","#);
        std::fs::write(dir.path().join("hsd-native.json"), native).unwrap();
        std::fs::write(
            dir.path().join("llamacpp.json"),
            r#"{"engine":"llama.cpp","backend":"llama-cpp-python 0.3.16","batch":1,"prefill_tok_s":900.0,"decode_tok_s":140.0}"#,
        )
        .unwrap();
        let engines: Vec<Vec<BenchLine>> = ["hsd.json", "hsd-native.json", "llamacpp.json"]
            .iter()
            .map(|name| read_lines(&dir.path().join(name)).unwrap())
            .collect();
        let labels: Vec<String> = throughput_panels(&engines)[0]
            .series
            .iter()
            .map(|s| s.label.clone())
            .collect();
        assert_eq!(
            labels,
            [
                "hsd (flex)",
                "hsd (flex, native weights)",
                "llama.cpp (llama-cpp-python 0.3.16)"
            ]
        );
        let written = render(dir.path(), &dir.path().join("paper")).unwrap();
        assert_eq!(
            written.len(),
            2,
            "no strategy runs, so no speed_skip figure"
        );
    }
}
