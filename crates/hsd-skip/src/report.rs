//! Text renderings of schedules, shared by `hsd plan` and the crate README (whose generated
//! sections a test keeps current).

use std::fmt::Write;

use serde_json::{Map, Value};

use crate::{LayerPlan, SkipError, StrategyConfig, skip_ratio, static_schedule};

/// One line per token: `█` a layer that runs, `▓` one that runs and is checked, `·` a skip.
pub fn plan_rows(plans: &[LayerPlan]) -> Vec<String> {
    plans
        .iter()
        .map(|plan| {
            (0..plan.run.universe())
                .map(|j| match (plan.run.contains(j), plan.checks.contains(j)) {
                    (true, true) => '▓',
                    (true, false) => '█',
                    (false, _) => '·',
                })
                .collect()
        })
        .collect()
}

/// Positions (rows, `bin` tokens each) by layers (columns, bottom layer first), shaded by the
/// fraction of the bin's tokens that run the layer: `·` none, `░` up to 1/3, `▒` up to 2/3,
/// `▓` more, `█` all.
pub fn heat_map(plans: &[LayerPlan], bin: usize) -> String {
    let bin = bin.max(1);
    let mut out = String::new();
    for (row, chunk) in plans.chunks(bin).enumerate() {
        let layers = chunk.first().map_or(0, |p| p.run.universe());
        let shades: String = (0..layers)
            .map(|j| {
                let share =
                    chunk.iter().filter(|p| p.run.contains(j)).count() as f64 / chunk.len() as f64;
                match share {
                    0.0 => '·',
                    s if s <= 1.0 / 3.0 => '░',
                    s if s <= 2.0 / 3.0 => '▒',
                    s if s < 1.0 => '▓',
                    _ => '█',
                }
            })
            .collect();
        let first = row * bin;
        let _ = writeln!(out, "t {first:>4}-{:<4} {shades}", first + chunk.len() - 1);
    }
    out
}

/// The knobs a solve filled in (those the input left unset), as `key=value` pairs.
pub fn solved_knob_text(
    config: &StrategyConfig,
    layers: usize,
    max_new_tokens: usize,
) -> Result<String, SkipError> {
    let given = match serde_json::to_value(config) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let solved = config.solved_knobs(layers, max_new_tokens)?;
    let mut pairs = Vec::new();
    for (key, value) in &solved {
        if given.contains_key(key) {
            continue;
        }
        let shown = match value {
            Value::Number(x) if x.is_f64() => format!("{:.4}", x.as_f64().unwrap_or(f64::NAN)),
            Value::Object(reference) => {
                let inner: Vec<String> =
                    reference.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{{{}}}", inner.join(" "))
            }
            other => other.to_string(),
        };
        pairs.push(format!("{key}={shown}"));
    }
    Ok(pairs.join(" "))
}

/// The strategies whose knobs a target determines (random draws counts from hsd's solution,
/// calm calibrates a threshold on data, full and the oracle skip nothing).
pub const SOLVED_STRATEGIES: [&str; 5] = ["hsd", "skipdecode", "static", "early_exit", "d3"];

/// A markdown table of target solutions: one row per `(L, target)`, one column per strategy
/// of [`SOLVED_STRATEGIES`], each cell the solved knobs and the ratio they reach.
pub fn solution_table(layer_counts: &[usize], targets: &[f64], max_new_tokens: usize) -> String {
    let mut out = String::from("| L | target |");
    for name in SOLVED_STRATEGIES {
        let _ = write!(out, " {name} |");
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(SOLVED_STRATEGIES.len()));
    out.push('\n');
    for &layers in layer_counts {
        for &target in targets {
            let _ = write!(out, "| {layers} | {target:.2} |");
            for name in SOLVED_STRATEGIES {
                let cell = match solved_cell(name, target, layers, max_new_tokens) {
                    Ok(cell) => cell,
                    Err(SkipError::TargetUnreachable { nearest, .. }) => {
                        format!("out of reach (nearest {nearest:.3})")
                    }
                    Err(err) => format!("error: {err}"),
                };
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
    }
    out
}

fn solved_cell(
    name: &str,
    target: f64,
    layers: usize,
    max_new_tokens: usize,
) -> Result<String, SkipError> {
    let mut config = StrategyConfig::named(name)?;
    config.set_target_skip_ratio(target);
    let knobs = solved_knob_text(&config, layers, max_new_tokens)?;
    let plans = static_schedule(
        &mut *config.build(layers, max_new_tokens)?,
        layers,
        max_new_tokens,
        0,
    );
    Ok(format!("{knobs} → {:.3}", skip_ratio(&plans)))
}

/// For every registered strategy, its heat map at `L` layers and `T` tokens, solved for
/// `target` where a target applies (dynamic strategies show their upper plan).
pub fn heat_maps(layers: usize, max_new_tokens: usize, target: f64, bin: usize) -> String {
    let mut out = String::new();
    for name in StrategyConfig::NAMES {
        let solves = SOLVED_STRATEGIES.contains(&name) || name == "random";
        let settings: &[&str] = match name {
            "calm" => &["threshold=0.9"],
            "drop" => &["layer=1"],
            _ => &[],
        };
        let mut heading = String::new();
        let body = StrategyConfig::from_settings(name, settings).and_then(|mut config| {
            if solves {
                config.set_target_skip_ratio(target);
            }
            heading = match (solves, config.is_dynamic()) {
                (true, _) => format!("target {target}"),
                (false, true) => "dynamic: the upper plan, before any exit".into(),
                (false, false) => "no knob reaches a target".into(),
            };
            let knobs = solved_knob_text(&config, layers, max_new_tokens)?;
            let plans = static_schedule(
                &mut *config.build(layers, max_new_tokens)?,
                layers,
                max_new_tokens,
                0,
            );
            Ok((knobs, skip_ratio(&plans), heat_map(&plans, bin)))
        });
        match body {
            Ok((knobs, ratio, map)) => {
                let knobs = if knobs.is_empty() {
                    String::new()
                } else {
                    format!("{knobs}; ")
                };
                let _ = writeln!(
                    out,
                    "`{name}` ({heading}; {knobs}skip ratio {ratio:.3})\n\n```text\n{map}```\n"
                );
            }
            Err(err) => {
                let _ = writeln!(out, "`{name}`: {err}\n");
            }
        }
    }
    out
}
