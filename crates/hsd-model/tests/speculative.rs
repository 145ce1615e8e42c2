//! Speculative decoding is lossless: whatever drafts, the tokens are vanilla greedy decoding's,
//! on every architecture, for batches of one and of several rows, fixed and adaptive `k`.

mod backend;
mod common;

use common::{ARCHS, Rule, tiny};
use hsd_model::{
    Batch, Cache, Decoder, GenerateConfig, GenerationBatch, SpeculativeConfig, StopReason,
};
use hsd_skip::{KvFill, LayerPlan, LayerSet, StepContext, Strategy};
use proptest::prelude::*;
use rand_xoshiro::SplitMix64;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

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
const DRAFTERS: [Rule; 5] = [
    Rule::Full,
    Rule::SkipFirst(KvFill::Propagate),
    Rule::SkipFirst(KvFill::None),
    Rule::SkipOnOddSteps(KvFill::Propagate),
    Rule::ExitAfterFirst,
];

fn config(max_new_tokens: usize, eos_ids: Vec<u32>) -> GenerateConfig {
    GenerateConfig {
        max_new_tokens,
        eos_ids,
        pad_id: 0,
    }
}

fn vanilla(decoder: &Decoder, prompts: &[Vec<u32>], config: &GenerateConfig) -> Vec<Vec<u32>> {
    tokens(&decoder.generate(prompts, &mut Rule::Full, config).unwrap())
}

/// Each row's generated tokens.
fn tokens(generation: &GenerationBatch) -> Vec<Vec<u32>> {
    generation.rows.iter().map(|r| r.tokens.clone()).collect()
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
                    assert_eq!(
                        tokens(&out.generation),
                        expected,
                        "{arch}, {} rows, {drafter:?}, {speculative:?}",
                        batch.len()
                    );
                    for row in &out.generation.rows {
                        assert_eq!(row.traces.len(), row.tokens.len());
                    }
                    let stats = &out.stats;
                    assert!(stats.accepted <= stats.drafted, "{stats:?}");
                    if matches!(drafter, Rule::Full) {
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
            assert_eq!(tokens(&out.generation), expected, "{arch}, {drafter:?}");
            assert_eq!(
                out.generation.rows[0].stop,
                StopReason::Eos,
                "{arch}, {drafter:?}"
            );
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
        let mut full = Rule::Full;
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

/// Another model of the same shapes drafts into the verifier's cache (tiny Qwen2 for tiny
/// Llama: other weights, so drafts are often rejected): the tokens are still the verifier's
/// vanilla ones, and a drafter of other shapes is refused.
#[test]
fn another_model_drafts_and_the_tokens_stay_the_verifiers() {
    let verifier = tiny("llama");
    let drafter = tiny("qwen2");
    assert_eq!(verifier.decoder.shapes(), drafter.decoder.shapes());
    let config = config(12, vec![]);
    let prompts = prompts();
    for batch in [&prompts[..1], &prompts[..]] {
        let expected = vanilla(&verifier.decoder, batch, &config);
        for speculative in speculative_configs() {
            let out = verifier
                .decoder
                .generate_speculative_with(
                    &drafter.decoder,
                    batch,
                    &mut Rule::Full,
                    &config,
                    &speculative,
                )
                .unwrap();
            assert_eq!(
                tokens(&out.generation),
                expected,
                "{} rows, {speculative:?}",
                batch.len()
            );
            assert!(out.stats.accepted < out.stats.drafted, "{:?}", out.stats);
        }
    }
    let err = verifier
        .decoder
        .generate_speculative_with(
            &tiny("gpt2").decoder,
            &prompts,
            &mut Rule::Full,
            &config,
            &SpeculativeConfig::fixed(2),
        )
        .unwrap_err();
    assert!(err.to_string().contains("drafter"), "{err}");
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
            .generate_speculative(&prompts, &mut Rule::Full, &config, &zero)
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

/// Draws a random layer set (never empty) for every step.
struct RandomPlans {
    rng: SplitMix64,
    kv_fill: KvFill,
}

impl Strategy for RandomPlans {
    fn name(&self) -> &str {
        "random plans"
    }

    fn plan(&mut self, cx: &StepContext) -> LayerPlan {
        let bits = self.rng.next_u64();
        let last = cx.layers - 1;
        LayerPlan {
            run: LayerSet::from_fn(cx.layers, |l| {
                bits >> l & 1 == 1 || (bits == 0 && l == last)
            }),
            kv_fill: self.kv_fill,
            checks: LayerSet::empty(cx.layers),
        }
    }
}

/// Vanilla decoding step by step from a prefill, keeping the cache it leaves.
fn vanilla_with_cache(
    decoder: &Decoder,
    prompts: &[Vec<u32>],
    max_new_tokens: usize,
    room: usize,
) -> (Vec<Vec<u32>>, Cache) {
    let batch = Batch::new(prompts.to_vec(), 0).unwrap();
    let (logits, mut cache) = decoder.prefill(&batch, max_new_tokens + room).unwrap();
    let mut next = logits.argmax().unwrap();
    let mut tokens: Vec<Vec<u32>> = next.iter().map(|&t| vec![t]).collect();
    for t in 1..max_new_tokens {
        let cx = StepContext {
            t,
            max_new_tokens,
            prompt_len: batch.width(),
            layers: decoder.shapes().layers,
        };
        let (logits, _) = decoder
            .step(&mut cache, &next, &mut Rule::Full, &cx)
            .unwrap();
        next = logits.argmax().unwrap();
        for (row, &token) in tokens.iter_mut().zip(&next) {
            row.push(token);
        }
    }
    (tokens, cache)
}

/// The largest difference between two caches' K/V over the slots each row fed before it
/// stopped (`fed[row]` slots past the prompt), which are what its generation depends on.
fn cache_diff(a: &Cache, b: &Cache, origin: usize, fed: &[usize]) -> f32 {
    assert_eq!(a.len(), b.len());
    let (heads, head_dim) = a.head_shape();
    let mut worst = 0.0f32;
    for layer in 0.. {
        let (Ok((ak, av)), Ok((bk, bv))) = (a.layer_to_host(layer), b.layer_to_host(layer)) else {
            break;
        };
        for (row, &row_fed) in fed.iter().enumerate() {
            for slot in 0..origin + row_fed {
                assert_eq!(a.is_valid(layer, row, slot), b.is_valid(layer, row, slot));
                if !a.is_valid(layer, row, slot) {
                    continue;
                }
                for head in 0..heads {
                    let at = |cap: usize| ((row * heads + head) * cap + slot) * head_dim;
                    let (i, j) = (at(a.capacity()), at(b.capacity()));
                    for d in 0..head_dim {
                        worst = worst
                            .max((ak[i + d] - bk[j + d]).abs())
                            .max((av[i + d] - bv[j + d]).abs());
                    }
                }
            }
        }
    }
    worst
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn random_plans_draft_vanilla_tokens_and_leave_vanilla_cache(
        arch in 0..ARCHS.len(),
        seed in any::<u64>(),
        propagate in any::<bool>(),
        k in 1usize..6,
        adaptive in any::<bool>(),
        batched in any::<bool>(),
    ) {
        let model = tiny(ARCHS[arch]);
        let prompts = if batched { prompts() } else { vec![prompts()[0].clone()] };
        let max_new_tokens = 10;
        let speculative = if adaptive {
            SpeculativeConfig::adaptive(k)
        } else {
            SpeculativeConfig::fixed(k)
        };
        let (expected, vanilla_cache) = vanilla_with_cache(
            &model.decoder,
            &prompts,
            max_new_tokens,
            speculative.max_draft_tokens,
        );
        let batch = Batch::new(prompts.clone(), 0).unwrap();
        let (logits, mut cache) = model
            .decoder
            .prefill(&batch, max_new_tokens + speculative.max_draft_tokens)
            .unwrap();
        let mut drafter = RandomPlans {
            rng: SplitMix64::seed_from_u64(seed),
            kv_fill: if propagate { KvFill::Propagate } else { KvFill::None },
        };
        let out = model
            .decoder
            .decode_speculative(logits, &mut cache, &mut drafter, &config(max_new_tokens, vec![]), &speculative)
            .unwrap();
        prop_assert_eq!(tokens(&out.generation), expected);
        let fed: Vec<usize> = out.generation.rows.iter().map(|r| r.tokens.len() - 1).collect();
        let diff = cache_diff(&cache, &vanilla_cache, batch.width(), &fed);
        prop_assert!(diff < 1e-4, "max |K/V diff| {}", diff);
    }
}
