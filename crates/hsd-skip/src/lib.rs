//! Layer-skipping strategies as per-token layer plans, with exact accounting.
//!
//! Pure logic: nothing here knows about tensors. `hsd-model` executes the plans.

mod plan;

pub use plan::{KvFill, LayerPlan, LayerSet, LayerSignal, ModelShapes, SignalKind, StepContext, StepTrace, Strategy};
