//! `hsd finetune`: LoRA adapters per dataset and variant (plain, skip-aware) from a
//! fine-tuning manifest, trained on the very prompts evaluation uses.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hsd_data::{DatasetName, Example, Mode};
use hsd_model::{Backend, LoadedModel};
use hsd_train::{Event, FineTune, TrainExample};
use indicatif::{ProgressBar, ProgressStyle};

use crate::adapters::{PROVENANCE, Provenance};
use crate::finetune_manifest::{FinetuneManifest, FinetuneProfile, TrainDataset, Variant};
use crate::manifest::{Manifest, ModelSpecs};
use crate::prompts::{PromptEncoder, load_examples};
use crate::results::{git_commit, hex_sha256};

#[derive(clap::Args)]
pub struct Args {
    /// A fine-tuning manifest, e.g. experiments/finetune.toml.
    manifest: PathBuf,
    #[arg(long, default_value = "full")]
    profile: String,
    /// Train only this dataset (repeatable).
    #[arg(long = "dataset")]
    datasets: Vec<DatasetName>,
    /// Train only this variant (repeatable).
    #[arg(long = "variant")]
    variants: Vec<String>,
    /// Continue each run from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Where adapters go; the manifest's `out` for the full profile, else
    /// `target/finetune/<profile>`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where the loss curves go (`<paper>/figures/finetune_loss.{png,svg}`); the full
    /// profile's default is `paper`, others write under their `--out`.
    #[arg(long)]
    paper: Option<PathBuf>,
    /// The backend, overriding the evaluation manifest's.
    #[arg(long)]
    backend: Option<Backend>,
}

/// The run's directory under an adapter's: checkpoints, the best adapter, the log.
const TRAINING_DIR: &str = "training";

pub fn run(args: Args) -> Result<()> {
    let (manifest, text) = FinetuneManifest::load(&args.manifest)?;
    let profile = manifest.profile(&args.manifest, &args.profile)?;
    let base_dir = args.manifest.parent().unwrap_or(Path::new("."));
    let evaluation = Manifest::load(&base_dir.join(&manifest.evaluation))?;
    let block = evaluation
        .models
        .iter()
        .find(|m| m.name == manifest.model)
        .with_context(|| {
            format!(
                "{}: model `{}` is not in {}",
                args.manifest.display(),
                manifest.model,
                manifest.evaluation.display()
            )
        })?;
    let spec = ModelSpecs::from_flags(&[])?
        .resolve(block)?
        .with_context(|| format!("model `{}` has no spec here", block.name))?;
    let backend = args.backend.unwrap_or(evaluation.backend);
    let mut model = hsd_model::load_model(&spec, backend)?;
    let data_root = hsd_data::data_root()?;
    let out = args.out.clone().unwrap_or_else(|| {
        if args.profile == "full" {
            manifest.out.clone()
        } else {
            PathBuf::from("target/finetune").join(&args.profile)
        }
    });
    let datasets = selected_datasets(&manifest, profile, &args.datasets)?;
    let variants: Vec<&Variant> = manifest
        .variants
        .iter()
        .filter(|v| args.variants.is_empty() || args.variants.contains(&v.name))
        .filter(|v| {
            profile
                .variants
                .as_ref()
                .is_none_or(|p| p.contains(&v.name))
        })
        .collect();
    if variants.is_empty() {
        bail!("no [[variant]] of {} is selected", args.manifest.display());
    }
    let manifest_sha256 = hex_sha256(text.as_bytes());
    for dataset in &datasets {
        let eval_block = evaluation
            .datasets
            .iter()
            .find(|d| d.name == dataset.name)
            .with_context(|| {
                format!(
                    "{}: dataset {} is not evaluated by {}, whose prompt it must share",
                    args.manifest.display(),
                    dataset.name,
                    manifest.evaluation.display()
                )
            })?;
        let train_block = dataset.prompt_block(eval_block);
        let limit = [dataset.limit, profile.limit].into_iter().flatten().min();
        let mut examples = load_examples(&train_block, None, &data_root)?;
        examples.drain(..dataset.skip_first.min(examples.len()));
        if let Some(limit) = limit {
            examples.truncate(limit);
        }
        let encoder = PromptEncoder::new(
            &model,
            &manifest.model,
            block.prompt_mode,
            evaluation.seed,
            &data_root,
        )?;
        let prompts = encoder.encode(&train_block, &examples)?;
        for variant in &variants {
            let config = manifest.train_config(&args.manifest, dataset, variant, profile)?;
            let (train, eval) = split_held_out(&examples, config.eval_examples, config.seed);
            let to_sequences = |picked: &[usize]| {
                sequences(&model, block.prompt_mode, &examples, &prompts, picked)
            };
            let (train_rows, eval_rows) = (to_sequences(&train)?, to_sequences(&eval)?);
            let dir = out.join(&variant.name).join(dataset.name.as_str());
            let training = dir.join(TRAINING_DIR);
            eprintln!(
                "{} / {}: {} training sequences from {} examples of {} {}, {} held out",
                variant.name,
                dataset.name,
                train_rows.len(),
                train.len(),
                dataset.name,
                dataset.split,
                eval.len()
            );
            let bar = ProgressBar::new(config.steps as u64);
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(format!("{} {}", variant.name, dataset.name));
            let pad_id = model.tokenizer()?.eos_ids().first().copied().unwrap_or(0);
            let outcome = FineTune {
                decoder: &mut model.decoder,
                lora: manifest.lora.clone(),
                config: config.clone(),
                train: train_rows,
                eval: eval_rows,
                pad_id,
                out: training.clone(),
                init: None,
            }
            .run(args.resume, &mut |event| match event {
                Event::Started { done, .. } => bar.set_position(done as u64),
                Event::Update(row) => {
                    bar.set_position(row.step as u64);
                    let eval = row
                        .eval_loss
                        .map_or(String::new(), |l| format!(" eval {l:.3}"));
                    bar.set_message(format!(
                        "loss {:.3}{eval} {:.0} tok/s",
                        row.train_loss,
                        row.tokens as f64 / row.seconds
                    ));
                }
                Event::Checkpoint { .. } => {}
            })?;
            bar.finish();
            for file in [
                hsd_model::weights::ADAPTER_CONFIG,
                hsd_model::weights::ADAPTER_WEIGHTS,
            ] {
                std::fs::copy(outcome.adapter_dir.join(file), dir.join(file))
                    .with_context(|| format!("copying {file} to {}", dir.display()))?;
            }
            std::fs::copy(
                training.join(hsd_train::LOG_FILE),
                dir.join(hsd_train::LOG_FILE),
            )?;
            let ids = |picked: &[usize]| picked.iter().map(|&i| examples[i].id.clone()).collect();
            let provenance = Provenance {
                manifest: args.manifest.display().to_string(),
                manifest_sha256: manifest_sha256.clone(),
                manifest_text: text.clone(),
                variant: variant.name.clone(),
                dataset: dataset.name.to_string(),
                profile: args.profile.clone(),
                base_model: spec.clone(),
                base_sha256: model
                    .source
                    .files
                    .iter()
                    .map(|f| f.sha256.clone())
                    .collect(),
                train_split: describe_split(dataset),
                train_ids: ids(&train),
                eval_ids: ids(&eval),
                steps: outcome.steps,
                best_step: outcome.best.map(|b| b.step),
                best_eval_loss: outcome.best.map(|b| b.eval_loss),
                lora: manifest.lora.clone(),
                train: config,
                git_commit: git_commit(),
                backend: Some(backend.name().to_owned()),
            };
            let mut json = serde_json::to_string_pretty(&provenance)?;
            json.push('\n');
            std::fs::write(dir.join(PROVENANCE), json)?;
            std::fs::remove_dir_all(&training)
                .with_context(|| format!("removing {}", training.display()))?;
            eprintln!(
                "{}: best eval loss {:?} after update {:?}",
                dir.display(),
                outcome.best.map(|b| b.eval_loss),
                outcome.best.map(|b| b.step)
            );
        }
    }
    let paper = args.paper.clone().unwrap_or_else(|| {
        if args.profile == "full" {
            PathBuf::from("paper")
        } else {
            out.join("paper")
        }
    });
    for path in crate::finetune_report::render_loss_curves(&out, &paper.join("figures"))? {
        println!("{}", path.display());
    }
    Ok(())
}

fn selected_datasets<'m>(
    manifest: &'m FinetuneManifest,
    profile: &FinetuneProfile,
    only: &[DatasetName],
) -> Result<Vec<&'m TrainDataset>> {
    let picked: Vec<&TrainDataset> = manifest
        .datasets
        .iter()
        .filter(|d| only.is_empty() || only.contains(&d.name))
        .filter(|d| {
            profile
                .datasets
                .as_ref()
                .is_none_or(|p| p.contains(&d.name))
        })
        .collect();
    if picked.is_empty() {
        bail!("no [[dataset]] of the fine-tuning manifest is selected");
    }
    Ok(picked)
}

fn describe_split(dataset: &TrainDataset) -> String {
    let mut text = match &dataset.path {
        Some(path) => path.display().to_string(),
        None => format!("{} {}", dataset.name, dataset.split),
    };
    if dataset.skip_first > 0 {
        text.push_str(&format!(
            ", after the first {} examples",
            dataset.skip_first
        ));
    }
    text
}

/// A seeded pick of `held_out` examples for the eval loss; the rest train.
fn split_held_out(examples: &[Example], held_out: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut state = seed ^ 0x005e_ed0f_e7a1;
    for i in (1..order.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        order.swap(i, ((state >> 33) as usize) % (i + 1));
    }
    let held = held_out.min(examples.len().saturating_sub(1));
    let mut eval: Vec<usize> = order[..held].to_vec();
    let mut train: Vec<usize> = order[held..].to_vec();
    eval.sort_unstable();
    train.sort_unstable();
    (train, eval)
}

/// One sequence per (example, reference): the evaluation prompt, then the reference and the
/// end-of-turn token the decoder stops at.
fn sequences(
    model: &LoadedModel,
    mode: Mode,
    examples: &[Example],
    prompts: &[Vec<u32>],
    picked: &[usize],
) -> Result<Vec<TrainExample>> {
    let tokenizer = model.tokenizer()?;
    let eos = *tokenizer
        .eos_ids()
        .first()
        .context("the tokenizer has no end-of-sequence token to end targets with")?;
    let mut out = Vec::new();
    for &i in picked {
        let example = &examples[i];
        for (j, reference) in example.references.iter().enumerate() {
            let text = match mode {
                Mode::Chat => reference.trim().to_string(),
                Mode::Plain => format!(" {}", reference.trim()),
            };
            let mut target = tokenizer
                .encode(&text, false)
                .map_err(|e| anyhow::anyhow!("tokenizing a reference of {}: {e}", example.id))?;
            target.push(eos);
            out.push(TrainExample {
                id: format!("{}#{j}", example.id),
                prompt: prompts[i].clone(),
                target,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The prompts a model trains on are the prompts it is evaluated with: for every dataset
    /// of the committed fine-tuning manifest, an example renders to the same token ids
    /// through the training block as through the evaluation manifest's block.
    #[test]
    fn training_prompts_are_the_evaluation_prompts() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let path = root.join("experiments/finetune.toml");
        let (manifest, _) = FinetuneManifest::load(&path).unwrap();
        let evaluation =
            Manifest::load(&root.join("experiments").join(&manifest.evaluation)).unwrap();
        let Ok(model) = hsd_model::load_model("smollm2-135m", evaluation.backend) else {
            eprintln!("notice: SmolLM2 is absent (HSD_MODELS); prompt identity not checked");
            return;
        };
        let Ok(data_root) = hsd_data::data_root() else {
            eprintln!("notice: no shared data; prompt identity not checked");
            return;
        };
        let block = evaluation
            .models
            .iter()
            .find(|m| m.name == manifest.model)
            .unwrap();
        let encoder = PromptEncoder::new(
            &model,
            &block.name,
            block.prompt_mode,
            evaluation.seed,
            &data_root,
        )
        .unwrap();
        for dataset in &manifest.datasets {
            let eval_block = evaluation
                .datasets
                .iter()
                .find(|d| d.name == dataset.name)
                .unwrap();
            let train_block = dataset.prompt_block(eval_block);
            let examples =
                load_examples(&train_block, Some(dataset.skip_first + 3), &data_root).unwrap();
            let train = encoder.encode(&train_block, &examples).unwrap();
            let eval = encoder.encode(eval_block, &examples).unwrap();
            assert_eq!(train, eval, "{}", dataset.name);
            assert!(train.iter().all(|ids| ids.len() > 8), "{}", dataset.name);
        }
    }
}
