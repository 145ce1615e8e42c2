//! Which clock a position-dependent rule reads.

use serde::{Deserialize, Serialize};

use crate::StepContext;

/// How `t` and `T` in a rule are read.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// `t` counts generated tokens (0 for the first), `T` is `max_new_tokens`.
    #[default]
    Generated,
    /// `t` and `T` become `P + t` and `P + T`: the paper's "current sequence length" reading.
    Sequence,
}

impl Position {
    /// `(t, T)` for the token described by `cx`.
    pub fn clock(self, cx: &StepContext) -> (usize, usize) {
        match self {
            Self::Generated => (cx.t, cx.max_new_tokens),
            Self::Sequence => (cx.prompt_len + cx.t, cx.prompt_len + cx.max_new_tokens),
        }
    }
}
