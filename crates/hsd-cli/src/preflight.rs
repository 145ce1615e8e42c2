//! Checks before work: every dataset file, prompt template, few-shot pool, metric (METEOR's
//! WordNet) and model file a sweep will read is opened and parsed before the first token is
//! decoded, so a bad input late in the manifest fails in seconds instead of after the datasets
//! before it have run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use hsd_data::{Example, PromptTemplate, ShotPool};

use crate::adapters::{PROVENANCE, Provenance};
use crate::manifest::{DatasetBlock, Expansion, Manifest, ModelSpecs};
use crate::prompts::{dataset_spec, load_examples};

/// What the inputs of a sweep hold, once every one of them has been read.
#[derive(Debug, Default)]
pub struct Inputs {
    /// The evaluated examples of each dataset block the runs use, by index into
    /// `Expansion::datasets`: read once here, decoded from by the sweep.
    pub examples: BTreeMap<usize, Vec<Example>>,
    /// `(model, file)` per model that resolved.
    pub models: Vec<(String, String)>,
}

/// Reads every input of `expansion`'s runs, with model specs from `specs` (an optional model
/// without one is left out). Every problem found is listed in the one error.
pub fn check_inputs(
    manifest: &Manifest,
    expansion: &Expansion,
    data_root: &Path,
    specs: &ModelSpecs,
) -> anyhow::Result<Inputs> {
    let mut inputs = Inputs::default();
    let mut problems = Vec::new();
    let used: BTreeSet<usize> = expansion.runs.iter().map(|r| r.dataset_index).collect();
    for &index in &used {
        let block = &expansion.datasets[index];
        match check_dataset(block, expansion.limit, data_root) {
            Ok(examples) => {
                inputs.examples.insert(index, examples);
            }
            Err(e) => problems.push(format!("dataset {}: {e}", block.name)),
        }
    }
    // Metrics are built here too: METEOR's WordNet, missing, would otherwise fail the scoring
    // after every example has been decoded.
    let metric_names: BTreeSet<String> = used
        .iter()
        .flat_map(|&index| expansion.datasets[index].metrics())
        .collect();
    for name in metric_names {
        if let Err(e) = hsd_metrics::by_name(&name) {
            problems.push(format!("metric {name}: {e}"));
        }
    }
    let models: BTreeSet<&str> = expansion.runs.iter().map(|r| r.model.as_str()).collect();
    for block in manifest
        .models
        .iter()
        .filter(|m| models.contains(m.name.as_str()))
    {
        let path = specs
            .resolve(block)
            .map_err(anyhow::Error::from)
            .and_then(|spec| {
                spec.map(|spec| hsd_model::resolve_model_path(&spec))
                    .transpose()
                    .map_err(anyhow::Error::from)
            });
        match path {
            Ok(Some(path)) => inputs
                .models
                .push((block.name.clone(), path.display().to_string())),
            Ok(None) => {}
            Err(e) => problems.push(format!("model {}: {e}", block.name)),
        }
    }
    for block in manifest
        .models
        .iter()
        .filter(|m| models.contains(m.name.as_str()))
    {
        for (&index, examples) in &inputs.examples {
            let dataset = expansion.datasets[index].name;
            let uses = expansion
                .runs
                .iter()
                .any(|r| r.model == block.name && r.dataset_index == index);
            let Some(dir) = block.adapter_for(dataset).filter(|_| uses) else {
                continue;
            };
            // An optional model without its adapter for this dataset skips those runs.
            if block.optional && !dir.join(hsd_model::weights::ADAPTER_CONFIG).exists() {
                continue;
            }
            if let Err(e) = check_adapter(&dir, examples) {
                problems.push(format!("model {} on {dataset}: {e}", block.name));
            }
        }
    }
    match problems.as_slice() {
        [] => {}
        [problem] => anyhow::bail!("{}: {problem}", manifest.path.display()),
        _ => anyhow::bail!(
            "{}: {} input problems:\n  {}",
            manifest.path.display(),
            problems.len(),
            problems.join("\n  ")
        ),
    }
    Ok(inputs)
}

/// Reads the adapter at `dir` and refuses it if it was trained (or held out for its eval
/// loss) on one of `examples`.
fn check_adapter(dir: &Path, examples: &[Example]) -> anyhow::Result<()> {
    hsd_model::weights::PeftAdapter::read(dir)?;
    if let Some(provenance) = Provenance::read(dir)? {
        let seen = provenance.seen_ids();
        if let Some(example) = examples.iter().find(|e| seen.contains(e.id.as_str())) {
            anyhow::bail!(
                "example `{}` is one adapter {} was trained on ({}: train_ids/eval_ids); \
                 evaluate other examples or train on another split",
                example.id,
                dir.display(),
                PROVENANCE
            );
        }
    }
    Ok(())
}

/// Loads the block's examples, template and few-shot pool; returns the examples that run.
fn check_dataset(
    block: &DatasetBlock,
    limit: Option<usize>,
    data_root: &Path,
) -> anyhow::Result<Vec<Example>> {
    let examples = load_examples(block, limit, data_root)?;
    match &block.template {
        Some(path) => PromptTemplate::from_file(path)?,
        None => PromptTemplate::builtin(block.name)?,
    };
    if block.shots > 0 {
        ShotPool::for_evaluation(&dataset_spec(block, None), data_root, block.shots, None)?;
    }
    Ok(examples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_missing_input_is_listed_before_any_work() {
        let dir = tempfile::tempdir().unwrap();
        let manifest_path = dir.path().join("m.toml");
        std::fs::write(
            &manifest_path,
            r#"
[[model]]
name = "tiny"
spec = "/nonexistent/tiny.gguf"

[[dataset]]
name = "e2e"
path = "/nonexistent/e2e.jsonl"
max_new_tokens = 8
metrics = ["bleu", "bleurt"]

[[strategy]]
name = "full"
"#,
        )
        .unwrap();
        let manifest = Manifest::load(&manifest_path).unwrap();
        let expansion = manifest.expand(None, None).unwrap();
        let err = check_inputs(&manifest, &expansion, dir.path(), &ModelSpecs::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("3 input problems"), "{err}");
        assert!(err.contains("metric bleurt:"), "{err}");
        assert!(err.contains("dataset e2e: /nonexistent/e2e.jsonl"), "{err}");
        assert!(
            err.contains("model tiny:") && err.contains("/nonexistent/tiny.gguf"),
            "{err}"
        );
    }
}
