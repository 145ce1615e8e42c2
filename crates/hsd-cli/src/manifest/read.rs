//! Reading one manifest file and the files it includes, merged into one raw manifest.
//!
//! Included files are read first; the including file then overrides their scalars and appends
//! to their `[[model]]`, `[[dataset]]` and `[[strategy]]` lists; `[profile.*]` tables merge by
//! name. Every key is checked by serde: an unknown or mistyped key is an error naming
//! `file:line:column`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hsd_model::{Backend, WeightMode};
use serde::{Deserialize, Deserializer};

use super::blocks::{DatasetBlock, ModelBlock, Profile, UnreachableTargets};
use super::error::ManifestError;

/// The raw form of one manifest file; every field optional so that included files can
/// supply part of a manifest.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ManifestFile {
    #[serde(default)]
    pub(super) include: Vec<PathBuf>,
    pub(super) name: Option<String>,
    pub(super) description: Option<String>,
    pub(super) seed: Option<u64>,
    #[serde(default, deserialize_with = "backend_name")]
    pub(super) backend: Option<Backend>,
    #[serde(default, deserialize_with = "weights_name")]
    pub(super) weights: Option<WeightMode>,
    pub(super) batch_size: Option<usize>,
    pub(super) throughput_tok_s: Option<f64>,
    pub(super) bootstrap_resamples: Option<usize>,
    pub(super) teacher_forced: Option<bool>,
    pub(super) unreachable_targets: Option<UnreachableTargets>,
    #[serde(default)]
    pub(super) model: Vec<ModelBlock>,
    #[serde(default)]
    pub(super) dataset: Vec<DatasetBlock>,
    #[serde(default)]
    pub(super) strategy: Vec<toml::Spanned<toml::Table>>,
    #[serde(default)]
    pub(super) profile: BTreeMap<String, Profile>,
}

/// `backend = "..."` read as a [`Backend`], so a misspelt name is a syntax error at its line.
fn backend_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Backend>, D::Error> {
    let name = String::deserialize(deserializer)?;
    name.parse().map(Some).map_err(serde::de::Error::custom)
}

/// `weights = "..."` read as a [`WeightMode`], so a misspelt mode is a syntax error at its line.
fn weights_name<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<WeightMode>, D::Error> {
    let name = String::deserialize(deserializer)?;
    name.parse().map(Some).map_err(serde::de::Error::custom)
}

/// Reads `path`, its includes first, merging into one raw manifest.
pub(super) fn read_merged(
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
pub(super) struct MergedFile {
    pub(super) raw: ManifestFile,
    pub(super) strategy_origins: Vec<(PathBuf, String)>,
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
        into.weights = raw.weights.or(into.weights.take());
        into.batch_size = raw.batch_size.or(into.batch_size);
        into.throughput_tok_s = raw.throughput_tok_s.or(into.throughput_tok_s);
        into.bootstrap_resamples = raw.bootstrap_resamples.or(into.bootstrap_resamples);
        into.teacher_forced = raw.teacher_forced.or(into.teacher_forced);
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
pub(super) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }
}
