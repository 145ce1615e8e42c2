//! The trainable state: per adapted module the LoRA factors and their AdamW moments, held on
//! the device between updates and in host memory for checkpoints and adapters.

use std::collections::BTreeMap;

use burn::optim::{AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, Optimizer};
use burn::tensor::{Device, Tensor, TensorData};
use hsd_model::weights::{AdapterConfig, HostFactors, HostTensor, PeftAdapter};
use hsd_model::{Decoder, LoraFactors, LoraModule};

use crate::TrainError;
use crate::batches::{stream, unit};
use crate::config::{LoraConfig, TrainConfig};

const INIT_STREAM: u64 = 3;

/// One trainable matrix and its optimizer state.
pub(crate) struct Trainable {
    /// `model.layers.0.self_attn.q_proj.lora_A`.
    pub(crate) name: String,
    pub(crate) value: Tensor<2>,
    pub(crate) adam: Option<AdamWState<2>>,
}

/// Every factor of an adapter, in module order, A before B.
pub(crate) struct Factors {
    pub(crate) modules: Vec<LoraModule>,
    pub(crate) tensors: Vec<Trainable>,
}

impl Factors {
    /// PEFT's initialisation: A uniform in `±1/sqrt(in)` (Kaiming-uniform with `a = sqrt(5)`),
    /// B zero, so training starts from the base model; seeded by `seed` alone.
    pub(crate) fn init(
        decoder: &Decoder,
        lora: &LoraConfig,
        seed: u64,
    ) -> Result<Self, TrainError> {
        let modules = targeted(decoder, lora)?;
        let device = decoder.device();
        let mut rng = stream(seed, INIT_STREAM, 0);
        let mut tensors = Vec::new();
        for module in &modules {
            let bound = 1.0 / (module.d_in as f64).sqrt();
            let a: Vec<f32> = (0..lora.rank * module.d_in)
                .map(|_| ((2.0 * unit(&mut rng) - 1.0) * bound) as f32)
                .collect();
            tensors.push(Trainable {
                name: format!("{}.lora_A", module.name),
                value: matrix(a, [lora.rank, module.d_in], device),
                adam: None,
            });
            tensors.push(Trainable {
                name: format!("{}.lora_B", module.name),
                value: matrix(
                    vec![0.0; module.d_out * lora.rank],
                    [module.d_out, lora.rank],
                    device,
                ),
                adam: None,
            });
        }
        Ok(Self { modules, tensors })
    }

    /// Starts from an existing adapter's factors (no optimizer state).
    pub(crate) fn from_adapter(
        decoder: &Decoder,
        lora: &LoraConfig,
        adapter: &PeftAdapter,
    ) -> Result<Self, TrainError> {
        let modules = targeted(decoder, lora)?;
        let device = decoder.device();
        let mut tensors = Vec::new();
        for module in &modules {
            let f = adapter
                .factors
                .get(&module.name)
                .ok_or_else(|| TrainError::Config {
                    field: "lora.targets".into(),
                    reason: format!("the adapter has no factors for `{}`", module.name),
                })?;
            for (half, t) in [("lora_A", &f.a), ("lora_B", &f.b)] {
                let [rows, cols] = t.shape[..] else {
                    return Err(TrainError::Config {
                        field: "adapter".into(),
                        reason: format!("`{}` is not a matrix", t.name),
                    });
                };
                tensors.push(Trainable {
                    name: format!("{}.{half}", module.name),
                    value: matrix(t.data.clone(), [rows, cols], device),
                    adam: None,
                });
            }
        }
        Ok(Self { modules, tensors })
    }

    /// The factors as leaves that record gradients, keyed by module, and the leaves in
    /// [`Self::tensors`] order.
    pub(crate) fn leaves(&self) -> (BTreeMap<String, LoraFactors>, Vec<Tensor<2>>) {
        let leaves: Vec<Tensor<2>> = self
            .tensors
            .iter()
            .map(|t| t.value.clone().autodiff().require_grad())
            .collect();
        (self.keyed(&leaves), leaves)
    }

    /// The current factors, without autodiff (evaluation).
    pub(crate) fn values(&self) -> BTreeMap<String, LoraFactors> {
        let values: Vec<Tensor<2>> = self.tensors.iter().map(|t| t.value.clone()).collect();
        self.keyed(&values)
    }

    fn keyed(&self, tensors: &[Tensor<2>]) -> BTreeMap<String, LoraFactors> {
        self.modules
            .iter()
            .zip(tensors.chunks_exact(2))
            .map(|(module, pair)| {
                (
                    module.name.clone(),
                    LoraFactors {
                        a: pair[0].clone(),
                        b: pair[1].clone(),
                    },
                )
            })
            .collect()
    }

    /// One AdamW update with `grads` (in [`Self::tensors`] order) at learning rate `lr`.
    pub(crate) fn update(&mut self, optimizer: &AdamW, lr: f64, grads: Vec<Tensor<2>>) {
        for (t, grad) in self.tensors.iter_mut().zip(grads) {
            let (value, state) = optimizer.step(lr, t.value.clone(), grad, t.adam.take());
            t.value = value;
            t.adam = state;
        }
    }

    /// The factors as a PEFT adapter.
    pub(crate) fn adapter(&self, lora: &LoraConfig, gpt2: bool) -> Result<PeftAdapter, TrainError> {
        let mut factors = BTreeMap::new();
        for (module, pair) in self.modules.iter().zip(self.tensors.chunks_exact(2)) {
            factors.insert(
                module.name.clone(),
                HostFactors {
                    a: host(&pair[0].name, &pair[0].value)?,
                    b: host(&pair[1].name, &pair[1].value)?,
                },
            );
        }
        let mut targets = lora.targets.clone();
        targets.sort();
        Ok(PeftAdapter {
            config: AdapterConfig::lora(lora.rank, lora.alpha, lora.dropout, targets, gpt2),
            factors,
        })
    }
}

/// The modules `lora.targets` selects; a target no module matches is an error listing those
/// the model has.
fn targeted(decoder: &Decoder, lora: &LoraConfig) -> Result<Vec<LoraModule>, TrainError> {
    let all = decoder.lora_modules();
    for target in &lora.targets {
        if !all.iter().any(|m| m.kind() == target) {
            let mut kinds: Vec<&str> = all.iter().map(LoraModule::kind).collect();
            kinds.sort();
            kinds.dedup();
            return Err(TrainError::Config {
                field: "lora.targets".into(),
                reason: format!(
                    "`{target}` matches no module of this model (it has {})",
                    kinds.join(", ")
                ),
            });
        }
    }
    Ok(all
        .into_iter()
        .filter(|m| lora.targets.iter().any(|t| t == m.kind()))
        .collect())
}

pub(crate) fn optimizer(config: &TrainConfig) -> AdamW {
    AdamWConfig::new()
        .with_beta_1(config.betas[0] as f32)
        .with_beta_2(config.betas[1] as f32)
        .with_epsilon(config.eps as f32)
        .with_weight_decay(config.weight_decay as f32)
        .build()
}

pub(crate) fn matrix(data: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(data, shape), device)
}

pub(crate) fn host(name: &str, t: &Tensor<2>) -> Result<HostTensor, TrainError> {
    Ok(HostTensor {
        name: name.to_string(),
        shape: t.dims().to_vec(),
        data: read(t.clone())?,
    })
}

pub(crate) fn read<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, TrainError> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| TrainError::Config {
            field: "(device readback)".into(),
            reason: format!("{e:?}"),
        })
}

/// The AdamW moments as checkpoint tensors, and back.
pub(crate) fn moments(state: &AdamWState<2>) -> (usize, &Tensor<2>, &Tensor<2>) {
    let m = &state.momentum;
    (m.time, &m.moment_1, &m.moment_2)
}

pub(crate) fn adam_state(time: usize, m1: Tensor<2>, m2: Tensor<2>) -> AdamWState<2> {
    AdamWState::new(AdaptiveMomentumState {
        time,
        moment_1: m1,
        moment_2: m2,
        max_moment_2: None,
    })
}
