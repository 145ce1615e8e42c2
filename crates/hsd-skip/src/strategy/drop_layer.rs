//! Layer importance: every token runs every layer except one, `layer` (1-based, as the
//! papers number layers), at every decoding step. Sweeping `layer` over `1..=L` measures what
//! each layer contributes to a model that was trained with all of them, the question behind
//! every rule of which layers to skip (HSD's drops layer 1; SkipDecode's the bottom ones).

use serde::{Deserialize, Serialize};

use crate::knobs::{StrategyKnobs, name_and_target};
use crate::schedule::check_shape;
use crate::strategy::fixed_set::FixedSet;
use crate::{KvFill, LayerSet, SkipError, Strategy};

const NAME: &str = "drop";

/// The manifest form of a one-layer drop, which runs as a [`FixedSet`]. A manifest may give
/// `layer` as a list, one run per entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropConfig {
    /// The skipped layer, 1-based: required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    /// What the skipped layer writes to the cache (default `propagate`, as HSD decodes).
    #[serde(default)]
    pub kv_fill: KvFill,
    /// Not a knob of this strategy (it skips exactly one layer): an error when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_skip_ratio: Option<f64>,
}

impl DropConfig {
    pub fn build(&self, layers: usize) -> Result<FixedSet, SkipError> {
        let invalid = |reason: String| SkipError::InvalidKnob {
            strategy: NAME,
            knob: "layer",
            reason,
        };
        let layer = self.layer.ok_or_else(|| invalid("is required".into()))?;
        if layer == 0 || layer > layers {
            return Err(invalid(format!(
                "= {layer} is not a layer of 1..={layers} (1-based)"
            )));
        }
        Ok(FixedSet::new(
            NAME,
            LayerSet::from_fn(layers, |j| j + 1 != layer),
            self.kv_fill,
        ))
    }
}

impl StrategyKnobs for DropConfig {
    name_and_target!(NAME);

    fn run_suffix(&self) -> Option<String> {
        self.layer.map(|layer| format!("L{layer:02}"))
    }

    fn solve(&self, layers: usize, max_new_tokens: usize) -> Result<Self, SkipError> {
        check_shape(NAME, layers, max_new_tokens)?;
        if let Some(target) = self.target_skip_ratio {
            return Err(SkipError::InvalidKnob {
                strategy: NAME,
                knob: "target_skip_ratio",
                reason: format!(
                    "= {target}: `drop` skips exactly one layer (1/{layers}), set `layer` instead"
                ),
            });
        }
        self.build(layers)?;
        Ok(self.clone())
    }

    fn strategy(
        &self,
        layers: usize,
        _max_new_tokens: usize,
    ) -> Result<Box<dyn Strategy + Send>, SkipError> {
        Ok(Box::new(self.build(layers)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StepContext;

    fn config(layer: usize) -> DropConfig {
        DropConfig {
            layer: Some(layer),
            ..DropConfig::default()
        }
    }

    #[test]
    fn only_the_named_layer_is_skipped_at_every_step() {
        let mut strategy = config(1).solved_strategy(4, 8).unwrap();
        for t in 1..8 {
            let cx = StepContext {
                t,
                max_new_tokens: 8,
                prompt_len: 5,
                layers: 4,
            };
            let plan = strategy.plan(&cx);
            assert_eq!(plan.run.iter().collect::<Vec<_>>(), [1, 2, 3]);
            assert_eq!(plan.kv_fill, KvFill::Propagate);
        }
        assert_eq!(config(4).build(4).unwrap().run().count(), 3);
        assert!(!config(4).build(4).unwrap().run().contains(3));
    }

    #[test]
    fn a_layer_outside_the_model_or_a_target_is_an_error() {
        for bad in [0, 5] {
            let err = config(bad).solve(4, 8).unwrap_err().to_string();
            assert!(err.contains("1..=4"), "{err}");
        }
        assert!(DropConfig::default().solve(4, 8).is_err());
        let targeted = DropConfig {
            target_skip_ratio: Some(0.5),
            ..config(2)
        };
        let err = targeted.solve(4, 8).unwrap_err().to_string();
        assert!(err.contains("set `layer` instead"), "{err}");
        assert_eq!(config(7).run_suffix().as_deref(), Some("L07"));
    }
}
