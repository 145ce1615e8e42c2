//! The strategy behind every static rule (`static`, `early_exit`, `searched`): one layer set
//! for every token, which the rule's config chooses.

use crate::{KvFill, LayerPlan, LayerSet, StepContext, Strategy};

/// The same layers run for every token; skipped ones fill K/V as `kv_fill` says.
#[derive(Clone, Debug, PartialEq)]
pub struct FixedSet {
    name: &'static str,
    run: LayerSet,
    kv_fill: KvFill,
}

impl FixedSet {
    pub(crate) fn new(name: &'static str, run: LayerSet, kv_fill: KvFill) -> Self {
        Self { name, run, kv_fill }
    }

    /// The layers that run.
    pub fn run(&self) -> &LayerSet {
        &self.run
    }
}

impl Strategy for FixedSet {
    fn name(&self) -> &str {
        self.name
    }

    fn plan(&mut self, cx: &StepContext) -> LayerPlan {
        LayerPlan {
            run: self.run.clone(),
            kv_fill: self.kv_fill,
            checks: LayerSet::empty(cx.layers),
        }
    }
}
