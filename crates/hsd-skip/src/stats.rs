//! Per-sequence accounting of what the decoder did: layers run, skipped and propagated per
//! generated token, the measured skip ratio, and decode FLOPs by component.
//!
//! FLOPs count matrix products only, a multiply-add being 2 FLOPs; norms, softmax, activations,
//! rotary embeddings and residual adds are left out (they are O(d) per layer, against O(d^2)).
//! With `d` the hidden size, `h` heads, `g` K/V heads, `e` the head dimension, `m` the MLP
//! width, `V` the vocabulary and `c` the positions a layer attends over, one token costs:
//!
//! | component | FLOPs |
//! |---|---|
//! | attention of a layer that runs | `2*d*h*e` (Q) `+ 4*d*g*e` (K, V) `+ 2*h*e*d` (O) `+ 4*h*e*c` (scores, weighted values) |
//! | MLP of a layer that runs | `4*d*m`, or `6*d*m` gated (SwiGLU) |
//! | K/V propagation at a skipped layer | `4*d*g*e` |
//! | LM head, once per token | `2*d*V` |
//! | a check with [`SignalKind::Probs`] | `2*d*V` (final norm + LM head on the state) |
//! | a check with [`SignalKind::Hidden`] | `6*d` (the three dot products of a cosine) |
//!
//! `c` is exact per layer: the trace's cache length less the earlier generated positions that
//! left no K/V at that layer (skipped with `kv_fill = none`); the prompt always has K/V.

use serde::{Deserialize, Serialize};

use crate::{ModelShapes, SignalKind, SkipError, StepTrace};

/// Decode FLOPs by component.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Flops {
    pub attention: u64,
    pub mlp: u64,
    pub kv_propagation: u64,
    pub lm_head: u64,
    pub checks: u64,
}

impl Flops {
    pub fn total(&self) -> u64 {
        self.attention + self.mlp + self.kv_propagation + self.lm_head + self.checks
    }
}

impl std::ops::AddAssign for Flops {
    fn add_assign(&mut self, other: Self) {
        self.attention += other.attention;
        self.mlp += other.mlp;
        self.kv_propagation += other.kv_propagation;
        self.lm_head += other.lm_head;
        self.checks += other.checks;
    }
}

fn n(x: usize) -> u64 {
    x as u64
}

impl ModelShapes {
    /// One layer's attention for one token attending over `context_len` positions.
    pub fn attention_flops(&self, context_len: usize) -> u64 {
        let (d, q, kv) = (
            n(self.hidden),
            n(self.heads * self.head_dim),
            n(self.kv_heads * self.head_dim),
        );
        2 * d * q + 4 * d * kv + 2 * q * d + 4 * q * n(context_len)
    }

    /// One layer's MLP for one token.
    pub fn mlp_flops(&self) -> u64 {
        let matrices = if self.gated_mlp { 3 } else { 2 };
        2 * matrices * n(self.hidden) * n(self.intermediate)
    }

    /// The K and V projections of one skipped layer for one token.
    pub fn kv_propagation_flops(&self) -> u64 {
        4 * n(self.hidden) * n(self.kv_heads * self.head_dim)
    }

    /// The LM head for one token.
    pub fn lm_head_flops(&self) -> u64 {
        2 * n(self.hidden) * n(self.vocab)
    }

    /// One exit check.
    pub fn check_flops(&self, kind: SignalKind) -> u64 {
        match kind {
            SignalKind::Probs => self.lm_head_flops(),
            SignalKind::Hidden => 6 * n(self.hidden),
        }
    }
}

/// Vanilla decoding's FLOPs for tokens attending over `context_lens` positions (one entry per
/// token, the cache length including the token).
pub fn vanilla_flops(shapes: &ModelShapes, context_lens: impl IntoIterator<Item = usize>) -> Flops {
    let mut flops = Flops::default();
    for context_len in context_lens {
        flops.attention += n(shapes.layers) * shapes.attention_flops(context_len);
        flops.mlp += n(shapes.layers) * shapes.mlp_flops();
        flops.lm_head += shapes.lm_head_flops();
    }
    flops
}

/// What one generated token cost.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TokenStats {
    pub ran: usize,
    pub skipped: usize,
    /// Skipped layers that computed K/V.
    pub propagated: usize,
    pub checks: usize,
    pub exited_after: Option<usize>,
    pub context_len: usize,
    pub flops: Flops,
}

/// The accumulator for one sequence, fed one [`StepTrace`] per generated token.
#[derive(Clone, Debug)]
pub struct SkipStats {
    shapes: ModelShapes,
    /// Per layer, the generated positions so far that left no K/V there.
    missing_kv: Vec<usize>,
    tokens: Vec<TokenStats>,
    flops: Flops,
    vanilla: Flops,
}

/// The per-sequence totals, as a record stores them.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct StatsSummary {
    pub tokens: usize,
    pub skip_ratio: f64,
    pub mean_layers: f64,
    pub flops: Flops,
    pub vanilla_flops: Flops,
    pub flops_ratio: f64,
}

impl SkipStats {
    pub fn new(shapes: ModelShapes) -> Self {
        Self {
            shapes,
            missing_kv: vec![0; shapes.layers],
            tokens: Vec::new(),
            flops: Flops::default(),
            vanilla: Flops::default(),
        }
    }

    /// Adds one generated token.
    pub fn record(&mut self, trace: &StepTrace) -> Result<&TokenStats, SkipError> {
        let layers = self.shapes.layers;
        let token = self.tokens.len();
        for (what, set) in [("ran", &trace.ran), ("propagated", &trace.propagated)] {
            if set.universe() != layers {
                return Err(SkipError::TraceShape {
                    token,
                    what,
                    got: set.universe(),
                    expected: layers,
                });
            }
        }
        let shapes = &self.shapes;
        let mut flops = Flops {
            lm_head: shapes.lm_head_flops(),
            ..Flops::default()
        };
        flops.checks = n(trace.checks) * shapes.check_flops(trace.check_kind);
        let mut propagated = 0;
        for layer in 0..layers {
            if trace.ran.contains(layer) {
                let attended = trace
                    .context_len
                    .saturating_sub(self.missing_kv[layer])
                    .max(1);
                flops.attention += shapes.attention_flops(attended);
                flops.mlp += shapes.mlp_flops();
            } else if trace.propagated.contains(layer) {
                flops.kv_propagation += shapes.kv_propagation_flops();
                propagated += 1;
            } else {
                self.missing_kv[layer] += 1;
            }
        }
        self.flops += flops;
        self.vanilla += vanilla_flops(shapes, [trace.context_len]);
        let ran = trace.ran.count();
        self.tokens.push(TokenStats {
            ran,
            skipped: layers - ran,
            propagated,
            checks: trace.checks,
            exited_after: trace.exited_after,
            context_len: trace.context_len,
            flops,
        });
        Ok(&self.tokens[token])
    }

    pub fn tokens(&self) -> &[TokenStats] {
        &self.tokens
    }

    /// Skipped layer applications over all, generated tokens only; 0 before any token.
    pub fn skip_ratio(&self) -> f64 {
        let slots = self.tokens.len() * self.shapes.layers;
        if slots == 0 {
            return 0.0;
        }
        self.tokens.iter().map(|t| t.skipped).sum::<usize>() as f64 / slots as f64
    }

    pub fn flops(&self) -> Flops {
        self.flops
    }

    /// Vanilla decoding's FLOPs for the same tokens and context lengths.
    pub fn vanilla_flops(&self) -> Flops {
        self.vanilla
    }

    /// `flops / vanilla_flops` in totals; 1 before any token.
    pub fn flops_ratio(&self) -> f64 {
        match self.vanilla.total() {
            0 => 1.0,
            vanilla => self.flops.total() as f64 / vanilla as f64,
        }
    }

    pub fn summary(&self) -> StatsSummary {
        let tokens = self.tokens.len();
        StatsSummary {
            tokens,
            skip_ratio: self.skip_ratio(),
            mean_layers: if tokens == 0 {
                0.0
            } else {
                self.tokens.iter().map(|t| t.ran).sum::<usize>() as f64 / tokens as f64
            },
            flops: self.flops,
            vanilla_flops: self.vanilla,
            flops_ratio: self.flops_ratio(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LayerSet;

    const GPT2_SMALL: ModelShapes = ModelShapes {
        layers: 12,
        hidden: 768,
        intermediate: 3072,
        heads: 12,
        kv_heads: 12,
        head_dim: 64,
        vocab: 50257,
        gated_mlp: false,
    };

    const SMOLLM2_135M: ModelShapes = ModelShapes {
        layers: 30,
        hidden: 576,
        intermediate: 1536,
        heads: 9,
        kv_heads: 3,
        head_dim: 64,
        vocab: 49152,
        gated_mlp: true,
    };

    fn full_trace(layers: usize, context_len: usize) -> StepTrace {
        StepTrace {
            ran: LayerSet::all(layers),
            propagated: LayerSet::empty(layers),
            checks: 0,
            check_kind: SignalKind::Hidden,
            exited_after: None,
            context_len,
        }
    }

    /// Full decoding of tokens at cache lengths `first..first + count`.
    fn full_flops(shapes: ModelShapes, first: usize, count: usize) -> u64 {
        let mut stats = SkipStats::new(shapes);
        for c in first..first + count {
            stats.record(&full_trace(shapes.layers, c)).unwrap();
        }
        assert_eq!(stats.skip_ratio(), 0.0);
        assert_eq!(stats.flops(), stats.vanilla_flops());
        stats.flops().total()
    }

    #[test]
    fn full_gpt2_small_matches_the_hand_derived_count() {
        // Per layer: QKV 2*768*2304 + O 2*768*768 + scores 4*768*c + MLP 2*2*768*3072,
        // i.e. 14_155_776 + 3_072*c; plus the LM head 2*768*50257 = 77_194_752 per token.
        // Ten tokens at c = 5..=14 (sum 95): 12 * (10 * 14_155_776 + 3_072 * 95) + 10 * 77_194_752.
        let expected: u64 = 12 * (10 * 14_155_776 + 3_072 * 95) + 10 * 77_194_752;
        assert_eq!(expected, 2_474_142_720);
        assert_eq!(full_flops(GPT2_SMALL, 5, 10), expected);
    }

    #[test]
    fn full_smollm2_135m_matches_the_hand_derived_count() {
        // Per layer: Q 2*576*576 = 663_552, K+V 4*576*192 = 442_368, O 663_552,
        // scores 4*576*c = 2_304*c, gated MLP 6*576*1536 = 5_308_416: 7_077_888 + 2_304*c.
        // LM head 2*576*49152 = 56_623_104. Four tokens at c = 100..=103 (sum 406).
        let expected: u64 = 30 * (4 * 7_077_888 + 2_304 * 406) + 4 * 56_623_104;
        assert_eq!(expected, 1_103_901_696);
        assert_eq!(full_flops(SMOLLM2_135M, 100, 4), expected);
    }

    #[test]
    fn skipped_layers_without_kv_shorten_later_attention() {
        let shapes = ModelShapes {
            layers: 2,
            ..GPT2_SMALL
        };
        let mut stats = SkipStats::new(shapes);
        let skip_top = StepTrace {
            ran: LayerSet::from_indices(2, [0]),
            ..full_trace(2, 10)
        };
        stats.record(&skip_top).unwrap();
        let second = stats.record(&full_trace(2, 11)).unwrap().clone();
        // The top layer attends over 10 of the 11 positions: token 0 left no K/V there.
        assert_eq!(
            second.flops.attention,
            shapes.attention_flops(11) + shapes.attention_flops(10)
        );
        assert_eq!(stats.skip_ratio(), 0.25);
        let saved = shapes.attention_flops(10) + shapes.mlp_flops() + 4 * 768;
        assert_eq!(stats.vanilla_flops().total() - stats.flops().total(), saved);
    }

    #[test]
    fn propagation_and_checks_are_charged() {
        let shapes = ModelShapes {
            layers: 3,
            ..SMOLLM2_135M
        };
        let mut stats = SkipStats::new(shapes);
        let trace = StepTrace {
            ran: LayerSet::from_indices(3, [0]),
            propagated: LayerSet::from_indices(3, [1, 2]),
            checks: 1,
            check_kind: SignalKind::Probs,
            exited_after: Some(0),
            context_len: 7,
        };
        let token = stats.record(&trace).unwrap();
        assert_eq!((token.ran, token.skipped, token.propagated), (1, 2, 2));
        assert_eq!(token.flops.kv_propagation, 2 * 4 * 576 * 192);
        assert_eq!(token.flops.checks, 2 * 576 * 49152);
        let lm_head = 2 * 576 * 49152;
        let expected = shapes.attention_flops(7)
            + shapes.mlp_flops()
            + token.flops.kv_propagation
            + 2 * lm_head;
        assert_eq!(stats.flops().total(), expected);
    }

    #[test]
    fn a_trace_of_the_wrong_depth_is_an_error() {
        let mut stats = SkipStats::new(GPT2_SMALL);
        let err = stats.record(&full_trace(11, 3)).unwrap_err();
        assert!(
            matches!(
                err,
                SkipError::TraceShape {
                    what: "ran",
                    got: 11,
                    expected: 12,
                    ..
                }
            ),
            "{err}"
        );
    }
}
