//! A manifest checked as a whole once its files are merged: at least one model, dataset and
//! strategy, unique strategy labels, strategy knobs that the registry accepts, positive sizes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hsd_model::{Backend, SpeculativeConfig, WeightMode};
use hsd_skip::StrategyConfig;

use super::blocks::{DatasetBlock, ModelBlock, Profile, UnreachableTargets};
use super::error::ManifestError;
use super::read::{line_column, read_merged};

/// One strategy block: a registry config per target skip ratio (one if none is listed).
#[derive(Clone, Debug, PartialEq)]
pub struct StrategyBlock {
    /// Distinguishes two blocks of the same strategy (e.g. `hsd-propagate`, `hsd-none`).
    pub label: String,
    pub name: String,
    pub configs: Vec<StrategyConfig>,
    /// `[None]` for the strategy decoding on its own; with `speculative = k` (or a list of
    /// them), one lossless mode per `k` in which the strategy drafts for the full model.
    pub speculative: Vec<Option<SpeculativeConfig>>,
    /// The weights lossless mode's draft passes read (`draft_weights = "native"`: the GGUF's
    /// quantized blocks while the manifest's `weights` verify); the manifest's `weights` by
    /// default.
    pub draft_weights: Option<WeightMode>,
    /// `searched` only: the plan file (`hsd search`) whose `model/dataset` removal orders its
    /// runs skip by, and those orders as read at load (none when the file does not exist yet).
    pub plan_file: Option<PathBuf>,
    pub plans: BTreeMap<String, Vec<usize>>,
}

/// A validated, merged manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub path: PathBuf,
    /// The text of the manifest and every included file, in reading order, for `meta.json`.
    pub text: String,
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub backend: Backend,
    /// How models hold their weights (`weights = "f32" | "native"`); `f32` by default.
    pub weights: WeightMode,
    pub batch_size: usize,
    pub throughput_tok_s: f64,
    pub bootstrap_resamples: usize,
    /// Every skipping run is also fed its batch's vanilla tokens, as decoding feeds them, for
    /// the teacher-forced agreement and KL of its records (`teacher_forced = true`, the
    /// default; one more pass per run, a single chunk for rules that check no layer).
    pub teacher_forced: bool,
    pub unreachable_targets: UnreachableTargets,
    pub models: Vec<ModelBlock>,
    pub datasets: Vec<DatasetBlock>,
    pub strategies: Vec<StrategyBlock>,
    pub profiles: BTreeMap<String, Profile>,
}

impl Manifest {
    /// Reads `path` and its includes and validates everything but model availability.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let mut text = String::new();
        let mut stack = Vec::new();
        let merged = read_merged(path, &mut stack, &mut text)?;
        let invalid = |what: String| ManifestError::Invalid {
            path: path.to_path_buf(),
            what,
        };
        let name = merged.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(|| "manifest".into(), |s| s.to_string_lossy().into_owned())
        });
        if merged.model.is_empty() {
            return Err(invalid("no [[model]] block".into()));
        }
        if merged.dataset.is_empty() {
            return Err(invalid("no [[dataset]] block".into()));
        }
        if merged.strategy.is_empty() {
            return Err(invalid("no [[strategy]] block".into()));
        }
        for model in &merged.model {
            if model.spec.is_none() && model.spec_env.is_none() {
                return Err(invalid(format!(
                    "model '{}' has neither `spec` nor `spec_env`",
                    model.name
                )));
            }
        }
        for dataset in &merged.dataset {
            if dataset.max_new_tokens == 0 {
                return Err(invalid(format!(
                    "dataset {}: max_new_tokens must be positive",
                    dataset.name
                )));
            }
        }
        let mut strategies = Vec::new();
        for (block, (origin, source)) in merged.strategy.iter().zip(&merged.strategy_origins) {
            strategies.push(parse_strategy(block, origin, source)?);
        }
        let mut labels = BTreeSet::new();
        for s in &strategies {
            if !labels.insert(s.label.clone()) {
                return Err(invalid(format!(
                    "two strategy blocks share the label '{}': give one a `label`",
                    s.label
                )));
            }
        }
        let batch_size = merged.batch_size.unwrap_or(1);
        if batch_size == 0 {
            return Err(invalid("batch_size must be positive".into()));
        }
        Ok(Self {
            path: path.to_path_buf(),
            text,
            name,
            description: merged.description.clone().unwrap_or_default(),
            seed: merged.seed.unwrap_or(0),
            backend: merged.backend.unwrap_or(Backend::Flex),
            weights: merged.weights.unwrap_or_default(),
            batch_size,
            throughput_tok_s: merged.throughput_tok_s.unwrap_or(40.0),
            bootstrap_resamples: merged.bootstrap_resamples.unwrap_or(1000),
            teacher_forced: merged.teacher_forced.unwrap_or(true),
            unreachable_targets: merged.unreachable_targets.unwrap_or_default(),
            models: merged.model.clone(),
            datasets: merged.dataset.clone(),
            strategies,
            profiles: merged.profile.clone(),
        })
    }
}

/// Splits a strategy table into its label, target list and registry knobs, and builds one
/// registry config per target.
fn parse_strategy(
    block: &toml::Spanned<toml::Table>,
    path: &Path,
    source: &str,
) -> Result<StrategyBlock, ManifestError> {
    let at = |message: String| {
        let (line, column) = line_column(source, block.span().start);
        ManifestError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    };
    let mut table = block.get_ref().clone();
    let name = match table.get("name") {
        Some(toml::Value::String(name)) => name.clone(),
        _ => return Err(at("strategy block needs `name = \"...\"`".into())),
    };
    if !StrategyConfig::NAMES.contains(&name.as_str()) {
        return Err(at(format!(
            "unknown strategy {name:?} (expected one of {})",
            StrategyConfig::NAMES.join(", ")
        )));
    }
    let label = match table.remove("label") {
        None => name.clone(),
        Some(toml::Value::String(label)) => label,
        Some(other) => {
            return Err(at(format!(
                "`label` must be a string, not {}",
                other.type_str()
            )));
        }
    };
    let targets: Vec<Option<f64>> = match table.remove("target_skip_ratio") {
        None => vec![None],
        Some(toml::Value::Float(t)) => vec![Some(t)],
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                toml::Value::Float(t) => Ok(Some(*t)),
                toml::Value::Integer(t) => Ok(Some(*t as f64)),
                other => Err(at(format!(
                    "target_skip_ratio entries must be numbers, not {}",
                    other.type_str()
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(at(format!(
                "target_skip_ratio must be a number or a list, not {}",
                other.type_str()
            )));
        }
    };
    let speculative = parse_speculative(&mut table).map_err(at)?;
    let draft_weights = match table.remove("draft_weights") {
        None => None,
        Some(_) if speculative == [None] => {
            return Err(at(
                "`draft_weights` needs `speculative = k`: only lossless mode drafts".into(),
            ));
        }
        Some(toml::Value::String(weights)) => Some(
            weights
                .parse::<WeightMode>()
                .map_err(|e| at(format!("`draft_weights`: {e}")))?,
        ),
        Some(other) => {
            return Err(at(format!(
                "`draft_weights` must be \"f32\" or \"native\", not {}",
                other.type_str()
            )));
        }
    };
    let plan_file = match table.remove("plan_file") {
        None => None,
        Some(toml::Value::String(file)) if name == "searched" => Some(PathBuf::from(file)),
        Some(toml::Value::String(_)) => {
            return Err(at(format!(
                "`plan_file` belongs to `searched` strategies, not {name:?}"
            )));
        }
        Some(other) => {
            return Err(at(format!(
                "`plan_file` must be a path, not {}",
                other.type_str()
            )));
        }
    };
    let plans = match &plan_file {
        Some(file) if file.exists() => crate::plans::PlanFile::read(file)
            .map_err(|e| at(format!("{e:#}")))?
            .plans
            .into_iter()
            .map(|(key, plan)| (key, plan.removal_order))
            .collect(),
        _ => BTreeMap::new(),
    };
    // `drop`'s `layer` may be a list, one run per layer, as `target_skip_ratio` may be.
    let layers: Vec<Option<toml::Value>> = match table.get("layer") {
        Some(toml::Value::Array(items)) if name == "drop" => {
            let items = items.clone();
            table.remove("layer");
            items.into_iter().map(Some).collect()
        }
        _ => vec![None],
    };
    let mut configs = Vec::with_capacity(targets.len() * layers.len());
    for target in targets {
        if let Some(t) = target
            && !(0.0..1.0).contains(&t)
        {
            return Err(at(format!("target_skip_ratio {t} is outside [0, 1)")));
        }
        for layer in &layers {
            let mut knobs = table.clone();
            if let Some(layer) = layer {
                knobs.insert("layer".into(), layer.clone());
            }
            let knobs = serde_json::to_value(&knobs).map_err(|e| at(e.to_string()))?;
            let mut config: StrategyConfig = serde_json::from_value(knobs)
                .map_err(|e| at(format!("strategy {name:?} ({label}): {e}")))?;
            if let Some(t) = target {
                config.set_target_skip_ratio(t);
            }
            configs.push(config);
        }
    }
    Ok(StrategyBlock {
        label,
        name,
        configs,
        speculative,
        draft_weights,
        plan_file,
        plans,
    })
}

/// Takes `speculative` (draft tokens per round, a positive integer or a list of them) and
/// `adaptive` (whether `k` follows acceptance, up to twice the given one) out of a strategy
/// table.
fn parse_speculative(table: &mut toml::Table) -> Result<Vec<Option<SpeculativeConfig>>, String> {
    let adaptive = match table.remove("adaptive") {
        None => None,
        Some(toml::Value::Boolean(adaptive)) => Some(adaptive),
        Some(other) => {
            return Err(format!(
                "`adaptive` must be true or false, not {}",
                other.type_str()
            ));
        }
    };
    let draft_tokens: Vec<i64> = match table.remove("speculative") {
        None if adaptive.is_some() => {
            return Err("`adaptive` needs `speculative = k` (draft tokens per round)".into());
        }
        None => return Ok(vec![None]),
        Some(toml::Value::Integer(k)) => vec![k],
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                toml::Value::Integer(k) => Ok(*k),
                other => Err(format!(
                    "`speculative` entries must be integers, not {}",
                    other.type_str()
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "`speculative` must be an integer or a list of them, not {}",
                other.type_str()
            ));
        }
    };
    if draft_tokens.is_empty() {
        return Err("`speculative` lists no draft length".into());
    }
    draft_tokens
        .into_iter()
        .map(|k| {
            let k = usize::try_from(k)
                .ok()
                .filter(|&k| (1..=64).contains(&k))
                .ok_or_else(|| format!("`speculative` = {k}: draft tokens must be 1 to 64"))?;
            Ok(Some(SpeculativeConfig::new(k, adaptive == Some(true))))
        })
        .collect()
}
