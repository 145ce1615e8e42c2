//! Errors of strategy configuration, target solving and accounting.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum SkipError {
    /// A knob has a value the rule cannot use.
    #[error("strategy `{strategy}`: knob `{knob}` {reason}")]
    InvalidKnob {
        strategy: &'static str,
        knob: &'static str,
        reason: String,
    },

    /// A manifest table or `--set` list did not deserialize (unknown key, wrong type, ...).
    #[error("strategy `{strategy}`: {message}")]
    Config { strategy: String, message: String },

    /// A `--set` entry that is not of the form `key=value`.
    #[error("setting `{setting}` for strategy `{strategy}` is not of the form key=value")]
    MalformedSetting { strategy: String, setting: String },

    /// The model or budget the strategy is built for is degenerate.
    #[error(
        "strategy `{strategy}`: cannot plan for {layers} layers and max_new_tokens = {max_new_tokens}"
    )]
    EmptyShape {
        strategy: &'static str,
        layers: usize,
        max_new_tokens: usize,
    },

    /// `target_skip_ratio` outside `[0, 1)`.
    #[error("strategy `{strategy}`: target_skip_ratio {target} is outside [0, 1)")]
    TargetOutOfRange { strategy: &'static str, target: f64 },

    /// No knob setting on the search grid comes within `1/L` of the target.
    #[error(
        "strategy `{strategy}`: target_skip_ratio {target} is out of reach at {layers} layers and \
         max_new_tokens = {max_new_tokens}; the nearest is {nearest:.4} ({knobs})"
    )]
    TargetUnreachable {
        strategy: &'static str,
        target: f64,
        layers: usize,
        max_new_tokens: usize,
        nearest: f64,
        knobs: String,
    },

    /// The strategy's skip ratio depends on the data, so a target cannot be solved here.
    #[error(
        "strategy `{strategy}`: the skip ratio depends on the data, so target_skip_ratio cannot be \
         solved from the knobs; set `{knob}` (calibrate it with `calm::calibrate_threshold`)"
    )]
    NeedsCalibration {
        strategy: &'static str,
        knob: &'static str,
    },

    /// A strategy that is not a static schedule was named where one is needed.
    #[error("strategy `{strategy}`: reference `{reference}` is not a static schedule")]
    DynamicReference {
        strategy: &'static str,
        reference: String,
    },

    /// A decoder trace that does not fit the model the statistics are kept for.
    #[error("step trace for token {token}: {what} covers {got} layers, the model has {expected}")]
    TraceShape {
        token: usize,
        what: &'static str,
        got: usize,
        expected: usize,
    },
}
