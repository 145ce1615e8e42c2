//! Loss curves of the trained adapters: one panel per dataset, the training loss of each
//! variant (mean over windows of updates) and its held-out eval loss, from the
//! `train_log.csv` files `hsd finetune` leaves beside each adapter.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hsd_plot::{LineChart, Point, Series};

/// Updates per point of the smoothed training-loss line.
const WINDOW: usize = 10;

/// Renders `<figures>/finetune_loss.{png,svg}` from `<adapters>/<variant>/<dataset>/train_log.csv`;
/// returns the files written (none when no log exists).
pub fn render_loss_curves(adapters: &Path, figures: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut panels: BTreeMap<String, Vec<Series>> = BTreeMap::new();
    for variant in sorted_dirs(adapters)? {
        for dataset in sorted_dirs(&variant)? {
            let log = dataset.join(hsd_train::LOG_FILE);
            if !log.exists() {
                continue;
            }
            let (train, eval) = read_log(&log)?;
            let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
            let (Some(variant), Some(dataset)) = (name(&variant), name(&dataset)) else {
                continue;
            };
            let series = panels.entry(dataset).or_default();
            series.push(Series::measured(format!("{variant} train"), train));
            if !eval.is_empty() {
                series.push(Series::measured(format!("{variant} eval"), eval));
            }
        }
    }
    if panels.is_empty() {
        return Ok(Vec::new());
    }
    let charts: Vec<LineChart> = panels
        .into_iter()
        .map(|(dataset, series)| LineChart {
            title: dataset,
            x_label: "update".into(),
            y_label: "target-token loss".into(),
            series,
            ..LineChart::default()
        })
        .collect();
    std::fs::create_dir_all(figures).with_context(|| format!("creating {}", figures.display()))?;
    let mut written = Vec::new();
    for extension in ["png", "svg"] {
        let path = figures.join(format!("finetune_loss.{extension}"));
        hsd_plot::render_panels(&charts, charts.len().min(3), &path)?;
        written.push(path);
    }
    Ok(written)
}

fn sorted_dirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// The windowed training loss and the eval loss points of one log.
fn read_log(path: &Path) -> anyhow::Result<(Vec<Point>, Vec<Point>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = Vec::new();
    let mut eval = Vec::new();
    for (line_no, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let bad = || anyhow::anyhow!("{}:{}: malformed row `{line}`", path.display(), line_no + 1);
        let step: f64 = fields
            .first()
            .and_then(|f| f.parse().ok())
            .ok_or_else(bad)?;
        let loss: f64 = fields.get(2).and_then(|f| f.parse().ok()).ok_or_else(bad)?;
        rows.push((step, loss));
        if let Some(l) = fields.get(6).filter(|f| !f.is_empty()) {
            eval.push(Point::new(step, l.parse().map_err(|_| bad())?));
        }
    }
    let train = rows
        .chunks(WINDOW)
        .map(|w| {
            let n = w.len() as f64;
            Point::new(
                w.iter().map(|r| r.0).sum::<f64>() / n,
                w.iter().map(|r| r.1).sum::<f64>() / n,
            )
        })
        .collect();
    Ok((train, eval))
}
