//! The decoders against Hugging Face transformers on tiny random models (fixtures made by
//! `fixtures/make_fixtures.py`), and the plan executor's contract, on the backend
//! `backend::test_backend` picks.

mod backend;

use std::path::PathBuf;

use hsd_model::{Batch, Cache, Decoder, GenerateConfig, LoadedModel, Logits, load_model};
use hsd_skip::{KvFill, LayerPlan, LayerSet, LayerSignal, SignalKind, StepContext, Strategy};
use serde::Deserialize;

const ARCHS: [&str; 4] = ["gpt2", "llama", "qwen2", "phi"];
const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Reference {
    inputs: Vec<Vec<u32>>,
    full: Vec<Vec<Vec<f32>>>,
    cached: Vec<Vec<Vec<f32>>>,
    greedy: Vec<u32>,
    removed_layer: usize,
    layer_removed: Vec<Vec<Vec<f32>>>,
}

fn fixture(arch: &str) -> (LoadedModel, Reference) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny")
        .join(arch);
    let model = load_model(dir.to_str().unwrap(), backend::test_backend()).unwrap();
    let text = std::fs::read_to_string(dir.join("reference.json")).unwrap();
    (model, serde_json::from_str(&text).unwrap())
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Replays one plan at every step, optionally checking layers and never exiting.
struct Fixed {
    plan: LayerPlan,
    checks_seen: usize,
}

impl Fixed {
    fn new(plan: LayerPlan) -> Self {
        Self {
            plan,
            checks_seen: 0,
        }
    }
}

impl Strategy for Fixed {
    fn name(&self) -> &str {
        "fixed"
    }
    fn plan(&mut self, _cx: &StepContext) -> LayerPlan {
        self.plan.clone()
    }
    fn exit_after(
        &mut self,
        _cx: &StepContext,
        _layer: usize,
        signals: &[LayerSignal<'_>],
    ) -> bool {
        self.checks_seen += signals.len();
        false
    }
}

fn cx(t: usize, layers: usize) -> StepContext {
    StepContext {
        t,
        max_new_tokens: 16,
        prompt_len: 1,
        layers,
    }
}

/// Feeds `ids[from..]` one at a time after prefilling `ids[..from]` under `prefill_plan`;
/// returns the logits row after each fed position, starting with the prefill's.
fn step_through(
    decoder: &Decoder,
    ids: &[u32],
    from: usize,
    prefill_plan: &LayerPlan,
    strategy: &mut dyn Strategy,
) -> Vec<Vec<f32>> {
    let batch = Batch::new(vec![ids[..from].to_vec()], 0).unwrap();
    let (logits, mut cache) = decoder
        .prefill_with_plan(&batch, ids.len() - from, prefill_plan)
        .unwrap();
    let mut rows = vec![logits.to_rows().unwrap().remove(0)];
    for (t, &token) in ids[from..].iter().enumerate() {
        let (logits, _) = decoder
            .step(
                &mut cache,
                &[token],
                strategy,
                &cx(t + 1, decoder.shapes().layers),
            )
            .unwrap();
        rows.push(logits.to_rows().unwrap().remove(0));
    }
    rows
}

#[test]
fn full_forward_matches_transformers() {
    for arch in ARCHS {
        let (model, reference) = fixture(arch);
        for (ids, expected) in reference.inputs.iter().zip(&reference.full) {
            let batch = Batch::new(vec![ids.clone()], 0).unwrap();
            let ours = model.decoder.prompt_logits(&batch).unwrap().remove(0);
            for (position, (row, want)) in ours.iter().zip(expected).enumerate() {
                let diff = max_abs_diff(row, want);
                assert!(
                    diff < TOLERANCE,
                    "{arch}: position {position}: max |diff| {diff}"
                );
            }
        }
    }
}

#[test]
fn cached_token_by_token_decoding_matches_transformers() {
    for arch in ARCHS {
        let (model, reference) = fixture(arch);
        let layers = model.shapes.layers;
        for (ids, expected) in reference.inputs.iter().zip(&reference.cached) {
            let rows = step_through(
                &model.decoder,
                ids,
                1,
                &LayerPlan::full(layers),
                &mut Fixed::new(LayerPlan::full(layers)),
            );
            for (position, (row, want)) in rows.iter().zip(expected).enumerate() {
                let diff = max_abs_diff(row, want);
                assert!(
                    diff < TOLERANCE,
                    "{arch}: position {position}: max |diff| {diff}"
                );
            }
        }
    }
}

#[test]
fn greedy_continuation_matches_transformers() {
    for arch in ARCHS {
        let (model, reference) = fixture(arch);
        let config = GenerateConfig {
            max_new_tokens: reference.greedy.len(),
            eos_ids: vec![],
            pad_id: 0,
        };
        let layers = model.shapes.layers;
        let out = model
            .decoder
            .generate(
                &reference.inputs[..1],
                &mut Fixed::new(LayerPlan::full(layers)),
                &config,
            )
            .unwrap();
        assert_eq!(out.rows[0].tokens, reference.greedy, "{arch}");
        assert_eq!(out.rows[0].traces.len(), reference.greedy.len());
    }
}

#[test]
fn a_plan_that_runs_every_layer_is_vanilla_bit_for_bit() {
    for arch in ARCHS {
        let (model, reference) = fixture(arch);
        let layers = model.shapes.layers;
        let ids = &reference.inputs[0];
        let vanilla = step_through(
            &model.decoder,
            ids,
            2,
            &LayerPlan::full(layers),
            &mut Fixed::new(LayerPlan::full(layers)),
        );
        let checked_plan = LayerPlan {
            run: LayerSet::all(layers),
            kv_fill: KvFill::None,
            checks: LayerSet::all(layers),
        };
        let mut checked = Fixed::new(checked_plan);
        let planned = step_through(
            &model.decoder,
            ids,
            2,
            &LayerPlan::full(layers),
            &mut checked,
        );
        assert_eq!(vanilla, planned, "{arch}");
        assert_eq!(
            checked.checks_seen,
            layers * (ids.len() - 2),
            "{arch}: one signal per checked layer and row"
        );
    }
}

#[test]
fn skipping_a_layer_everywhere_without_kv_equals_removing_it() {
    for arch in ARCHS {
        let (model, reference) = fixture(arch);
        let layers = model.shapes.layers;
        let removed = reference.removed_layer;
        let plan = LayerPlan {
            run: LayerSet::from_fn(layers, |l| l != removed),
            kv_fill: KvFill::None,
            checks: LayerSet::empty(layers),
        };
        for (ids, expected) in reference.inputs.iter().zip(&reference.layer_removed) {
            let from = 3;
            let rows = step_through(
                &model.decoder,
                ids,
                from,
                &plan,
                &mut Fixed::new(plan.clone()),
            );
            for (offset, (row, want)) in rows.iter().zip(&expected[from - 1..]).enumerate() {
                let diff = max_abs_diff(row, want);
                assert!(
                    diff < TOLERANCE,
                    "{arch}: position {}: max |diff| {diff}",
                    from - 1 + offset
                );
            }
        }
    }
}

#[test]
fn a_left_padded_batch_equals_its_rows_decoded_alone() {
    for arch in ARCHS {
        let (model, reference) = fixture(arch);
        let layers = model.shapes.layers;
        let config = GenerateConfig {
            max_new_tokens: 6,
            eos_ids: vec![],
            pad_id: 0,
        };
        let together = model
            .decoder
            .generate(
                &reference.inputs,
                &mut Fixed::new(LayerPlan::full(layers)),
                &config,
            )
            .unwrap();
        let batch = Batch::new(reference.inputs.clone(), 0).unwrap();
        let (batch_logits, _) = model.decoder.prefill(&batch, 0).unwrap();
        let batch_rows = batch_logits.to_rows().unwrap();
        for (row, ids) in reference.inputs.iter().enumerate() {
            let alone = model
                .decoder
                .generate(
                    std::slice::from_ref(ids),
                    &mut Fixed::new(LayerPlan::full(layers)),
                    &config,
                )
                .unwrap();
            assert_eq!(
                together.rows[row].tokens, alone.rows[0].tokens,
                "{arch}: row {row}"
            );
            let single = Batch::new(vec![ids.clone()], 0).unwrap();
            let (logits, _) = model.decoder.prefill(&single, 0).unwrap();
            let diff = max_abs_diff(&batch_rows[row], &logits.to_rows().unwrap()[0]);
            assert!(diff < TOLERANCE, "{arch}: row {row}: max |diff| {diff}");
        }
    }
}

/// Skips `layer` on odd steps and runs everything on even ones.
struct Alternate {
    layer: usize,
    kv_fill: KvFill,
}

impl Strategy for Alternate {
    fn name(&self) -> &str {
        "alternate"
    }
    fn plan(&mut self, cx: &StepContext) -> LayerPlan {
        let run = if cx.t % 2 == 1 {
            LayerSet::from_fn(cx.layers, |l| l != self.layer)
        } else {
            LayerSet::all(cx.layers)
        };
        LayerPlan {
            run,
            kv_fill: self.kv_fill,
            checks: LayerSet::empty(cx.layers),
        }
    }
}

fn decode_with(
    decoder: &Decoder,
    logits: &Logits,
    cache: &Cache,
    strategy: &mut dyn Strategy,
) -> (Vec<Vec<u32>>, Cache) {
    let mut cache = cache.clone();
    let mut next = logits.argmax().unwrap();
    let mut tokens = vec![next.clone()];
    for t in 1..5 {
        let (logits, _) = decoder
            .step(&mut cache, &next, strategy, &cx(t, decoder.shapes().layers))
            .unwrap();
        next = logits.argmax().unwrap();
        tokens.push(next.clone());
    }
    (tokens, cache)
}

#[test]
fn propagate_writes_kv_at_skipped_layers_and_none_leaves_holes() {
    let (model, reference) = fixture("llama");
    let decoder = &model.decoder;
    let batch = Batch::new(reference.inputs.clone(), 0).unwrap();
    let (logits, cache) = decoder.prefill(&batch, 8).unwrap();
    let prompt_slots = cache.len();
    let layer = 1;
    let (_, propagated) = decode_with(
        decoder,
        &logits,
        &cache,
        &mut Alternate {
            layer,
            kv_fill: KvFill::Propagate,
        },
    );
    let (_, holes) = decode_with(
        decoder,
        &logits,
        &cache,
        &mut Alternate {
            layer,
            kv_fill: KvFill::None,
        },
    );
    // The prefill the two decodes started from is untouched by either.
    assert_eq!(cache.len(), prompt_slots);
    for row in 0..batch.len() {
        for slot in prompt_slots..prompt_slots + 4 {
            let skipped_step = (slot - prompt_slots + 1) % 2 == 1;
            assert!(
                propagated.is_valid(layer, row, slot),
                "propagate fills slot {slot}"
            );
            assert_eq!(
                holes.is_valid(layer, row, slot),
                !skipped_step,
                "none leaves slot {slot} empty on skipped steps"
            );
            assert!(holes.is_valid(0, row, slot) && holes.is_valid(2, row, slot));
        }
        let pad = batch.padding()[row];
        assert!(
            (0..pad).all(|slot| !propagated.is_valid(0, row, slot)),
            "padding never holds K/V"
        );
    }
}

/// Exits after the first checked layer, recording what it was shown.
struct ExitAtFirstCheck {
    shown: Vec<(usize, usize, Option<f32>)>,
}

impl Strategy for ExitAtFirstCheck {
    fn name(&self) -> &str {
        "exit"
    }
    fn plan(&mut self, cx: &StepContext) -> LayerPlan {
        LayerPlan {
            run: LayerSet::all(cx.layers),
            kv_fill: KvFill::Propagate,
            checks: LayerSet::from_indices(cx.layers, [0]),
        }
    }
    fn signal_kind(&self) -> SignalKind {
        SignalKind::Probs
    }
    fn exit_after(
        &mut self,
        _cx: &StepContext,
        _layer: usize,
        signals: &[LayerSignal<'_>],
    ) -> bool {
        self.shown.extend(signals.iter().map(|s| {
            (
                s.hidden.len(),
                s.previous.len(),
                s.probs.map(|p| p.iter().sum()),
            )
        }));
        true
    }
}

#[test]
fn an_exit_skips_the_rest_of_the_stack_which_follows_kv_fill() {
    let (model, reference) = fixture("phi");
    let layers = model.shapes.layers;
    let mut strategy = ExitAtFirstCheck { shown: Vec::new() };
    let config = GenerateConfig {
        max_new_tokens: 3,
        eos_ids: vec![],
        pad_id: 0,
    };
    let out = model
        .decoder
        .generate(&reference.inputs, &mut strategy, &config)
        .unwrap();
    let trace = &out.rows[1].traces[1];
    assert_eq!(trace.exited_after, Some(0));
    assert_eq!(trace.ran.iter().collect::<Vec<_>>(), vec![0]);
    assert_eq!(
        trace.propagated.iter().collect::<Vec<_>>(),
        (1..layers).collect::<Vec<_>>()
    );
    assert_eq!(trace.checks, 1);
    assert_eq!(strategy.shown.len(), 2 * 2, "two steps, two rows");
    for (hidden, previous, probs) in strategy.shown {
        assert_eq!(
            (hidden, previous),
            (model.shapes.hidden, model.shapes.hidden)
        );
        assert!((probs.unwrap() - 1.0).abs() < 1e-4);
    }
}
