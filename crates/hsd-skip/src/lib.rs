//! Layer-skipping strategies as per-token layer plans, with exact accounting.
//!
//! Pure logic: nothing here knows about tensors. `hsd-model` executes the plans. Layers are
//! 0-based in code; the rules in each strategy's documentation number them from 1 where the
//! papers do, and say so.

mod error;
mod exits;
mod knobs;
mod plan;
mod position;
mod registry;
pub mod report;
mod schedule;
mod stats;
pub mod strategy;

pub use error::SkipError;
pub use exits::{ExitObservations, OracleToken};
pub use plan::{
    KvFill, LayerPlan, LayerSet, LayerSignal, ModelShapes, SignalKind, StepContext, StepTrace,
    Strategy,
};
pub use position::Position;
pub use registry::StrategyConfig;
pub use schedule::{skip_ratio, static_schedule};
pub use stats::{Flops, SkipStats, StatsSummary, TokenStats, vanilla_flops};
pub use strategy::calm::{Calibration, Measure, calibrate_threshold};
pub use strategy::hsd::HsdConfig;
pub use strategy::oracle::Oracle;
pub use strategy::searched::{Removal, greedy_removal};
