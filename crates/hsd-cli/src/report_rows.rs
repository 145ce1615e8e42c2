//! What every report table and figure reads off summary rows: the (model, dataset) groups,
//! the metric a dataset is judged by and its display name, strategy lines and target labels.

use crate::results::SummaryRow;

/// The metric each figure plots for a dataset: the first of these its runs have.
pub(crate) const PRIMARY_METRICS: [&str; 5] = ["rougeL", "bleu", "cider", "meteor", "chrf"];

/// Display names for metric keys, in table column order.
pub(crate) const METRIC_NAMES: [(&str, &str); 9] = [
    ("rouge1", "ROUGE-1"),
    ("rouge2", "ROUGE-2"),
    ("rougeL", "ROUGE-L"),
    ("rougeLsum", "ROUGE-Lsum"),
    ("bleu", "BLEU"),
    ("meteor", "METEOR"),
    ("cider", "CIDEr-D"),
    ("chrf", "chrF"),
    ("rougeL_f", "ROUGE-L"),
];

pub(crate) fn metric_name(key: &str) -> &str {
    METRIC_NAMES
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, n)| n)
}

/// Rows grouped by (model, dataset), in first-seen order.
pub(crate) fn groups(rows: &[SummaryRow]) -> Vec<((String, String), Vec<&SummaryRow>)> {
    let mut out: Vec<((String, String), Vec<&SummaryRow>)> = Vec::new();
    for row in rows {
        let key = (row.model.clone(), row.dataset.clone());
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(row),
            None => out.push((key, vec![row])),
        }
    }
    out
}

pub(crate) fn primary_metric(rows: &[&SummaryRow]) -> Option<&'static str> {
    PRIMARY_METRICS
        .into_iter()
        .find(|m| rows.iter().any(|r| r.metrics.contains_key(*m)))
}

pub(crate) fn target(row: &SummaryRow) -> String {
    row.target_skip_ratio
        .map_or_else(|| "–".into(), |t| format!("{t:.2}"))
}

/// Lines by label, sorted by measured skip ratio. Vanilla is a reference line, and the oracle
/// (every layer runs and is checked) has its own figure.
pub(crate) fn lines_by_label<'a>(members: &[&'a SummaryRow]) -> Vec<(String, Vec<&'a SummaryRow>)> {
    let mut lines: Vec<(String, Vec<&SummaryRow>)> = Vec::new();
    for row in members
        .iter()
        .filter(|r| r.strategy != "full" && r.strategy != "oracle")
    {
        match lines.iter_mut().find(|(l, _)| *l == row.label) {
            Some((_, rows)) => rows.push(row),
            None => lines.push((row.label.clone(), vec![row])),
        }
    }
    for (_, rows) in &mut lines {
        rows.sort_by(|a, b| a.skip_ratio.total_cmp(&b.skip_ratio));
    }
    // HSD first: it takes the palette's first colour.
    lines.sort_by_key(|(label, _)| label != "hsd");
    lines
}
