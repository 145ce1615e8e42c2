//! LoRA training against PyTorch + PEFT on the tiny random models of hsd-model's tests
//! (fixtures made by `fixtures/make_fixtures.py`): the loss and every LoRA gradient of one
//! batch, the factors after one AdamW step, the forward under a per-token skip plan, and the
//! merged adapter.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use hsd_model::weights::{PeftAdapter, TensorSource};
use hsd_model::{Backend, Batch, LoraFactors, LoraScaling, TokenRuns, load_model};
use hsd_skip::LayerSet;
use hsd_train::{Decay, FineTune, LoraConfig, TrainConfig, TrainExample, target_nll};
use serde::Deserialize;

const ARCHS: [&str; 3] = ["gpt2", "llama", "phi"];

#[derive(Deserialize)]
struct Row {
    prompt: Vec<u32>,
    target: Vec<u32>,
}

#[derive(Deserialize)]
struct Named {
    shape: Vec<usize>,
    values: Vec<f32>,
}

#[derive(Deserialize)]
struct Reference {
    rank: usize,
    alpha: f64,
    targets: Vec<String>,
    rows: Vec<Row>,
    loss: f64,
    grads: BTreeMap<String, Named>,
    after: BTreeMap<String, Named>,
    lr: f64,
    betas: [f64; 2],
    eps: f64,
    weight_decay: f64,
    skip_runs: Vec<Vec<Vec<bool>>>,
    skip_logits: Vec<Vec<Vec<f32>>>,
    full_logits: Vec<Vec<Vec<f32>>>,
    merged_logits: Vec<Vec<Vec<f32>>>,
}

fn fixtures(arch: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(arch)
}

fn base(arch: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hsd-model/tests/fixtures/tiny")
        .join(arch)
}

fn reference(arch: &str) -> Reference {
    let text = std::fs::read_to_string(fixtures(arch).join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn examples(r: &Reference) -> Vec<TrainExample> {
    r.rows
        .iter()
        .enumerate()
        .map(|(i, row)| TrainExample {
            id: format!("row{i}"),
            prompt: row.prompt.clone(),
            target: row.target.clone(),
        })
        .collect()
}

/// `|a - b| <= tol * max|b|` over a tensor: the scale of float32 rounding in both frameworks.
fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-12);
    let worst = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0f32, f32::max);
    assert!(
        worst <= tol * scale,
        "{what}: max difference {worst:e} exceeds {tol:e} x {scale:e}"
    );
}

fn device_factors(
    adapter: &PeftAdapter,
    device: &burn::tensor::Device,
) -> BTreeMap<String, LoraFactors> {
    let matrix = |t: &hsd_model::weights::HostTensor| {
        Tensor::<2>::from_data(
            TensorData::new(t.data.clone(), [t.shape[0], t.shape[1]]),
            device,
        )
    };
    adapter
        .factors
        .iter()
        .map(|(name, f)| {
            (
                name.clone(),
                LoraFactors {
                    a: matrix(&f.a).autodiff().require_grad(),
                    b: matrix(&f.b).autodiff().require_grad(),
                },
            )
        })
        .collect()
}

#[test]
fn loss_and_lora_gradients_equal_peft() {
    for arch in ARCHS {
        let r = reference(arch);
        let mut model = load_model(base(arch).to_str().unwrap(), test_backend()).unwrap();
        let adapter = PeftAdapter::read(&fixtures(arch).join("adapter_init")).unwrap();
        assert_eq!(adapter.config.r, r.rank);
        let factors = device_factors(&adapter, model.decoder.device());
        let scaling = LoraScaling {
            scale: r.alpha / r.rank as f64,
            dropout: 0.0,
        };
        model.decoder.set_lora(&factors, scaling).unwrap();
        let examples = examples(&r);
        let rows: Vec<&TrainExample> = examples.iter().collect();
        let (nll, n) = target_nll(&model.decoder, &rows, None, 0).unwrap();
        let loss = nll.div_scalar(n as f64);
        let value = loss.clone().into_data().try_to_vec::<f32>().unwrap()[0];
        assert!(
            ((value as f64 - r.loss) / r.loss).abs() < 1e-5,
            "{arch}: loss {value} vs PEFT {}",
            r.loss
        );
        let grads = loss.backward();
        assert_eq!(r.grads.len(), 2 * factors.len(), "{arch}");
        for (module, f) in &factors {
            for (half, leaf) in [("lora_A", &f.a), ("lora_B", &f.b)] {
                let name = format!("base_model.model.{module}.{half}.weight");
                let want = &r.grads[&name];
                let got = leaf.grad(&grads).unwrap();
                assert_eq!(got.dims().to_vec(), want.shape, "{name}");
                let got = got.into_data().try_to_vec::<f32>().unwrap();
                assert_close(&format!("{arch} grad {name}"), &got, &want.values, 1e-5);
            }
        }
    }
}

#[test]
fn one_adamw_step_equals_torch() {
    for arch in ARCHS {
        let r = reference(arch);
        let mut model = load_model(base(arch).to_str().unwrap(), test_backend()).unwrap();
        let adapter = PeftAdapter::read(&fixtures(arch).join("adapter_init")).unwrap();
        let out = tempfile::tempdir().unwrap();
        let config = TrainConfig {
            steps: 1,
            batch_size: 2,
            grad_accum: 1,
            lr: r.lr,
            warmup_steps: 0,
            decay: Decay::Constant,
            weight_decay: r.weight_decay,
            betas: r.betas,
            eps: r.eps,
            max_grad_norm: 0.0,
            eval_every: 1,
            eval_examples: 0,
            checkpoint_every: 1,
            seed: 0,
            max_len: 512,
            train_skip: None,
        };
        let outcome = FineTune {
            decoder: &mut model.decoder,
            lora: LoraConfig {
                rank: r.rank,
                alpha: r.alpha,
                dropout: 0.0,
                targets: r.targets.clone(),
            },
            config,
            train: examples(&r),
            eval: Vec::new(),
            pad_id: 0,
            out: out.path().to_owned(),
            init: Some(adapter),
        }
        .run(false, &mut |_| {})
        .unwrap();
        assert!(((outcome.log[0].train_loss - r.loss) / r.loss).abs() < 1e-5);
        let trained = PeftAdapter::read(&outcome.adapter_dir).unwrap();
        let file = hsd_model::weights::SafetensorsDir::open(
            &outcome.adapter_dir.join("adapter_model.safetensors"),
        )
        .unwrap();
        assert_eq!(file.names().len(), r.after.len(), "{arch}");
        for (name, want) in &r.after {
            let got = file.load(name).unwrap();
            assert_eq!(got.shape, want.shape, "{name}");
            // AdamW's first update is `lr * g / (|g| + eps)`: a gradient known to `dg` (the
            // 1e-5-of-the-largest agreement checked above) moves it by up to
            // `lr * eps * dg / (|g| + eps)^2`, which is large where `|g|` is near `eps`.
            let grad = &r.grads[name].values;
            let dg = 1e-5 * grad.iter().fold(0f64, |m, g| m.max(f64::from(g.abs())));
            for (i, (g, w)) in got.data.iter().zip(&want.values).enumerate() {
                let scale = f64::from(grad[i].abs()) + r.eps;
                let bound = 1e-5 + r.lr * r.eps * dg / (scale * scale);
                let diff = f64::from((g - w).abs());
                assert!(
                    diff <= bound,
                    "{arch} after {name}[{i}]: {g} vs torch {w} (bound {bound:e})"
                );
            }
        }
        assert_eq!(trained.config.r, r.rank);
    }
}

fn logits(
    model: &hsd_model::LoadedModel,
    rows: &[Vec<u32>],
    runs: Option<&TokenRuns>,
) -> Vec<Vec<Vec<f32>>> {
    let batch = Batch::new(rows.to_vec(), 0).unwrap();
    let h = model.decoder.sequence_hidden(&batch, runs).unwrap();
    let [b, t, d] = h.dims();
    let out = model.decoder.head(h.reshape([b * t, d]));
    let vocab = out.dims()[1];
    let flat = out.into_data().try_to_vec::<f32>().unwrap();
    flat.chunks_exact(t * vocab)
        .zip(batch.padding())
        .map(|(row, pad)| {
            row.chunks_exact(vocab)
                .skip(pad)
                .map(<[f32]>::to_vec)
                .collect()
        })
        .collect()
}

#[test]
fn skip_aware_forward_and_merged_adapter_equal_pytorch() {
    for arch in ARCHS {
        let r = reference(arch);
        let mut model = load_model(base(arch).to_str().unwrap(), test_backend()).unwrap();
        let adapter = PeftAdapter::read(&fixtures(arch).join("adapter_init")).unwrap();
        let layers = model.decoder.shapes().layers;
        let factors: BTreeMap<String, LoraFactors> =
            device_factors(&adapter, model.decoder.device())
                .into_iter()
                .map(|(k, f)| {
                    (
                        k,
                        LoraFactors {
                            a: f.a.inner(),
                            b: f.b.inner(),
                        },
                    )
                })
                .collect();
        model
            .decoder
            .set_lora(
                &factors,
                LoraScaling {
                    scale: adapter.config.scale(),
                    dropout: 0.0,
                },
            )
            .unwrap();
        let rows: Vec<Vec<u32>> = r
            .rows
            .iter()
            .map(|row| row.prompt.iter().chain(&row.target).copied().collect())
            .collect();
        let runs = TokenRuns::new(
            r.skip_runs
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|layer_runs| {
                            LayerSet::from_indices(
                                layers,
                                layer_runs
                                    .iter()
                                    .enumerate()
                                    .filter(|(_, on)| **on)
                                    .map(|(l, _)| l),
                            )
                        })
                        .collect()
                })
                .collect(),
        );
        for (label, got, want) in [
            ("full", logits(&model, &rows, None), &r.full_logits),
            ("skip", logits(&model, &rows, Some(&runs)), &r.skip_logits),
        ] {
            for (row, (g, w)) in got.iter().zip(want).enumerate() {
                assert_close(
                    &format!("{arch} {label} row {row}"),
                    &g.concat(),
                    &w.concat(),
                    1e-5,
                );
            }
        }
        model.decoder.clear_lora();
        model.decoder.merge_adapter(&adapter).unwrap();
        for (row, (g, w)) in logits(&model, &rows, None)
            .iter()
            .zip(&r.merged_logits)
            .enumerate()
        {
            assert_close(
                &format!("{arch} merged row {row}"),
                &g.concat(),
                &w.concat(),
                1e-5,
            );
        }
    }
}

/// `HSD_TEST_BACKEND` (flex | tch | wgpu | ndarray) when set, else the first compiled in, as
/// hsd-model's tests pick it.
fn test_backend() -> Backend {
    match std::env::var("HSD_TEST_BACKEND") {
        Ok(name) => name.parse().expect("HSD_TEST_BACKEND names a backend"),
        Err(_) => Backend::default(),
    }
}
