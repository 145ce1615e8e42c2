//! Experiment manifests: TOML files that name models, datasets, strategies and profiles, and
//! expand into the list of runs a sweep performs.
//!
//! Reading and merging includes ([`read`]), checking the merged whole ([`validate`]) and
//! expanding a profile into runs ([`expand`]) are separate steps, each its own file; the
//! blocks they pass along are plain data ([`blocks`]).

mod blocks;
mod error;
mod expand;
mod read;
mod specs;
mod validate;

#[cfg(test)]
mod tests;

pub use blocks::{Calibration, DatasetBlock, ModelBlock};
pub use error::ManifestError;
pub use expand::{Expansion, Run};
pub use specs::ModelSpecs;
pub use validate::Manifest;
