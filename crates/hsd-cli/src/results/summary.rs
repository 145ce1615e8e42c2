//! One row per run: corpus metric scores with seeded bootstrap intervals, quality retained
//! against vanilla decoding, measured skip and FLOPs ratios, wall-clock speed-up, and a
//! paired bootstrap test of every strategy against HSD at the same target.
//!
//! Intervals resample examples: for a metric, the statistic is the mean of the per-example
//! scores (for ROUGE, METEOR and chrF the corpus score is that mean; for BLEU and CIDEr-D the
//! corpus score is reported next to the per-example mean whose interval is given).
//! Faithfulness columns (`vanilla_agreement`, `first_divergence`, `repeated_4grams`,
//! `empty_share`, and the teacher-forced `forced_agreement` and `forced_kl`:
//! [`super::faithfulness`]) say what skipping did to the text beyond the metric.
//! Timing columns (`decode_seconds`, `tokens_per_second`, `speedup`) are the only ones that
//! differ between two runs of the same manifest, seed and backend.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use anyhow::{Context, bail};
use polars::prelude::{
    Column, CsvWriter, DataFrame, ParquetReader, ParquetWriter, SerReader, SerWriter,
};
use rand_xoshiro::SplitMix64;
use rand_xoshiro::rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::faithfulness::{Faithfulness, Output, faithfulness};

/// The columns that hold wall-clock measurements.
pub const TIMING_COLUMNS: [&str; 3] = ["decode_seconds", "tokens_per_second", "speedup"];

/// A metric's summary for one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// The corpus score the metric's reference implementation reports.
    pub corpus: f64,
    /// Mean of the per-example scores, and its 95% percentile bootstrap interval.
    pub mean: f64,
    pub ci_lo: f64,
    pub ci_hi: f64,
    /// `corpus / vanilla corpus` for the same model and dataset.
    pub retained: Option<f64>,
    /// Two-sided paired bootstrap p-value of this run's per-example mean against HSD's at the
    /// same model, dataset and target skip ratio.
    pub p_vs_hsd: Option<f64>,
}

impl MetricSummary {
    /// The 95% interval around the corpus score: the per-example mean's bootstrap interval,
    /// re-centred on the corpus score. For ROUGE and METEOR the two are equal; BLEU and CIDEr-D
    /// are corpus statistics, which the mean of sentence scores can lie far from.
    pub fn corpus_interval(&self) -> (f64, f64) {
        (
            self.corpus - (self.mean - self.ci_lo),
            self.corpus + (self.ci_hi - self.mean),
        )
    }
}

/// One summary row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub run: String,
    pub model: String,
    pub dataset: String,
    pub strategy: String,
    pub label: String,
    pub target_skip_ratio: Option<f64>,
    pub examples: usize,
    pub generated_tokens: usize,
    /// Skipped over all (token, layer) slots, pooled over examples.
    pub skip_ratio: f64,
    pub mean_layers: f64,
    pub flops_ratio: f64,
    pub metrics: BTreeMap<String, MetricSummary>,
    /// Lossless runs: the share of drafted tokens the full model accepted, and the accepted
    /// drafts per example and round.
    pub acceptance_rate: Option<f64>,
    pub accepted_per_round: Option<f64>,
    /// Agreement with the same model's vanilla output and degeneration, from the records.
    pub faithfulness: Faithfulness,
    pub decode_seconds: Option<f64>,
    pub tokens_per_second: Option<f64>,
    pub speedup: Option<f64>,
}

/// What the summary needs of one run: its identity, its records' accounting, and its
/// scores (per example, in the records' example order).
#[derive(Clone, Debug)]
pub struct RunResult {
    pub run: String,
    pub model: String,
    pub dataset: String,
    pub strategy: String,
    pub label: String,
    pub target_skip_ratio: Option<f64>,
    pub examples: Vec<String>,
    pub generated_tokens: usize,
    pub skipped_slots: usize,
    pub total_slots: usize,
    pub flops: u64,
    pub vanilla_flops: u64,
    /// Metric key -> (corpus score, per-example scores).
    pub scores: BTreeMap<String, (f64, Vec<f64>)>,
    /// Lossless runs: verify rounds, drafted and accepted tokens, summed over examples.
    pub speculation: Option<Speculation>,
    /// Each example's generated tokens, in the records' example order.
    pub outputs: Vec<Output>,
    pub decode_seconds: Option<f64>,
}

/// A lossless run's drafting, summed over its examples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Speculation {
    pub rounds: usize,
    pub drafted: usize,
    pub accepted: usize,
}

/// Builds the summary rows of `results`, bootstrapping with `resamples` draws from `seed`.
pub fn summarize(
    results: &[RunResult],
    resamples: usize,
    seed: u64,
) -> anyhow::Result<Vec<SummaryRow>> {
    let group = |r: &RunResult| (r.model.clone(), r.dataset.clone());
    let vanilla: BTreeMap<_, &RunResult> = results
        .iter()
        .filter(|r| r.strategy == "full" && r.speculation.is_none())
        .map(|r| (group(r), r))
        .collect();
    let hsd: BTreeMap<_, &RunResult> = results
        .iter()
        .filter(|r| r.strategy == "hsd" && r.label == "hsd" && r.speculation.is_none())
        .map(|r| {
            (
                (
                    r.model.clone(),
                    r.dataset.clone(),
                    r.target_skip_ratio.map(ratio_key),
                ),
                r,
            )
        })
        .collect();
    let mut rows = Vec::with_capacity(results.len());
    for (index, result) in results.iter().enumerate() {
        let base = vanilla.get(&group(result));
        let rival = hsd.get(&(
            result.model.clone(),
            result.dataset.clone(),
            result.target_skip_ratio.map(ratio_key),
        ));
        let mut metrics = BTreeMap::new();
        for (key, (corpus, per_example)) in &result.scores {
            if per_example.is_empty() {
                bail!("run {}: no per-example {key} scores", result.run);
            }
            let stream = seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ fnv1a(key);
            let (ci_lo, ci_hi) = bootstrap_ci(per_example, resamples, stream);
            let retained = base
                .and_then(|b| b.scores.get(key))
                .and_then(|(v, _)| (*v != 0.0).then(|| corpus / v));
            let p_vs_hsd = match rival {
                Some(h) if h.run != result.run => match h.scores.get(key) {
                    Some((_, theirs)) if h.examples == result.examples => {
                        Some(paired_bootstrap_p(per_example, theirs, resamples, stream))
                    }
                    _ => None,
                },
                _ => None,
            };
            metrics.insert(
                key.clone(),
                MetricSummary {
                    corpus: *corpus,
                    mean: mean(per_example),
                    ci_lo,
                    ci_hi,
                    retained,
                    p_vs_hsd,
                },
            );
        }
        let tokens_per_second = result
            .decode_seconds
            .filter(|s| *s > 0.0)
            .map(|s| result.generated_tokens as f64 / s);
        let base_speed = base.and_then(|b| {
            b.decode_seconds
                .filter(|s| *s > 0.0)
                .map(|s| b.generated_tokens as f64 / s)
        });
        rows.push(SummaryRow {
            run: result.run.clone(),
            model: result.model.clone(),
            dataset: result.dataset.clone(),
            strategy: result.strategy.clone(),
            label: result.label.clone(),
            target_skip_ratio: result.target_skip_ratio,
            examples: result.examples.len(),
            generated_tokens: result.generated_tokens,
            skip_ratio: ratio(result.skipped_slots as f64, result.total_slots as f64),
            mean_layers: ratio(
                (result.total_slots - result.skipped_slots) as f64,
                result.generated_tokens as f64,
            ),
            flops_ratio: ratio(result.flops as f64, result.vanilla_flops as f64),
            metrics,
            acceptance_rate: result
                .speculation
                .map(|s| ratio(s.accepted as f64, s.drafted as f64)),
            accepted_per_round: result
                .speculation
                .map(|s| ratio(s.accepted as f64, s.rounds as f64)),
            faithfulness: faithfulness(&result.outputs, base.map(|b| b.outputs.as_slice())),
            decode_seconds: result.decode_seconds,
            tokens_per_second,
            speedup: tokens_per_second.zip(base_speed).map(|(t, b)| t / b),
        });
    }
    Ok(rows)
}

fn ratio(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}

fn ratio_key(t: f64) -> i64 {
    (t * 1e6).round() as i64
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// FNV-1a, to give every metric its own bootstrap stream.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Uniform in `0..n` by Lemire's multiply-shift (bias below 2^-32 for n < 2^32), from
/// SplitMix64: tiny, seedable and identical on every platform.
fn below(rng: &mut SplitMix64, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// The 95% percentile bootstrap interval of the mean of `values`.
pub fn bootstrap_ci(values: &[f64], resamples: usize, seed: u64) -> (f64, f64) {
    if values.len() < 2 || resamples == 0 {
        let m = if values.is_empty() {
            f64::NAN
        } else {
            mean(values)
        };
        return (m, m);
    }
    let mut rng = SplitMix64::seed_from_u64(seed);
    let n = values.len();
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| values[below(&mut rng, n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    (quantile(&means, 0.025), quantile(&means, 0.975))
}

/// Two-sided paired bootstrap p-value for `mean(a) != mean(b)` over the same examples:
/// resample example indices, and count how often the resampled difference falls on either
/// side of zero (Koehn 2004; Berg-Kirkpatrick et al. 2012).
pub fn paired_bootstrap_p(a: &[f64], b: &[f64], resamples: usize, seed: u64) -> f64 {
    let n = a.len().min(b.len());
    if n == 0 || resamples == 0 {
        return 1.0;
    }
    let differences: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let mut rng = SplitMix64::seed_from_u64(seed ^ 0x5bd1_e995);
    let (mut at_or_below, mut at_or_above) = (0usize, 0usize);
    for _ in 0..resamples {
        let d = (0..n).map(|_| differences[below(&mut rng, n)]).sum::<f64>() / n as f64;
        at_or_below += usize::from(d <= 0.0);
        at_or_above += usize::from(d >= 0.0);
    }
    (2.0 * at_or_below.min(at_or_above) as f64 / resamples as f64).min(1.0)
}

/// Linear-interpolation quantile of sorted `values` (NumPy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let (lower, frac) = (position.floor() as usize, position.fract());
    match sorted.get(lower + 1) {
        Some(upper) => sorted[lower] + (upper - sorted[lower]) * frac,
        None => sorted[lower],
    }
}

/// The summary as a polars frame: fixed columns, then five per metric key
/// (`{m}`, `{m}_mean`, `{m}_ci_lo`, `{m}_ci_hi`, `{m}_retained`, `{m}_p_vs_hsd`), then timing.
pub fn to_frame(rows: &[SummaryRow]) -> anyhow::Result<DataFrame> {
    let keys: std::collections::BTreeSet<&String> =
        rows.iter().flat_map(|r| r.metrics.keys()).collect();
    let text = |name: &str, f: &dyn Fn(&SummaryRow) -> String| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<_>>())
    };
    let number = |name: &str, f: &dyn Fn(&SummaryRow) -> Option<f64>| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<_>>())
    };
    let count = |name: &str, f: &dyn Fn(&SummaryRow) -> u64| {
        Column::new(name.into(), rows.iter().map(f).collect::<Vec<_>>())
    };
    let mut columns = vec![
        text("run", &|r| r.run.clone()),
        text("model", &|r| r.model.clone()),
        text("dataset", &|r| r.dataset.clone()),
        text("strategy", &|r| r.strategy.clone()),
        text("label", &|r| r.label.clone()),
        number("target_skip_ratio", &|r| r.target_skip_ratio),
        count("examples", &|r| r.examples as u64),
        count("generated_tokens", &|r| r.generated_tokens as u64),
        number("skip_ratio", &|r| Some(r.skip_ratio)),
        number("mean_layers", &|r| Some(r.mean_layers)),
        number("flops_ratio", &|r| Some(r.flops_ratio)),
    ];
    for key in keys {
        let field = |suffix: &str, f: fn(&MetricSummary) -> Option<f64>| {
            let name = if suffix.is_empty() {
                key.clone()
            } else {
                format!("{key}_{suffix}")
            };
            number(&name, &|r| r.metrics.get(key).and_then(f))
        };
        columns.push(field("", |m| Some(m.corpus)));
        columns.push(field("mean", |m| Some(m.mean)));
        columns.push(field("ci_lo", |m| Some(m.ci_lo)));
        columns.push(field("ci_hi", |m| Some(m.ci_hi)));
        columns.push(field("retained", |m| m.retained));
        columns.push(field("p_vs_hsd", |m| m.p_vs_hsd));
    }
    columns.push(number("acceptance_rate", &|r| r.acceptance_rate));
    columns.push(number("accepted_per_round", &|r| r.accepted_per_round));
    for (at, (name, _)) in Faithfulness::default().columns().into_iter().enumerate() {
        columns.push(number(name, &|r| r.faithfulness.columns()[at].1));
    }
    let [decode, speed, speedup] = TIMING_COLUMNS;
    columns.push(number(decode, &|r| r.decode_seconds));
    columns.push(number(speed, &|r| r.tokens_per_second));
    columns.push(number(speedup, &|r| r.speedup));
    Ok(DataFrame::new_infer_height(columns)?)
}

/// Reads a `summary.parquet` back into rows.
pub fn read_parquet(path: &Path) -> anyhow::Result<Vec<SummaryRow>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let frame = ParquetReader::new(Cursor::new(bytes))
        .finish()
        .with_context(|| format!("parsing {}", path.display()))?;
    from_frame(&frame).with_context(|| format!("reading the summary in {}", path.display()))
}

fn from_frame(frame: &DataFrame) -> anyhow::Result<Vec<SummaryRow>> {
    let text = |name: &str| -> anyhow::Result<Vec<String>> {
        let column = frame
            .column(name)
            .with_context(|| format!("column {name}"))?;
        let values = column.str()?;
        Ok((0..values.len())
            .map(|i| values.get(i).unwrap_or_default().to_owned())
            .collect())
    };
    let number = |name: &str| -> anyhow::Result<Vec<Option<f64>>> {
        let column = frame
            .column(name)
            .with_context(|| format!("column {name}"))?;
        let values = column.f64()?;
        Ok((0..values.len()).map(|i| values.get(i)).collect())
    };
    let count = |name: &str| -> anyhow::Result<Vec<u64>> {
        let column = frame
            .column(name)
            .with_context(|| format!("column {name}"))?;
        let values = column.u64()?;
        Ok((0..values.len())
            .map(|i| values.get(i).unwrap_or_default())
            .collect())
    };
    let keys: Vec<String> = frame
        .get_column_names()
        .iter()
        .filter_map(|n| n.strip_suffix("_p_vs_hsd").map(str::to_owned))
        .collect();
    let (run, model, dataset, strategy, label) = (
        text("run")?,
        text("model")?,
        text("dataset")?,
        text("strategy")?,
        text("label")?,
    );
    let (target, examples, tokens) = (
        number("target_skip_ratio")?,
        count("examples")?,
        count("generated_tokens")?,
    );
    let (skip, layers, flops) = (
        number("skip_ratio")?,
        number("mean_layers")?,
        number("flops_ratio")?,
    );
    let [decode, speed, speedup] = TIMING_COLUMNS.map(number);
    let (decode, speed, speedup) = (decode?, speed?, speedup?);
    // Summaries written before lossless runs existed lack these columns.
    let optional = |name: &str| {
        if frame.column(name).is_ok() {
            number(name)
        } else {
            Ok(vec![None; frame.height()])
        }
    };
    let (acceptance, accepted_per_round) = (
        optional("acceptance_rate")?,
        optional("accepted_per_round")?,
    );
    let faithfulness_columns: Vec<Vec<Option<f64>>> = Faithfulness::default()
        .columns()
        .iter()
        .map(|(name, _)| optional(name))
        .collect::<anyhow::Result<_>>()?;
    let mut per_key = BTreeMap::new();
    for key in &keys {
        let fields: Vec<Vec<Option<f64>>> =
            ["", "_mean", "_ci_lo", "_ci_hi", "_retained", "_p_vs_hsd"]
                .iter()
                .map(|suffix| number(&format!("{key}{suffix}")))
                .collect::<anyhow::Result<_>>()?;
        per_key.insert(key.clone(), fields);
    }
    Ok((0..frame.height())
        .map(|i| SummaryRow {
            run: run[i].clone(),
            model: model[i].clone(),
            dataset: dataset[i].clone(),
            strategy: strategy[i].clone(),
            label: label[i].clone(),
            target_skip_ratio: target[i],
            examples: examples[i] as usize,
            generated_tokens: tokens[i] as usize,
            skip_ratio: skip[i].unwrap_or_default(),
            mean_layers: layers[i].unwrap_or_default(),
            flops_ratio: flops[i].unwrap_or_default(),
            metrics: per_key
                .iter()
                .filter_map(|(key, f)| {
                    Some((
                        key.clone(),
                        MetricSummary {
                            corpus: f[0][i]?,
                            mean: f[1][i]?,
                            ci_lo: f[2][i]?,
                            ci_hi: f[3][i]?,
                            retained: f[4][i],
                            p_vs_hsd: f[5][i],
                        },
                    ))
                })
                .collect(),
            acceptance_rate: acceptance[i],
            accepted_per_round: accepted_per_round[i],
            faithfulness: Faithfulness::from_columns(std::array::from_fn(|c| {
                faithfulness_columns[c][i]
            })),
            decode_seconds: decode[i],
            tokens_per_second: speed[i],
            speedup: speedup[i],
        })
        .collect())
}

/// Writes `summary.parquet` and `summary.csv` into `dir`, each atomically.
pub fn write_summary(rows: &[SummaryRow], dir: &Path) -> anyhow::Result<()> {
    let mut frame = to_frame(rows)?;
    let mut csv = Vec::new();
    CsvWriter::new(&mut csv).finish(&mut frame)?;
    super::records::write_atomic(&dir.join("summary.csv"), &csv)?;
    let mut parquet = Vec::new();
    ParquetWriter::new(&mut parquet).finish(&mut frame)?;
    super::records::write_atomic(&dir.join("summary.parquet"), &parquet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_interval_matches_the_normal_approximation_on_a_known_case() {
        // 400 fair coin flips: mean 0.5, standard error 0.025, so about 0.451..0.549.
        let values: Vec<f64> = (0..400).map(|i| f64::from(i % 2)).collect();
        let (lo, hi) = bootstrap_ci(&values, 4000, 11);
        assert!(
            (lo - 0.451).abs() < 0.006 && (hi - 0.549).abs() < 0.006,
            "{lo} {hi}"
        );
        // Committed summaries hold intervals drawn this way: the resamples must never change.
        assert_eq!((lo, hi), (0.4525, 0.55));
        assert_ne!(bootstrap_ci(&values, 4000, 12), (lo, hi));
        assert_eq!(bootstrap_ci(&[3.0; 10], 100, 1), (3.0, 3.0));
    }

    #[test]
    fn paired_bootstrap_separates_shifted_scores_and_not_equal_ones() {
        let a: Vec<f64> = (0..50).map(|i| f64::from(i % 7)).collect();
        let shifted: Vec<f64> = a.iter().map(|x| x + 0.5).collect();
        assert_eq!(paired_bootstrap_p(&shifted, &a, 1000, 3), 0.0);
        assert_eq!(paired_bootstrap_p(&a, &a, 1000, 3), 1.0);
        let noisy: Vec<f64> = a
            .iter()
            .enumerate()
            .map(|(i, x)| x + if i % 2 == 0 { 0.3 } else { -0.3 })
            .collect();
        assert!(paired_bootstrap_p(&noisy, &a, 1000, 3) > 0.2);
        assert_eq!(
            paired_bootstrap_p(&noisy, &a, 1000, 3),
            0.866,
            "seeded resamples changed"
        );
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 1.0), 4.0);
    }

    fn result(strategy: &str, target: Option<f64>, scores: Vec<f64>, seconds: f64) -> RunResult {
        RunResult {
            run: format!(
                "m/xsum/{strategy}{}",
                target.map(|t| format!("@{t:.2}")).unwrap_or_default()
            ),
            model: "m".into(),
            dataset: "xsum".into(),
            strategy: strategy.into(),
            label: strategy.into(),
            target_skip_ratio: target,
            examples: (0..scores.len()).map(|i| i.to_string()).collect(),
            generated_tokens: 100,
            skipped_slots: if strategy == "full" { 0 } else { 300 },
            total_slots: 1000,
            flops: if strategy == "full" { 10 } else { 7 },
            vanilla_flops: 10,
            outputs: (0..scores.len())
                .map(|i| Output {
                    example: i.to_string(),
                    tokens: if strategy == "full" {
                        vec![1, 2, 3, 4]
                    } else {
                        vec![1, 2, 9, 9]
                    },
                    empty: false,
                    teacher_forced: None,
                })
                .collect(),
            scores: BTreeMap::from([("rouge1".to_owned(), (mean(&scores), scores))]),
            speculation: None,
            decode_seconds: Some(seconds),
        }
    }

    #[test]
    fn rows_relate_runs_to_vanilla_and_hsd_and_round_trip_through_parquet() {
        let results = [
            result("full", None, vec![0.4, 0.5, 0.6, 0.5], 2.0),
            result("hsd", Some(0.3), vec![0.36, 0.45, 0.54, 0.45], 1.0),
            result("skipdecode", Some(0.3), vec![0.2, 0.25, 0.3, 0.25], 1.25),
        ];
        let rows = summarize(&results, 200, 5).unwrap();
        assert_eq!(rows[0].faithfulness.vanilla_agreement, Some(1.0));
        assert_eq!(rows[1].faithfulness.vanilla_agreement, Some(0.5));
        assert_eq!(rows[1].faithfulness.first_divergence, Some(2.0));
        assert_eq!(rows[1].faithfulness.repeated_4grams, Some(0.0));
        assert_eq!(rows[1].faithfulness.empty_share, Some(0.0));
        let hsd = &rows[1].metrics["rouge1"];
        assert!((hsd.retained.unwrap() - 0.9).abs() < 1e-12);
        assert_eq!(hsd.p_vs_hsd, None);
        assert_eq!(rows[2].metrics["rouge1"].p_vs_hsd, Some(0.0));
        assert_eq!(rows[1].speedup, Some(2.0));
        assert_eq!(
            (rows[1].skip_ratio, rows[1].flops_ratio, rows[1].mean_layers),
            (0.3, 0.7, 7.0)
        );

        let dir = tempfile::tempdir().unwrap();
        write_summary(&rows, dir.path()).unwrap();
        assert_eq!(
            read_parquet(&dir.path().join("summary.parquet")).unwrap(),
            rows
        );
        let csv = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
        assert!(
            csv.starts_with("run,model,dataset,strategy,label,target_skip_ratio,examples"),
            "{csv}"
        );
        assert_eq!(csv.lines().count(), 4);
    }
}
