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

    /// `(t, T)` as a target solver reads token `t` of a budget of `max_new_tokens` after
    /// `prompt_len` prompt tokens (0 when unset).
    pub(crate) fn solver_clock(
        self,
        t: usize,
        max_new_tokens: usize,
        prompt_len: Option<usize>,
    ) -> (usize, usize) {
        self.clock(&StepContext {
            t,
            max_new_tokens,
            prompt_len: prompt_len.unwrap_or(0),
            layers: 0,
        })
    }
}

/// The doc shared by the `prompt_len` knob of the rules that read [`Position`].
macro_rules! prompt_len_doc {
    () => {
        "The prompt length `P` a target is solved at when `position = \"sequence\"` (default \
         0): that clock reads `P + t` of `P + T`, so the same knobs skip more after a long \
         prompt. The runner sets it to the median width of the dataset's batches (the `P` a \
         batch decodes with), and `solved.jsonl` records it. Stated only when set."
    };
}

pub(crate) use prompt_len_doc;
