//! The contract between a skip strategy and the decoder that executes it.
//!
//! Layers are numbered from 0 in code. A strategy sees a [`StepContext`] before each generated
//! token and answers with a [`LayerPlan`]; the decoder runs the planned layers in order, offers
//! the strategy a [`LayerSignal`] after every layer listed in `checks`, and reports what it did
//! in a [`StepTrace`]. The prompt (prefill) always runs every layer and is never planned.

use serde::{Deserialize, Serialize};

use crate::exits::ExitObservations;

/// A subset of the `universe` layers `0..universe`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct LayerSet {
    members: Vec<bool>,
}

impl LayerSet {
    /// Every layer of a `universe`-layer stack.
    pub fn all(universe: usize) -> Self {
        Self {
            members: vec![true; universe],
        }
    }

    /// No layer of a `universe`-layer stack.
    pub fn empty(universe: usize) -> Self {
        Self {
            members: vec![false; universe],
        }
    }

    /// The layers `i` for which `keep(i)` holds.
    pub fn from_fn(universe: usize, keep: impl FnMut(usize) -> bool) -> Self {
        Self {
            members: (0..universe).map(keep).collect(),
        }
    }

    /// The layers listed in `layers`; indices at or past `universe` are ignored.
    pub fn from_indices(universe: usize, layers: impl IntoIterator<Item = usize>) -> Self {
        let mut set = Self::empty(universe);
        for layer in layers {
            set.insert(layer);
        }
        set
    }

    /// The number of layers in the stack this set is drawn from.
    pub fn universe(&self) -> usize {
        self.members.len()
    }

    /// The number of layers in the set.
    pub fn count(&self) -> usize {
        self.members.iter().filter(|&&m| m).count()
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    pub fn contains(&self, layer: usize) -> bool {
        self.members.get(layer).copied().unwrap_or(false)
    }

    /// Adds `layer`; a layer outside the universe is ignored.
    pub fn insert(&mut self, layer: usize) {
        if let Some(m) = self.members.get_mut(layer) {
            *m = true;
        }
    }

    pub fn remove(&mut self, layer: usize) {
        if let Some(m) = self.members.get_mut(layer) {
            *m = false;
        }
    }

    /// The member layers in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.members
            .iter()
            .enumerate()
            .filter(|(_, m)| **m)
            .map(|(i, _)| i)
    }

    /// Whether every member of `self` is a member of `other` (universes may differ).
    pub fn is_subset(&self, other: &LayerSet) -> bool {
        self.iter().all(|layer| other.contains(layer))
    }

    /// One 0/1 entry per layer of the universe, as `hsd plan --json` prints it.
    pub fn to_bits(&self) -> Vec<u8> {
        self.members.iter().map(|&m| u8::from(m)).collect()
    }
}

/// What a skipped layer writes into the KV cache for the current position.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvFill {
    /// Compute this position's K/V at the skipped layer from the hidden state that passes
    /// through it (CALM's state propagation), so later tokens can attend to it there.
    #[default]
    Propagate,
    /// Write nothing: later tokens attend at that layer only over positions that have K/V.
    None,
}

/// Which layers run for one generated token, and what skipped layers do.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LayerPlan {
    /// Layers that run their attention and MLP; every other layer is the identity.
    pub run: LayerSet,
    pub kv_fill: KvFill,
    /// Layers after which the strategy wants a [`LayerSignal`] and may stop the stack.
    /// Only layers that also run are checked.
    pub checks: LayerSet,
}

impl LayerPlan {
    /// Vanilla decoding: every layer runs, nothing is checked.
    pub fn full(layers: usize) -> Self {
        Self {
            run: LayerSet::all(layers),
            kv_fill: KvFill::Propagate,
            checks: LayerSet::empty(layers),
        }
    }

    /// This plan with `checks` replaced.
    pub fn with_checks(self, checks: LayerSet) -> Self {
        Self { checks, ..self }
    }
}

/// Where decoding stands when the plan for one token is asked for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StepContext {
    /// Index of the token being generated; 0 for the first new token.
    pub t: usize,
    /// The generation budget T.
    pub max_new_tokens: usize,
    /// Prompt length P in tokens. In a batch, the longest unpadded prompt of the batch.
    pub prompt_len: usize,
    /// Number of layers L of the model.
    pub layers: usize,
}

/// What a dynamic strategy needs to see after a checked layer.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// Only hidden states: cheap.
    #[default]
    Hidden,
    /// Also the softmax of the LM head applied to the final-normed hidden state (costs an LM
    /// head per check, which the accounting charges).
    Probs,
}

/// The view of one sequence of the batch after a checked layer (last position only).
#[derive(Clone, Copy, Debug)]
pub struct LayerSignal<'a> {
    /// Hidden state leaving the checked layer.
    pub hidden: &'a [f32],
    /// Hidden state that entered the checked layer.
    pub previous: &'a [f32],
    /// Next-token distribution from this layer, present when the strategy asks for
    /// [`SignalKind::Probs`].
    pub probs: Option<&'a [f32]>,
}

/// What the decoder actually did for one generated token of a batch.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StepTrace {
    /// Layers whose attention and MLP ran.
    pub ran: LayerSet,
    /// Skipped layers that still computed K/V for this position.
    pub propagated: LayerSet,
    /// Checks performed (each one a signal offered to the strategy).
    pub checks: usize,
    /// Whether those checks computed the LM-head softmax.
    pub check_kind: SignalKind,
    /// The layer after which the strategy stopped the stack, if it did.
    pub exited_after: Option<usize>,
    /// Positions attended over (cache length including this token), per layer that ran or
    /// propagated; the maximum over the batch's rows.
    pub context_len: usize,
}

impl StepTrace {
    /// One character per layer, as a run's records store a token's layers: `1` the layer ran,
    /// `p` it was skipped but computed this position's K/V (propagated), `0` it was skipped.
    pub fn layer_string(&self) -> String {
        (0..self.ran.universe())
            .map(|layer| {
                if self.ran.contains(layer) {
                    '1'
                } else if self.propagated.contains(layer) {
                    'p'
                } else {
                    '0'
                }
            })
            .collect()
    }
}

/// A strategy: the rule that turns a step context into a layer plan.
///
/// One plan serves the whole batch. Dynamic strategies exit when every sequence of the batch
/// would (the minimum confidence over the batch passes).
pub trait Strategy {
    /// The registry name (`hsd`, `skipdecode`, `calm`, ...).
    fn name(&self) -> &str;

    /// The plan for the token described by `cx`.
    fn plan(&mut self, cx: &StepContext) -> LayerPlan;

    /// What a check computes for this strategy.
    fn signal_kind(&self) -> SignalKind {
        SignalKind::Hidden
    }

    /// Called after each checked `layer` with one signal per sequence; `true` stops the stack.
    fn exit_after(
        &mut self,
        _cx: &StepContext,
        _layer: usize,
        _signals: &[LayerSignal<'_>],
    ) -> bool {
        false
    }

    /// Where each generated token of the last decode could have exited, as the strategy
    /// observed it (the oracle does; `None` for strategies that observe nothing). The runner
    /// reads it after decoding: [`ExitObservations::fewest_layers`] gives a row's
    /// `oracle_layers`.
    fn exit_observations(&self) -> Option<&ExitObservations> {
        None
    }
}

/// The dimensions FLOP accounting needs, filled in by the model crate.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ModelShapes {
    pub layers: usize,
    pub hidden: usize,
    /// MLP inner width.
    pub intermediate: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    /// SwiGLU (three matrices) or a plain two-matrix MLP.
    pub gated_mlp: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_string_marks_ran_propagated_and_skipped_layers() {
        let trace = StepTrace {
            ran: LayerSet::from_indices(5, [0, 3]),
            propagated: LayerSet::from_indices(5, [1, 3]),
            checks: 0,
            check_kind: SignalKind::Hidden,
            exited_after: None,
            context_len: 7,
        };
        assert_eq!(trace.layer_string(), "1p010");
    }
}
