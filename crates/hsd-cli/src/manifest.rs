//! Experiment manifests: TOML files that name models, datasets, strategies and profiles, and
//! expand into the list of runs a sweep performs.
//!
//! A manifest may `include = ["common.toml"]` other files (paths relative to the including
//! file). Included files are read first; the including file then overrides their scalars and
//! appends to their `[[model]]`, `[[dataset]]` and `[[strategy]]` lists; `[profile.*]` tables
//! merge by name. Every key is checked: an unknown or mistyped key is an error naming
//! `file:line:column`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use hsd_data::{DatasetName, Split};
use hsd_skip::{ModelShapes, StrategyConfig};
use serde::{Deserialize, Serialize};

/// Why a manifest could not be read or expanded.
#[derive(Debug)]
pub enum ManifestError {
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    IncludeCycle {
        path: PathBuf,
        again: PathBuf,
    },
    Invalid {
        path: PathBuf,
        what: String,
    },
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Syntax {
                path,
                line,
                column,
                message,
            } => write!(f, "{}:{line}:{column}: {message}", path.display()),
            Self::IncludeCycle { path, again } => write!(
                f,
                "{}: include cycle through {}",
                path.display(),
                again.display()
            ),
            Self::Invalid { path, what } => write!(f, "{}: {what}", path.display()),
        }
    }
}

impl std::error::Error for ManifestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The raw form of one manifest file; every field optional so that included files can
/// supply part of a manifest.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    #[serde(default)]
    include: Vec<PathBuf>,
    name: Option<String>,
    description: Option<String>,
    seed: Option<u64>,
    backend: Option<String>,
    batch_size: Option<usize>,
    throughput_tok_s: Option<f64>,
    bootstrap_resamples: Option<usize>,
    unreachable_targets: Option<UnreachableTargets>,
    #[serde(default)]
    model: Vec<ModelBlock>,
    #[serde(default)]
    dataset: Vec<DatasetBlock>,
    #[serde(default)]
    strategy: Vec<toml::Spanned<toml::Table>>,
    #[serde(default)]
    profile: BTreeMap<String, Profile>,
}

/// What a sweep does with a (strategy, target skip ratio) cell that the strategy's knob grid
/// cannot reach within 1/L for the model's depth (e.g. `static` only reaches s/(s+1)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnreachableTargets {
    /// Leave the cell out, with a notice; the summary has no row for it.
    #[default]
    Skip,
    /// Refuse the whole sweep.
    Error,
}

/// A model to evaluate. `spec` is what `hsd_model::load_model` takes (a known name, a GGUF
/// file, a Hugging Face directory); `spec_env` names an environment variable that supplies
/// it instead. An `optional` model whose spec is not available is skipped with a notice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelBlock {
    pub name: String,
    pub spec: Option<String>,
    pub spec_env: Option<String>,
    #[serde(default)]
    pub optional: bool,
    /// `plain` or `chat` prompts (`hsd_data::Mode`).
    #[serde(default = "default_mode")]
    pub prompt_mode: String,
    /// The architecture's dimensions, used only by `hsd check`'s cost estimate.
    pub shapes: Option<ModelShapes>,
}

fn default_mode() -> String {
    "plain".into()
}

/// A dataset to evaluate, and how to prompt and decode it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetBlock {
    pub name: DatasetName,
    #[serde(default)]
    pub split: Split,
    /// A file in the dataset's native or Hugging Face schema instead of the shared split.
    pub path: Option<PathBuf>,
    /// A prompt template TOML; the dataset's built-in template otherwise.
    pub template: Option<PathBuf>,
    #[serde(default)]
    pub shots: usize,
    pub max_new_tokens: usize,
    /// Prompt truncation budget: the most tokens a source may take (cut at a word boundary).
    pub max_source_tokens: Option<usize>,
    /// Metric names (`hsd_metrics::by_name`); the dataset family's defaults when absent.
    pub metrics: Option<Vec<String>>,
    /// Where CALM's threshold is calibrated when a run gives a target instead of a threshold;
    /// `dev` when the dataset has a dev split here, `tail` otherwise.
    pub calibration: Option<Calibration>,
}

/// The examples CALM's threshold is bisected on: never ones that are scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    /// The first `batch_size` examples of the dataset's dev split.
    Dev,
    /// The last `batch_size` examples of the evaluated split, which must lie past the
    /// profile's example limit (CNN/DM and XSum have no dev split here).
    Tail,
}

impl DatasetBlock {
    pub fn metrics(&self) -> Vec<String> {
        self.metrics.clone().unwrap_or_else(|| {
            default_metrics(self.name)
                .iter()
                .map(|m| (*m).to_owned())
                .collect()
        })
    }
}

/// The metrics the field reports for each dataset family.
pub fn default_metrics(dataset: DatasetName) -> &'static [&'static str] {
    match dataset {
        DatasetName::CnnDailymail
        | DatasetName::Xsum
        | DatasetName::Samsum
        | DatasetName::Dialogsum
        | DatasetName::Scitldr => &["rouge"],
        DatasetName::E2e | DatasetName::Dart | DatasetName::Webnlg2017 => {
            &["bleu", "meteor", "rouge", "cider", "chrf"]
        }
        DatasetName::CommonGen => &["bleu", "cider"],
    }
}

/// How much of the grid a profile runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Examples per dataset (the first ones in file order); the whole split when absent.
    pub limit: Option<usize>,
    /// Only these datasets (by name).
    pub datasets: Option<Vec<DatasetName>>,
    /// Only these strategies (by label).
    pub strategies: Option<Vec<String>>,
    /// These target skip ratios replace the list of every strategy that has one.
    pub target_skip_ratios: Option<Vec<f64>>,
    /// Caps every dataset's `max_new_tokens`.
    pub max_new_tokens: Option<usize>,
}

/// One strategy block: a registry config per target skip ratio (one if none is listed).
#[derive(Clone, Debug, PartialEq)]
pub struct StrategyBlock {
    /// Distinguishes two blocks of the same strategy (e.g. `hsd-propagate`, `hsd-none`).
    pub label: String,
    pub name: String,
    pub configs: Vec<StrategyConfig>,
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
    pub backend: String,
    pub batch_size: usize,
    pub throughput_tok_s: f64,
    pub bootstrap_resamples: usize,
    pub unreachable_targets: UnreachableTargets,
    pub models: Vec<ModelBlock>,
    pub datasets: Vec<DatasetBlock>,
    pub strategies: Vec<StrategyBlock>,
    pub profiles: BTreeMap<String, Profile>,
}

/// One (model, dataset, strategy config): a row of the summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Run {
    /// `model/dataset/label` plus `@target` when the strategy has a target skip ratio.
    pub id: String,
    pub model: String,
    pub dataset: DatasetName,
    /// Index into `Manifest::datasets`.
    pub dataset_index: usize,
    pub label: String,
    pub strategy: StrategyConfig,
    pub target_skip_ratio: Option<f64>,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// The sweep a profile selects: the runs and, per dataset, the decode settings.
#[derive(Clone, Debug)]
pub struct Expansion {
    pub profile: String,
    pub limit: Option<usize>,
    pub datasets: Vec<DatasetBlock>,
    pub runs: Vec<Run>,
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
            if !matches!(model.prompt_mode.as_str(), "plain" | "chat") {
                return Err(invalid(format!(
                    "model '{}': prompt_mode must be \"plain\" or \"chat\", not {:?}",
                    model.name, model.prompt_mode
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
        for (block, origin) in merged.strategy.iter().zip(strategy_origins(&merged)) {
            strategies.push(parse_strategy(block, &origin.0, &origin.1)?);
        }
        let mut labels = std::collections::BTreeSet::new();
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
            backend: merged.backend.clone().unwrap_or_else(|| "flex".into()),
            batch_size,
            throughput_tok_s: merged.throughput_tok_s.unwrap_or(40.0),
            bootstrap_resamples: merged.bootstrap_resamples.unwrap_or(1000),
            unreachable_targets: merged.unreachable_targets.unwrap_or_default(),
            models: merged.model.clone(),
            datasets: merged.dataset.clone(),
            strategies,
            profiles: merged.profile.clone(),
        })
    }

    /// Why `run` is left out of a sweep on a `layers`-deep model, or `None` when it can be
    /// built. A target the strategy cannot reach is a reason under
    /// `unreachable_targets = "skip"` and an error under `"error"`; CALM's data-dependent
    /// target is calibrated at run time, so it always counts as reachable here.
    pub fn skip_reason(
        &self,
        run: &Run,
        layers: usize,
        max_new_tokens: usize,
    ) -> Result<Option<String>, hsd_skip::SkipError> {
        match run.strategy.solve(layers, max_new_tokens) {
            Ok(_) | Err(hsd_skip::SkipError::NeedsCalibration { .. }) => Ok(None),
            Err(e @ hsd_skip::SkipError::TargetUnreachable { .. })
                if self.unreachable_targets == UnreachableTargets::Skip =>
            {
                Ok(Some(e.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// The runs of `profile` (`None`: everything, no limit), in model, dataset, strategy,
    /// target order. `limit` overrides the profile's example limit.
    pub fn expand(
        &self,
        profile: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Expansion, ManifestError> {
        let chosen = match profile {
            None => Profile::default(),
            Some(name) => {
                self.profiles
                    .get(name)
                    .cloned()
                    .ok_or_else(|| ManifestError::Invalid {
                        path: self.path.clone(),
                        what: format!(
                            "no [profile.{name}] (have: {})",
                            self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    })?
            }
        };
        let datasets: Vec<DatasetBlock> = self
            .datasets
            .iter()
            .map(|d| {
                let mut d = d.clone();
                if let Some(cap) = chosen.max_new_tokens {
                    d.max_new_tokens = d.max_new_tokens.min(cap);
                }
                d
            })
            .collect();
        let mut runs = Vec::new();
        for model in &self.models {
            for (dataset_index, dataset) in datasets.iter().enumerate() {
                if chosen
                    .datasets
                    .as_ref()
                    .is_some_and(|keep| !keep.contains(&dataset.name))
                {
                    continue;
                }
                for block in &self.strategies {
                    if chosen
                        .strategies
                        .as_ref()
                        .is_some_and(|keep| !keep.contains(&block.label))
                    {
                        continue;
                    }
                    let targeted = block
                        .configs
                        .first()
                        .is_some_and(|c| c.target_skip_ratio().is_some());
                    let configs: Vec<StrategyConfig> = match (&chosen.target_skip_ratios, targeted)
                    {
                        (Some(targets), true) => targets
                            .iter()
                            .map(|&t| {
                                let mut config = block.configs[0].clone();
                                config.set_target_skip_ratio(t);
                                config
                            })
                            .collect(),
                        _ => block.configs.clone(),
                    };
                    for config in &configs {
                        let target = config.target_skip_ratio();
                        let id = match target {
                            Some(t) => {
                                format!("{}/{}/{}@{t:.2}", model.name, dataset.name, block.label)
                            }
                            None => format!("{}/{}/{}", model.name, dataset.name, block.label),
                        };
                        runs.push(Run {
                            id,
                            model: model.name.clone(),
                            dataset: dataset.name,
                            dataset_index,
                            label: block.label.clone(),
                            strategy: config.clone(),
                            target_skip_ratio: target,
                        });
                    }
                }
            }
        }
        if runs.is_empty() {
            return Err(ManifestError::Invalid {
                path: self.path.clone(),
                what: format!("profile {} selects no run", profile.unwrap_or("(none)")),
            });
        }
        Ok(Expansion {
            profile: profile.unwrap_or("all").to_owned(),
            limit: limit.or(chosen.limit),
            datasets,
            runs,
        })
    }
}

/// Reads `path`, its includes first, merging into one raw manifest.
fn read_merged(
    path: &Path,
    stack: &mut Vec<PathBuf>,
    text: &mut String,
) -> Result<MergedFile, ManifestError> {
    let canonical = path.canonicalize().map_err(|source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if stack.contains(&canonical) {
        return Err(ManifestError::IncludeCycle {
            path: stack.last().cloned().unwrap_or_default(),
            again: path.to_path_buf(),
        });
    }
    stack.push(canonical);
    let source = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file: ManifestFile =
        toml::from_str(&source).map_err(|e| syntax_error(path, &source, &e))?;
    let mut merged = MergedFile::default();
    let base = path.parent().unwrap_or(Path::new("."));
    for include in &file.include {
        let included = read_merged(&base.join(include), stack, text)?;
        merged.absorb(included);
    }
    text.push_str(&format!("# ---- {} ----\n{source}\n", path.display()));
    let strategy_count = file.strategy.len();
    merged.absorb(MergedFile {
        strategy_origins: vec![(path.to_path_buf(), source.clone()); strategy_count],
        raw: file,
    });
    stack.pop();
    Ok(merged)
}

/// A merged raw manifest plus, per strategy block, the file and text it came from (strategy
/// knobs are checked after merging, and their errors must still point into the right file).
#[derive(Default)]
struct MergedFile {
    raw: ManifestFile,
    strategy_origins: Vec<(PathBuf, String)>,
}

impl std::ops::Deref for MergedFile {
    type Target = ManifestFile;
    fn deref(&self) -> &ManifestFile {
        &self.raw
    }
}

impl MergedFile {
    fn absorb(&mut self, later: MergedFile) {
        let MergedFile {
            raw,
            strategy_origins,
        } = later;
        let into = &mut self.raw;
        into.name = raw.name.or(into.name.take());
        into.description = raw.description.or(into.description.take());
        into.seed = raw.seed.or(into.seed);
        into.backend = raw.backend.or(into.backend.take());
        into.batch_size = raw.batch_size.or(into.batch_size);
        into.throughput_tok_s = raw.throughput_tok_s.or(into.throughput_tok_s);
        into.bootstrap_resamples = raw.bootstrap_resamples.or(into.bootstrap_resamples);
        into.unreachable_targets = raw.unreachable_targets.or(into.unreachable_targets);
        into.model.extend(raw.model);
        into.dataset.extend(raw.dataset);
        into.strategy.extend(raw.strategy);
        self.strategy_origins.extend(strategy_origins);
        for (name, profile) in raw.profile {
            let slot = into.profile.entry(name).or_default();
            slot.limit = profile.limit.or(slot.limit);
            slot.datasets = profile.datasets.or(slot.datasets.take());
            slot.strategies = profile.strategies.or(slot.strategies.take());
            slot.target_skip_ratios = profile
                .target_skip_ratios
                .or(slot.target_skip_ratios.take());
            slot.max_new_tokens = profile.max_new_tokens.or(slot.max_new_tokens);
        }
    }
}

fn strategy_origins(merged: &MergedFile) -> impl Iterator<Item = (PathBuf, String)> + '_ {
    merged.strategy_origins.iter().cloned()
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
    let knobs = serde_json::to_value(&table).map_err(|e| at(e.to_string()))?;
    let mut configs = Vec::with_capacity(targets.len());
    for target in targets {
        if let Some(t) = target
            && !(0.0..1.0).contains(&t)
        {
            return Err(at(format!("target_skip_ratio {t} is outside [0, 1)")));
        }
        let mut config: StrategyConfig = serde_json::from_value(knobs.clone())
            .map_err(|e| at(format!("strategy {name:?} ({label}): {e}")))?;
        if let Some(t) = target {
            config.set_target_skip_ratio(t);
        }
        configs.push(config);
    }
    Ok(StrategyBlock {
        label,
        name,
        configs,
    })
}

fn syntax_error(path: &Path, source: &str, err: &toml::de::Error) -> ManifestError {
    let (line, column) = err
        .span()
        .map_or((0, 0), |span| line_column(source, span.start));
    ManifestError::Syntax {
        path: path.to_path_buf(),
        line,
        column,
        message: err.message().to_owned(),
    }
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const COMMON: &str = r#"
seed = 7
batch_size = 2

[[model]]
name = "smollm2-135m"
spec = "smollm2-135m"

[profile.smoke]
limit = 3
target_skip_ratios = [0.3]
"#;

    const MAIN: &str = r#"
include = ["common.toml"]
name = "demo"

[[dataset]]
name = "xsum"
max_new_tokens = 48
max_source_tokens = 400

[[dataset]]
name = "e2e"
max_new_tokens = 32

[[strategy]]
name = "full"

[[strategy]]
name = "hsd"
target_skip_ratio = [0.2, 0.4]

[[strategy]]
name = "hsd"
label = "hsd-none"
kv_fill = "none"
target_skip_ratio = [0.2]

[profile.smoke]
datasets = ["e2e"]
"#;

    #[test]
    fn includes_merge_and_the_grid_expands_in_order() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "common.toml", COMMON);
        let manifest = Manifest::load(&write(dir.path(), "main.toml", MAIN)).unwrap();
        assert_eq!(
            (manifest.name.as_str(), manifest.seed, manifest.batch_size),
            ("demo", 7, 2)
        );
        assert!(manifest.text.contains("common.toml") && manifest.text.contains("hsd-none"));

        let all = manifest.expand(None, None).unwrap();
        let ids: Vec<&str> = all.runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "smollm2-135m/xsum/full",
                "smollm2-135m/xsum/hsd@0.20",
                "smollm2-135m/xsum/hsd@0.40",
                "smollm2-135m/xsum/hsd-none@0.20",
                "smollm2-135m/e2e/full",
                "smollm2-135m/e2e/hsd@0.20",
                "smollm2-135m/e2e/hsd@0.40",
                "smollm2-135m/e2e/hsd-none@0.20",
            ]
        );
        assert_eq!(all.limit, None);
        assert_eq!(
            all.datasets[1].metrics(),
            ["bleu", "meteor", "rouge", "cider", "chrf"]
        );

        // The smoke profile merges the included limit and ratios with the local dataset filter.
        let smoke = manifest.expand(Some("smoke"), None).unwrap();
        let ids: Vec<&str> = smoke.runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "smollm2-135m/e2e/full",
                "smollm2-135m/e2e/hsd@0.30",
                "smollm2-135m/e2e/hsd-none@0.30"
            ]
        );
        assert_eq!(smoke.limit, Some(3));
        assert_eq!(
            manifest.expand(Some("smoke"), Some(9)).unwrap().limit,
            Some(9)
        );
        assert!(
            manifest
                .expand(Some("nope"), None)
                .unwrap_err()
                .to_string()
                .contains("no [profile.nope]")
        );
    }

    #[test]
    fn unreachable_targets_are_skipped_or_refused_as_the_manifest_says() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "common.toml", COMMON);
        let main = MAIN.replace(
            "name = \"hsd\"\nlabel = \"hsd-none\"\nkv_fill = \"none\"",
            "name = \"static\"",
        );
        let manifest = Manifest::load(&write(dir.path(), "main.toml", &main)).unwrap();
        let runs = manifest.expand(None, None).unwrap().runs;
        let run = |id: &str| runs.iter().find(|r| r.id == id).unwrap();

        // `static` reaches only s/(s+1); HSD reaches 0.4 at 30 layers.
        let reason = manifest
            .skip_reason(run("smollm2-135m/e2e/static@0.20"), 30, 32)
            .unwrap()
            .expect("0.2 is out of static's reach");
        assert!(reason.contains("out of reach"), "{reason}");
        assert_eq!(
            manifest
                .skip_reason(run("smollm2-135m/e2e/hsd@0.40"), 30, 32)
                .unwrap(),
            None
        );

        let strict = write(
            dir.path(),
            "strict.toml",
            &format!("unreachable_targets = \"error\"\n{main}"),
        );
        let strict = Manifest::load(&strict).unwrap();
        assert!(
            strict
                .skip_reason(run("smollm2-135m/e2e/static@0.20"), 30, 32)
                .is_err()
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "common.toml",
            &COMMON.replace("batch_size = 2", "batch_sise = 2"),
        );
        let err = Manifest::load(&write(dir.path(), "main.toml", MAIN))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("common.toml:3:1:") && err.contains("batch_sise"),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "common.toml", COMMON);
        let bad_knob = MAIN.replace("kv_fill = \"none\"", "kv_fil = \"none\"");
        let err = Manifest::load(&write(dir.path(), "main.toml", &bad_knob))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("main.toml:") && err.contains("kv_fil"),
            "{err}"
        );

        let bad_dataset = MAIN.replace("max_source_tokens = 400", "max_source_tokns = 400");
        let err = Manifest::load(&write(dir.path(), "main.toml", &bad_dataset))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("main.toml:8:1:") && err.contains("max_source_tokns"),
            "{err}"
        );
    }

    #[test]
    fn invalid_grids_and_include_cycles_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "common.toml", COMMON);
        let duplicate = MAIN.replace("label = \"hsd-none\"\n", "");
        let err = Manifest::load(&write(dir.path(), "main.toml", &duplicate))
            .unwrap_err()
            .to_string();
        assert!(err.contains("share the label 'hsd'"), "{err}");

        let out_of_range = MAIN.replace("[0.2, 0.4]", "[0.2, 1.4]");
        let err = Manifest::load(&write(dir.path(), "main.toml", &out_of_range))
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside [0, 1)"), "{err}");

        write(dir.path(), "a.toml", "include = [\"b.toml\"]\n");
        write(dir.path(), "b.toml", "include = [\"a.toml\"]\n");
        let err = Manifest::load(&dir.path().join("a.toml")).unwrap_err();
        assert!(matches!(err, ManifestError::IncludeCycle { .. }), "{err}");
    }

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }
}
