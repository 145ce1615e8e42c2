//! One LoRA term on one projection, while training: where it sits in the Hugging Face module
//! tree, its factors, and its dropout. [`crate::lora`] installs, seeds and merges them.

use burn::tensor::{Tensor, TensorData};
use rand_xoshiro::SplitMix64;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

use crate::weight_scope::WeightScope;

/// Where a projection sits in the Hugging Face module tree: the module's dotted name and,
/// for a block of a fused module (GPT-2's `c_attn` holds q, k and v), which rows it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoraSite {
    pub(crate) module: String,
    pub(crate) rows: Option<RowBlock>,
}

/// Rows `start..start + len` of a fused module's `total` output rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RowBlock {
    pub(crate) start: usize,
    pub(crate) total: usize,
}

impl LoraSite {
    /// The whole module at `scope`.
    pub(crate) fn whole(scope: &WeightScope<'_>) -> Self {
        Self {
            module: scope.prefix().to_string(),
            rows: None,
        }
    }

    /// Rows `start..` of the `total`-row module at `scope`.
    pub(crate) fn rows(scope: &WeightScope<'_>, start: usize, total: usize) -> Self {
        Self {
            module: scope.prefix().to_string(),
            rows: Some(RowBlock { start, total }),
        }
    }
}

/// A LoRA term on one projection: installed while training, or kept beside a projection's
/// quantized blocks after an adapter merge (`--weights native`), with no dropout.
#[derive(Clone, Debug)]
pub(crate) struct LoraTerm {
    /// `[rank, in]`.
    pub(crate) a: Tensor<2>,
    /// `[out, rank]`: this projection's rows of the module's B.
    pub(crate) b: Tensor<2>,
    pub(crate) scale: f64,
    /// The probability of zeroing an input of the LoRA path (PEFT's `lora_dropout`).
    pub(crate) dropout: f64,
    /// The seed of this module's dropout mask (`Decoder::seed_lora_dropout`).
    pub(crate) mask_seed: u64,
}

impl LoraTerm {
    /// `scale * dropout(x) A^T B^T` for rows `x` (`[N, in]`).
    pub(crate) fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = if self.dropout > 0.0 {
            let mask = dropout_mask(self.mask_seed, x.dims(), 1.0 - self.dropout);
            let mask = Tensor::<2>::from_data(mask, &x.device());
            x * mask
        } else {
            x
        };
        x.matmul(self.a.clone().transpose())
            .matmul(self.b.clone().transpose())
            * self.scale
    }
}

/// `seed` mixed with an FNV-1a hash of the module name.
pub(crate) fn module_seed(seed: u64, module: &str) -> u64 {
    let hash = module.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    SplitMix64::seed_from_u64(seed ^ hash).next_u64()
}

/// Inverted dropout's multiplier for `dims`: `1 / keep` with probability `keep`, else 0.
/// Each 64-bit SplitMix64 draw decides two entries (32 bits each). Made on the host: the
/// backend's generic Bernoulli sampler (ChaCha20, one call per entry) took a seventh of a
/// training step.
fn dropout_mask(seed: u64, dims: [usize; 2], keep: f64) -> TensorData {
    let len = dims[0] * dims[1];
    let threshold = (keep * 2f64.powi(32)).round() as u64;
    let kept = (1.0 / keep) as f32;
    let entry = |bits: u64| if bits < threshold { kept } else { 0.0 };
    let mut rng = SplitMix64::seed_from_u64(seed);
    let mut mask = Vec::with_capacity(len + 1);
    while mask.len() < len {
        let draw = rng.next_u64();
        mask.push(entry(draw & 0xffff_ffff));
        mask.push(entry(draw >> 32));
    }
    mask.truncate(len);
    TensorData::new(mask, dims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(mask: &TensorData) -> Vec<f32> {
        mask.try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn a_dropout_mask_keeps_its_share_at_one_over_keep() {
        let keep = 0.95;
        let mask = entries(&dropout_mask(7, [400, 577], keep));
        assert_eq!(mask.len(), 400 * 577);
        let kept = mask.iter().filter(|&&m| m != 0.0).count() as f64;
        assert!(mask.iter().all(|&m| m == 0.0 || m == (1.0 / keep) as f32));
        // 4 standard deviations of a binomial share over 230,800 draws.
        let n = mask.len() as f64;
        let sigma = (keep * (1.0 - keep) / n).sqrt();
        assert!((kept / n - keep).abs() < 4.0 * sigma, "kept {}", kept / n);
        // Odd widths use both halves of every draw but the last.
        assert_eq!(entries(&dropout_mask(7, [1, 3], 0.5)).len(), 3);
    }

    #[test]
    fn dropout_masks_follow_the_seed_and_the_module() {
        let mask = |seed| entries(&dropout_mask(seed, [64, 64], 0.5));
        assert_eq!(mask(3), mask(3));
        assert_ne!(mask(3), mask(4));
        let q = module_seed(3, "model.layers.0.self_attn.q_proj");
        let k = module_seed(3, "model.layers.0.self_attn.k_proj");
        assert_ne!(q, k);
        assert_eq!(q, module_seed(3, "model.layers.0.self_attn.q_proj"));
    }
}
