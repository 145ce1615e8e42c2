//! Speculative decoding is lossless: whatever drafts, the tokens are vanilla greedy decoding's,
//! on every architecture, for batches of one and of several rows, fixed and adaptive `k`.

mod backend;

use std::path::PathBuf;

use hsd_model::{
    Batch, Decoder, GenerateConfig, LoadedModel, SpeculativeConfig, StopReason, load_model,
};
use hsd_skip::{KvFill, LayerPlan, LayerSet, LayerSignal, SignalKind, StepContext, Strategy};

const ARCHS: [&str; 4] = ["gpt2", "llama", "qwen2", "phi"];

fn tiny(arch: &str) -> LoadedModel {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny")
        .join(arch);
    load_model(dir.to_str().unwrap(), backend::test_backend()).unwrap()
}

/// Prompts of different lengths, so batches are left-padded.
fn prompts() -> Vec<Vec<u32>> {
    vec![
        vec![17, 201, 5, 88, 140, 9, 260],
        vec![3, 99, 250, 42, 7],
        vec![120],
        vec![64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74],
    ]
}

/// The drafters: every layer (every draft accepted), fixed skips with either K/V fill, a plan
/// that changes with the step, and an early exit, so that rounds accept all, some and none.
#[derive(Clone, Copy, Debug)]
enum Drafter {
    Full,
    SkipFirst(KvFill),
    SkipOnOddSteps,
    ExitAfterFirst,
}

const DRAFTERS: [Drafter; 5] = [
    Drafter::Full,
    Drafter::SkipFirst(KvFill::Propagate),
    Drafter::SkipFirst(KvFill::None),
    Drafter::SkipOnOddSteps,
    Drafter::ExitAfterFirst,
];

impl Strategy for Drafter {
    fn name(&self) -> &str {
        "drafter"
    }

    fn plan(&mut self, cx: &StepContext) -> LayerPlan {
        let layers = cx.layers;
        match *self {
            Drafter::Full => LayerPlan::full(layers),
            Drafter::SkipFirst(kv_fill) => LayerPlan {
                run: LayerSet::from_fn(layers, |l| l != 0),
                kv_fill,
                checks: LayerSet::empty(layers),
            },
            Drafter::SkipOnOddSteps => LayerPlan {
                run: LayerSet::from_fn(layers, |l| cx.t.is_multiple_of(2) || l == layers - 1),
                kv_fill: KvFill::Propagate,
                checks: LayerSet::empty(layers),
            },
            Drafter::ExitAfterFirst => LayerPlan::full(layers).with_checks(LayerSet::all(layers)),
        }
    }

    fn signal_kind(&self) -> SignalKind {
        SignalKind::Hidden
    }

    fn exit_after(&mut self, _cx: &StepContext, layer: usize, _: &[LayerSignal<'_>]) -> bool {
        matches!(self, Drafter::ExitAfterFirst) && layer == 0
    }
}

fn config(max_new_tokens: usize, eos_ids: Vec<u32>) -> GenerateConfig {
    GenerateConfig {
        max_new_tokens,
        eos_ids,
        pad_id: 0,
    }
}

fn vanilla(decoder: &Decoder, prompts: &[Vec<u32>], config: &GenerateConfig) -> Vec<Vec<u32>> {
    decoder
        .generate(prompts, &mut Drafter::Full, config)
        .unwrap()
        .rows
        .into_iter()
        .map(|r| r.tokens)
        .collect()
}

fn speculative_configs() -> Vec<SpeculativeConfig> {
    let mut configs: Vec<_> = [1, 2, 3, 5].map(SpeculativeConfig::fixed).into();
    configs.extend([1, 3].map(SpeculativeConfig::adaptive));
    configs
}

#[test]
fn speculative_tokens_equal_vanilla_for_every_drafter_k_and_batch() {
    let prompts = prompts();
    for arch in ARCHS {
        let model = tiny(arch);
        let config = config(12, vec![]);
        let batches: Vec<Vec<Vec<u32>>> = prompts
            .iter()
            .map(|p| vec![p.clone()])
            .chain([prompts.clone()])
            .collect();
        for batch in &batches {
            let expected = vanilla(&model.decoder, batch, &config);
            for mut drafter in DRAFTERS {
                for speculative in speculative_configs() {
                    let out = model
                        .decoder
                        .generate_speculative(batch, &mut drafter, &config, &speculative)
                        .unwrap();
                    let tokens: Vec<Vec<u32>> = out
                        .generation
                        .rows
                        .iter()
                        .map(|r| r.tokens.clone())
                        .collect();
                    assert_eq!(
                        tokens,
                        expected,
                        "{arch}, {} rows, {drafter:?}, {speculative:?}",
                        batch.len()
                    );
                    for row in &out.generation.rows {
                        assert_eq!(row.traces.len(), row.tokens.len());
                    }
                    let stats = &out.stats;
                    assert!(stats.accepted <= stats.drafted, "{stats:?}");
                    if matches!(drafter, Drafter::Full) {
                        assert_eq!(stats.accepted, stats.drafted, "{arch}: {stats:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn a_row_stops_at_its_eos_as_in_vanilla() {
    let prompts = prompts();
    for arch in ARCHS {
        let model = tiny(arch);
        let unbounded = vanilla(&model.decoder, &prompts, &config(12, vec![]));
        // The fourth token of the first row ends it early; other rows stop wherever it occurs.
        let eos = unbounded[0][3];
        let config = config(12, vec![eos]);
        let expected = vanilla(&model.decoder, &prompts, &config);
        for mut drafter in DRAFTERS {
            let out = model
                .decoder
                .generate_speculative(
                    &prompts,
                    &mut drafter,
                    &config,
                    &SpeculativeConfig::fixed(4),
                )
                .unwrap();
            let rows = &out.generation.rows;
            let tokens: Vec<Vec<u32>> = rows.iter().map(|r| r.tokens.clone()).collect();
            assert_eq!(tokens, expected, "{arch}, {drafter:?}");
            assert_eq!(rows[0].stop, StopReason::Eos, "{arch}, {drafter:?}");
        }
    }
}

#[test]
fn a_verified_chunk_rolled_back_leaves_the_cache_vanilla_would_have() {
    let layers_tolerance = 1e-4;
    for arch in ARCHS {
        let model = tiny(arch);
        let decoder = &model.decoder;
        let prompt = prompts()[0].clone();
        let greedy = vanilla(decoder, std::slice::from_ref(&prompt), &config(4, vec![]));
        let greedy = &greedy[0];
        let batch = Batch::new(vec![prompt], 0).unwrap();
        let (_, prefilled) = decoder.prefill(&batch, 8).unwrap();

        // Vanilla: feed the first two greedy tokens one at a time.
        let mut stepped = prefilled.clone();
        let mut full = Drafter::Full;
        for (t, &token) in greedy[..2].iter().enumerate() {
            let cx = StepContext {
                t: t + 1,
                max_new_tokens: 8,
                prompt_len: batch.width(),
                layers: model.shapes.layers,
            };
            decoder
                .step(&mut stepped, &[token], &mut full, &cx)
                .unwrap();
        }

        // Speculative: verify the greedy pair plus a wrong third token, keep the pair.
        let mut verified = prefilled.clone();
        let wrong = (greedy[2] + 1) % 300;
        let next = decoder
            .verify(&mut verified, &[vec![greedy[0], greedy[1], wrong]])
            .unwrap();
        assert_eq!(next[0][..2], greedy[1..3], "{arch}");
        verified.truncate(stepped.len()).unwrap();
        assert_eq!(verified.len(), stepped.len());

        let cx = StepContext {
            t: 3,
            max_new_tokens: 8,
            prompt_len: batch.width(),
            layers: model.shapes.layers,
        };
        let (a, _) = decoder
            .step(&mut stepped, &[greedy[2]], &mut full, &cx)
            .unwrap();
        let (b, _) = decoder
            .step(&mut verified, &[greedy[2]], &mut full, &cx)
            .unwrap();
        let (a, b) = (a.to_rows().unwrap(), b.to_rows().unwrap());
        let diff = a[0]
            .iter()
            .zip(&b[0])
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(diff < layers_tolerance, "{arch}: max |diff| {diff}");
    }
}

#[test]
fn bad_speculative_inputs_are_errors() {
    let model = tiny("llama");
    let decoder = &model.decoder;
    let prompts = prompts();
    let config = config(4, vec![]);
    let zero = SpeculativeConfig::fixed(0);
    assert!(
        decoder
            .generate_speculative(&prompts, &mut Drafter::Full, &config, &zero)
            .is_err()
    );
    let batch = Batch::new(vec![prompts[0].clone()], 0).unwrap();
    let (_, mut cache) = decoder.prefill(&batch, 2).unwrap();
    assert!(
        decoder.verify(&mut cache, &[vec![1, 2, 3]]).is_err(),
        "overflow"
    );
    assert!(
        decoder.verify(&mut cache, &[vec![1], vec![2]]).is_err(),
        "rows"
    );
    assert!(decoder.verify(&mut cache, &[vec![]]).is_err(), "empty");
    let len = cache.len();
    assert!(cache.truncate(len + 1).is_err(), "growing");
}
