//! What the decoding tests share: the tiny model of every architecture, and a strategy of simple
//! rules that covers fixed skips with either K/V fill, plans that change with the step, and
//! exits from the first step or from the third.

// Each test file uses the rules it needs.
#![allow(dead_code)]

use std::path::PathBuf;

use hsd_model::{LoadedModel, load_model};
use hsd_skip::{KvFill, LayerPlan, LayerSet, LayerSignal, SignalKind, StepContext, Strategy};

pub const ARCHS: [&str; 4] = ["gpt2", "llama", "qwen2", "phi"];

/// The tiny random model of `arch` (`tests/fixtures/tiny/<arch>`) on the test backend.
pub fn tiny(arch: &str) -> LoadedModel {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny")
        .join(arch);
    load_model(dir.to_str().unwrap(), crate::backend::test_backend()).unwrap()
}

#[derive(Clone, Copy, Debug)]
pub enum Rule {
    /// Every layer.
    Full,
    /// Every layer but the first.
    SkipFirst(KvFill),
    /// Only the last layer on odd steps, every layer on even ones.
    SkipOnOddSteps(KvFill),
    /// Checks every layer and exits after the first, at every step.
    ExitAfterFirst,
    /// Checks every layer and exits after the first on odd steps.
    ExitOnOddSteps,
    /// `SkipOnOddSteps(None)` for the first two steps, then `ExitOnOddSteps`.
    ExitFromStepThree,
}

impl Strategy for Rule {
    fn name(&self) -> &str {
        "rule"
    }

    fn plan(&mut self, cx: &StepContext) -> LayerPlan {
        let layers = cx.layers;
        let checking = LayerPlan::full(layers).with_checks(LayerSet::all(layers));
        match *self {
            Rule::Full => LayerPlan::full(layers),
            Rule::SkipFirst(kv_fill) => LayerPlan {
                run: LayerSet::from_fn(layers, |l| l != 0),
                kv_fill,
                checks: LayerSet::empty(layers),
            },
            Rule::SkipOnOddSteps(kv_fill) => LayerPlan {
                run: LayerSet::from_fn(layers, |l| cx.t.is_multiple_of(2) || l == layers - 1),
                kv_fill,
                checks: LayerSet::empty(layers),
            },
            Rule::ExitAfterFirst | Rule::ExitOnOddSteps => checking,
            Rule::ExitFromStepThree if cx.t >= 3 => checking,
            Rule::ExitFromStepThree => Rule::SkipOnOddSteps(KvFill::None).plan(cx),
        }
    }

    fn signal_kind(&self) -> SignalKind {
        SignalKind::Hidden
    }

    fn exit_after(&mut self, cx: &StepContext, layer: usize, _: &[LayerSignal<'_>]) -> bool {
        layer == 0
            && match self {
                Rule::ExitAfterFirst => true,
                Rule::ExitOnOddSteps | Rule::ExitFromStepThree => cx.t % 2 == 1,
                _ => false,
            }
    }
}
