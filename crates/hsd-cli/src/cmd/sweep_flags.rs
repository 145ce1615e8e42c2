//! Flags shared by the commands that run, reproduce or join a manifest's sweep.

use std::path::PathBuf;

use hsd_model::{Backend, WeightMode};

use crate::manifest::{Expansion, Manifest};

/// Which sweep: a manifest and the profile (and example limit) it expands with.
#[derive(clap::Args, Clone, Debug)]
pub struct SweepSelection {
    /// The manifest (`experiments/*.toml`).
    pub manifest: PathBuf,
    /// `smoke` (a handful of examples), `quick` (50 per dataset) or `full`.
    #[arg(long, default_value = "quick")]
    pub profile: String,
    /// Examples per dataset, overriding the profile.
    #[arg(long)]
    pub limit: Option<usize>,
}

impl SweepSelection {
    pub fn load(&self) -> anyhow::Result<(Manifest, Expansion)> {
        let manifest = Manifest::load(&self.manifest)?;
        let expansion = manifest.expand(Some(&self.profile), self.limit)?;
        Ok((manifest, expansion))
    }
}

/// Where the models come from and what runs them.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ModelFlags {
    /// `NAME=SPEC`: the spec for the manifest's model NAME (e.g. `gpt2=/models/gpt2`).
    #[arg(long = "model", value_name = "NAME=SPEC")]
    pub models: Vec<String>,
    /// The backend, overriding the manifest's.
    #[arg(long)]
    pub backend: Option<Backend>,
    /// `f32` (dequantized, the reference) or `native` (decode passes read the GGUF's own
    /// quantized blocks; attention over the cache and SwiGLU take fused kernels), overriding
    /// the manifest's `weights`.
    #[arg(long)]
    pub weights: Option<WeightMode>,
}
