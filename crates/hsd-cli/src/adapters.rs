//! Task adapters at load time: a PEFT LoRA directory merged into the base weights, checked
//! against the base it was trained on (`hsd.json`'s sha256), so decoding pays nothing for it.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};
use hsd_model::weights::PeftAdapter;
use hsd_model::{Backend, LoadedModel, WeightMode, load_model_with};
use serde::{Deserialize, Serialize};

/// What `hsd finetune` writes beside an adapter.
pub const PROVENANCE: &str = "hsd.json";

/// The training record of an adapter (`hsd.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The fine-tuning manifest, its sha256 and text.
    pub manifest: String,
    pub manifest_sha256: String,
    pub manifest_text: String,
    pub variant: String,
    pub dataset: String,
    pub profile: String,
    pub base_model: String,
    /// sha256 of each base model file.
    pub base_sha256: Vec<String>,
    /// The split trained on, and the ids of every example trained on or held out for the
    /// eval loss: none of them may be evaluated with this adapter.
    pub train_split: String,
    pub train_ids: Vec<String>,
    pub eval_ids: Vec<String>,
    pub steps: usize,
    pub best_step: Option<usize>,
    pub best_eval_loss: Option<f64>,
    pub lora: hsd_train::LoraConfig,
    pub train: hsd_train::TrainConfig,
    pub git_commit: Option<String>,
    /// The backend that trained it (`flex`, `tch`, ...); absent in adapters from before the
    /// field existed.
    #[serde(default)]
    pub backend: Option<String>,
}

impl Provenance {
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(PROVENANCE);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let provenance =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(Some(provenance))
    }

    /// Every id this adapter has seen in training.
    pub fn seen_ids(&self) -> BTreeSet<&str> {
        self.train_ids
            .iter()
            .chain(&self.eval_ids)
            .map(String::as_str)
            .collect()
    }
}

/// `spec` on `backend`, weights held as `weights` says, with the adapter at `adapter` merged
/// in, if one is given.
pub fn load_adapted(
    spec: &str,
    backend: Backend,
    weights: WeightMode,
    adapter: Option<&Path>,
) -> Result<LoadedModel> {
    let mut model = load_model_with(spec, backend, weights)?;
    if let Some(dir) = adapter {
        merge_into(&mut model, dir)?;
    }
    Ok(model)
}

/// The drafter of lossless decoding when it reads other weights than the verifier: `spec` and
/// its adapter loaded again with `draft_weights`; `None` where `weights` already are those, so
/// the verifier drafts for itself.
pub fn load_drafter(
    spec: &str,
    backend: Backend,
    weights: WeightMode,
    draft_weights: WeightMode,
    adapter: Option<&Path>,
) -> Result<Option<LoadedModel>> {
    if draft_weights == weights {
        return Ok(None);
    }
    let drafter = load_adapted(spec, backend, draft_weights, adapter)
        .with_context(|| format!("loading the {draft_weights} drafter of {spec}"))?;
    let (native, projections) = drafter.decoder.native_projections();
    if draft_weights == WeightMode::Native && native == 0 {
        bail!(
            "draft weights `native`: {spec} holds no quantized blocks (0 of {projections} projections), so its drafter would read f32 as the verifier does"
        );
    }
    Ok(Some(drafter))
}

/// Merges the adapter at `dir` into `model`, refusing one trained on another base.
pub fn merge_into(model: &mut LoadedModel, dir: &Path) -> Result<()> {
    let adapter = PeftAdapter::read(dir)?;
    if let Some(provenance) = Provenance::read(dir)? {
        let base: Vec<&str> = model
            .source
            .files
            .iter()
            .map(|f| f.sha256.as_str())
            .collect();
        if provenance
            .base_sha256
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            != base
        {
            bail!(
                "{}: base_sha256: the adapter was trained on {} ({}), not on the model loaded from `{}` ({})",
                dir.join(PROVENANCE).display(),
                provenance.base_model,
                provenance.base_sha256.join(", "),
                model.source.spec,
                base.join(", ")
            );
        }
    }
    model
        .decoder
        .merge_adapter(&adapter)
        .with_context(|| format!("adapter {}", dir.display()))?;
    Ok(())
}
