//! Rotary position embedding: the angle table, the angles of one forward pass, and the
//! `rope_parameters` of a transformers 5 config.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use serde::Deserialize;

use crate::layers::to_device;

/// Rotary position embedding in the Hugging Face "rotate half" layout, applied to the first
/// `rotary_dim` channels of each head (all of them unless the model rotates partially).
#[derive(Module, Debug)]
pub(crate) struct Rope {
    /// `[max_positions, rotary_dim]`: the half-width angle table written out twice.
    cos: Tensor<2>,
    sin: Tensor<2>,
    rotary_dim: usize,
}

/// The rotation for one forward pass, gathered once and shared by every layer.
#[derive(Clone, Debug)]
pub(crate) struct RopeAngles {
    /// `[B, 1, T, rotary_dim]`.
    cos: Tensor<4>,
    sin: Tensor<4>,
    rotary_dim: usize,
}

impl Rope {
    pub(crate) fn new(
        rotary_dim: usize,
        theta: f64,
        max_positions: usize,
        device: &Device,
    ) -> Self {
        let half = rotary_dim / 2;
        let mut cos = Vec::with_capacity(max_positions * rotary_dim);
        let mut sin = Vec::with_capacity(max_positions * rotary_dim);
        for pos in 0..max_positions {
            // Angles in f32 like the reference, so long positions round the same way.
            let row: Vec<f32> = (0..half)
                .map(|i| {
                    let inv_freq = (1.0 / theta.powf((2 * i) as f64 / rotary_dim as f64)) as f32;
                    pos as f32 * inv_freq
                })
                .collect();
            for _ in 0..2 {
                cos.extend(row.iter().map(|a| a.cos()));
                sin.extend(row.iter().map(|a| a.sin()));
            }
        }
        Self {
            cos: to_device(cos, [max_positions, rotary_dim], device),
            sin: to_device(sin, [max_positions, rotary_dim], device),
            rotary_dim,
        }
    }

    pub(crate) fn max_positions(&self) -> usize {
        self.cos.dims()[0]
    }

    /// Gathers the angles for `positions` (`[B, T]`).
    pub(crate) fn angles(&self, positions: &Tensor<2, Int>) -> RopeAngles {
        let [b, t] = positions.dims();
        let flat = positions.clone().reshape([b * t]);
        let gather = |table: &Tensor<2>| {
            table
                .clone()
                .select(0, flat.clone())
                .reshape([b, 1, t, self.rotary_dim])
        };
        RopeAngles {
            cos: gather(&self.cos),
            sin: gather(&self.sin),
            rotary_dim: self.rotary_dim,
        }
    }
}

impl RopeAngles {
    /// Rotates `x` (`[B, heads, T, head_dim]`).
    pub(crate) fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, t, head_dim] = x.dims();
        let half = self.rotary_dim / 2;
        let (rot, pass) = if self.rotary_dim == head_dim {
            (x, None)
        } else {
            (
                x.clone().narrow(3, 0, self.rotary_dim),
                Some(x.narrow(3, self.rotary_dim, head_dim - self.rotary_dim)),
            )
        };
        let first = rot.clone().narrow(3, 0, half);
        let second = rot.clone().narrow(3, half, half);
        let rotated_half = Tensor::cat(vec![second.neg(), first], 3);
        let out = rot * self.cos.clone() + rotated_half * self.sin.clone();
        debug_assert_eq!(out.dims(), [b, h, t, self.rotary_dim]);
        match pass {
            Some(pass) => Tensor::cat(vec![out, pass], 3),
            None => out,
        }
    }
}

/// `rope_parameters` of a transformers 5 `config.json`, which replaces the 4.x top-level
/// `rope_theta`, `rope_scaling` and `partial_rotary_factor`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RopeParameters {
    pub rope_theta: Option<f64>,
    pub rope_type: Option<String>,
    pub partial_rotary_factor: Option<f64>,
}

impl RopeParameters {
    /// The RoPE base of a config with these `rope_parameters` and the 4.x top-level
    /// `rope_theta`: the former wins, and 10000 (transformers' default) stands in for both.
    pub(crate) fn theta(parameters: Option<&Self>, top_level: Option<f64>) -> f64 {
        parameters
            .and_then(|p| p.rope_theta)
            .or(top_level)
            .unwrap_or(10_000.0)
    }
}
