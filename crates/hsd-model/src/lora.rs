//! LoRA (Hu et al., 2021) as Hugging Face PEFT defines it: a module's output gains
//! `scale * B A x`, with `A` `[rank, in]`, `B` `[out, rank]` and `scale = alpha / rank`.
//!
//! Training installs the factors on the projections they adapt ([`Decoder::set_lora`]), so
//! that the forward pass, skip plans included, is the decoder's own; decoding folds them into
//! the weights once ([`Decoder::merge_lora`]) and pays nothing per token.

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};

use crate::ModelError;
use crate::arch::Architecture;
use crate::decoder::{Decoder, Model};
use crate::layers::Linear;
use crate::lora_term::{LoraSite, LoraTerm, module_seed};
use crate::weights::{HostTensor, PeftAdapter, TargetModules};

/// A module LoRA can adapt: its Hugging Face name (`model.layers.0.self_attn.q_proj`) and the
/// widths of its whole weight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoraModule {
    pub name: String,
    pub d_in: usize,
    pub d_out: usize,
}

impl LoraModule {
    /// The last segment of the name (`q_proj`, `c_attn`): what PEFT's `target_modules` match.
    pub fn kind(&self) -> &str {
        self.name.rsplit('.').next().unwrap_or(&self.name)
    }
}

/// One module's factors, PEFT's `lora_A.weight` (`[rank, in]`) and `lora_B.weight`
/// (`[out, rank]`).
#[derive(Clone, Debug)]
pub struct LoraFactors {
    pub a: Tensor<2>,
    pub b: Tensor<2>,
}

/// How the factors enter the forward pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoraScaling {
    /// `alpha / rank`.
    pub scale: f64,
    /// PEFT's `lora_dropout`; 0 when decoding.
    pub dropout: f64,
}

impl Decoder {
    /// Every module an adapter can target, in layer order, fused modules once.
    pub fn lora_modules(&self) -> Vec<LoraModule> {
        let mut modules: Vec<LoraModule> = Vec::new();
        for linear in self.linears() {
            let Some(site) = linear.site() else { continue };
            let [d_in, d_out] = linear.dims();
            let d_out = site.rows.map_or(d_out, |rows| rows.total);
            if modules.last().is_some_and(|m| m.name == site.module) {
                continue;
            }
            modules.push(LoraModule {
                name: site.module.clone(),
                d_in,
                d_out,
            });
        }
        modules
    }

    /// Installs `factors` (keyed by module name) on their projections, replacing any installed
    /// before; projections of other modules lose theirs. Errors name a module the model does
    /// not have, or factors whose shapes do not fit it.
    pub fn set_lora(
        &mut self,
        factors: &BTreeMap<String, LoraFactors>,
        scaling: LoraScaling,
    ) -> Result<(), ModelError> {
        self.check_factors(factors)?;
        for linear in self.linears_mut() {
            let term = linear
                .site()
                .and_then(|site| Some((site, factors.get(&site.module)?)))
                .map(|(site, f)| LoraTerm {
                    a: f.a.clone(),
                    b: rows_of(&f.b, site, linear.dims()[1]),
                    scale: scaling.scale,
                    dropout: scaling.dropout,
                    mask_seed: 0,
                });
            linear.set_lora(term);
        }
        Ok(())
    }

    /// Seeds the dropout masks of the installed LoRA terms for the next forward pass. Each
    /// module's mask follows from `seed` and its name, so the row blocks of a fused module
    /// (GPT-2's q, k and v in `c_attn`) share one mask over their common input, as PEFT's
    /// single `lora_dropout` on the module does.
    pub fn seed_lora_dropout(&mut self, seed: u64) {
        for linear in self.linears_mut() {
            let Some(module) = linear.site().map(|site| site.module.clone()) else {
                continue;
            };
            if let Some(term) = linear.lora_mut() {
                term.mask_seed = module_seed(seed, &module);
            }
        }
    }

    /// Folds a PEFT adapter into the weights, so that decoding with it costs what decoding
    /// without it does.
    pub fn merge_adapter(&mut self, adapter: &PeftAdapter) -> Result<(), ModelError> {
        // PEFT refuses a target that matches no module of the base model; so does hsd.
        if let TargetModules::List(targets) = &adapter.config.target_modules {
            let modules = self.lora_modules();
            if let Some(target) = targets
                .iter()
                .find(|t| !modules.iter().any(|m| m.kind() == t.as_str()))
            {
                let mut kinds: Vec<&str> = modules.iter().map(LoraModule::kind).collect();
                kinds.sort_unstable();
                kinds.dedup();
                return Err(ModelError::Adapter {
                    module: target.clone(),
                    reason: format!(
                        "adapter_config.json's target_modules names it, but no linear layer of \
                         this model is called that (it has {})",
                        kinds.join(", ")
                    ),
                });
            }
        }
        let factors = adapter
            .factors
            .iter()
            .map(|(module, f)| {
                let device = self.device();
                Ok((
                    module.clone(),
                    LoraFactors {
                        a: host_matrix(&f.a, module, device)?,
                        b: host_matrix(&f.b, module, device)?,
                    },
                ))
            })
            .collect::<Result<BTreeMap<_, _>, ModelError>>()?;
        self.merge_lora(&factors, adapter.config.scale())
    }

    /// Removes every installed LoRA term.
    pub fn clear_lora(&mut self) {
        for linear in self.linears_mut() {
            linear.set_lora(None);
        }
    }

    /// Folds `scale * B A` of each module into its weight.
    pub fn merge_lora(
        &mut self,
        factors: &BTreeMap<String, LoraFactors>,
        scale: f64,
    ) -> Result<(), ModelError> {
        self.check_factors(factors)?;
        for linear in self.linears_mut() {
            let Some((site, f)) = linear
                .site()
                .and_then(|site| Some((site, factors.get(&site.module)?)))
            else {
                continue;
            };
            let b = rows_of(&f.b, site, linear.dims()[1]);
            linear.merge(f.a.clone(), b, scale);
        }
        Ok(())
    }

    fn check_factors(&self, factors: &BTreeMap<String, LoraFactors>) -> Result<(), ModelError> {
        let modules = self.lora_modules();
        for (name, f) in factors {
            let module =
                modules
                    .iter()
                    .find(|m| &m.name == name)
                    .ok_or_else(|| ModelError::Adapter {
                        module: name.clone(),
                        reason: "the model has no such module".into(),
                    })?;
            let [rank, d_in] = f.a.dims();
            let [d_out, b_rank] = f.b.dims();
            if d_in != module.d_in || d_out != module.d_out || b_rank != rank {
                return Err(ModelError::Adapter {
                    module: name.clone(),
                    reason: format!(
                        "lora_A is {:?} and lora_B {:?}; the module's weight is [{}, {}], so \
                         they must be [rank, {}] and [{}, rank]",
                        f.a.dims(),
                        f.b.dims(),
                        module.d_out,
                        module.d_in,
                        module.d_in,
                        module.d_out
                    ),
                });
            }
        }
        Ok(())
    }

    fn linears(&self) -> Vec<&Linear> {
        match &self.model {
            Model::Gpt2(arch) => arch.linears(),
            Model::Llama(arch) => arch.linears(),
            Model::Phi(arch) => arch.linears(),
        }
    }

    fn linears_mut(&mut self) -> Vec<&mut Linear> {
        match &mut self.model {
            Model::Gpt2(arch) => arch.linears_mut(),
            Model::Llama(arch) => arch.linears_mut(),
            Model::Phi(arch) => arch.linears_mut(),
        }
    }
}

fn host_matrix(t: &HostTensor, module: &str, device: &Device) -> Result<Tensor<2>, ModelError> {
    match t.shape[..] {
        [rows, cols] if rows * cols == t.data.len() => Ok(Tensor::from_data(
            TensorData::new(t.data.clone(), [rows, cols]),
            device,
        )),
        _ => Err(ModelError::Adapter {
            module: module.into(),
            reason: format!("tensor `{}` of shape {:?} is not a matrix", t.name, t.shape),
        }),
    }
}

/// The rows of a module's B that belong to one projection of `out` rows.
fn rows_of(b: &Tensor<2>, site: &LoraSite, out: usize) -> Tensor<2> {
    match site.rows {
        Some(rows) => b.clone().narrow(0, rows.start, out),
        None => b.clone(),
    }
}
