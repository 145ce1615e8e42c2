//! The strategy registry: the manifest form of every strategy, and the one place that turns a
//! name and knobs into a [`Strategy`]. Registering a strategy is one line of the `registry!`
//! invocation below; everything else about it lives in its own file under `strategy/`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::knobs::StrategyKnobs;
use crate::{Position, SkipError, Strategy};

/// Declares [`StrategyConfig`], one variant per `Variant(Config) = "name"` line (the name is
/// the manifest's `name = "..."`, serde's tag), implements [`StrategyKnobs`] for it by
/// dispatching to the variant's config, and `From` each config.
macro_rules! registry {
    ($($variant:ident($config:ty) = $name:literal,)+) => {
        /// A strategy and its knobs, as a manifest table (`name = "hsd"`, then the knobs) or
        /// [`StrategyConfig::from_settings`] gives it. Every variant takes `target_skip_ratio`.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "name")]
        pub enum StrategyConfig {
            $(#[serde(rename = $name)] $variant($config),)+
        }

        impl StrategyConfig {
            /// Every registered name, in the order the README lists them.
            pub const NAMES: [&'static str; [$($name),+].len()] = [$($name),+];
        }

        impl StrategyKnobs for StrategyConfig {
            fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(knobs) => knobs.name(),)+
                }
            }

            fn is_dynamic(&self) -> bool {
                match self {
                    $(Self::$variant(knobs) => knobs.is_dynamic(),)+
                }
            }

            fn target_skip_ratio(&self) -> Option<f64> {
                match self {
                    $(Self::$variant(knobs) => knobs.target_skip_ratio(),)+
                }
            }

            fn set_target_skip_ratio(&mut self, target: f64) {
                match self {
                    $(Self::$variant(knobs) => knobs.set_target_skip_ratio(target),)+
                }
            }

            fn run_suffix(&self) -> Option<String> {
                match self {
                    $(Self::$variant(knobs) => knobs.run_suffix(),)+
                }
            }

            fn solve(&self, layers: usize, max_new_tokens: usize) -> Result<Self, SkipError> {
                Ok(match self {
                    $(Self::$variant(knobs) => Self::$variant(knobs.solve(layers, max_new_tokens)?),)+
                })
            }

            fn strategy(
                &self,
                layers: usize,
                max_new_tokens: usize,
            ) -> Result<Box<dyn Strategy + Send>, SkipError> {
                match self {
                    $(Self::$variant(knobs) => knobs.strategy(layers, max_new_tokens),)+
                }
            }
        }

        $(
            impl From<$config> for StrategyConfig {
                fn from(knobs: $config) -> Self {
                    Self::$variant(knobs)
                }
            }
        )+
    };
}

registry! {
    Full(crate::strategy::full::FullConfig) = "full",
    Hsd(crate::strategy::hsd::HsdConfig) = "hsd",
    SkipDecode(crate::strategy::skipdecode::SkipDecodeConfig) = "skipdecode",
    Calm(crate::strategy::calm::CalmConfig) = "calm",
    Static(crate::strategy::static_skip::StaticConfig) = "static",
    EarlyExit(crate::strategy::early_exit::EarlyExitConfig) = "early_exit",
    D3(crate::strategy::d3::D3Config) = "d3",
    Drop(crate::strategy::drop_layer::DropConfig) = "drop",
    Random(crate::strategy::random::RandomConfig<StrategyConfig>) = "random",
    Oracle(crate::strategy::oracle::OracleConfig) = "oracle",
    Searched(crate::strategy::searched::SearchedConfig) = "searched",
}

impl StrategyConfig {
    pub fn name(&self) -> &'static str {
        StrategyKnobs::name(self)
    }

    /// What tells this config's runs apart beyond its block's label and target (`drop`'s
    /// layer, `L07`); `None` for most strategies.
    pub fn run_suffix(&self) -> Option<String> {
        StrategyKnobs::run_suffix(self)
    }

    /// The strategy `name` with its default knobs.
    pub fn named(name: &str) -> Result<Self, SkipError> {
        Self::from_settings(name, &[] as &[&str])
    }

    /// Parses `key=value` settings (the CLI's `--set`) for strategy `name`. A value is read as
    /// JSON when it parses as JSON (`4`, `0.5`, `true`) and as a string otherwise (`none`);
    /// `reference.key=value` sets a knob of `random`'s reference. Unknown keys are errors
    /// naming the key and the strategy.
    pub fn from_settings(name: &str, settings: &[impl AsRef<str>]) -> Result<Self, SkipError> {
        let mut table = Map::new();
        table.insert("name".into(), Value::String(name.into()));
        for setting in settings {
            let setting = setting.as_ref();
            let malformed = || SkipError::MalformedSetting {
                strategy: name.into(),
                setting: setting.into(),
            };
            let (path, raw) = setting.split_once('=').ok_or_else(malformed)?;
            let value = serde_json::from_str(raw.trim())
                .unwrap_or_else(|_| Value::String(raw.trim().into()));
            let mut keys = path.trim().split('.').peekable();
            let mut node = &mut table;
            while let Some(key) = keys.next() {
                if key.is_empty() {
                    return Err(malformed());
                }
                if keys.peek().is_none() {
                    node.insert(key.into(), value);
                    break;
                }
                let child = node.entry(key).or_insert_with(|| Value::Object(Map::new()));
                node = child.as_object_mut().ok_or_else(malformed)?;
            }
        }
        serde_json::from_value(Value::Object(table)).map_err(|e| SkipError::Config {
            strategy: name.into(),
            message: e.to_string(),
        })
    }

    pub fn target_skip_ratio(&self) -> Option<f64> {
        StrategyKnobs::target_skip_ratio(self)
    }

    pub fn set_target_skip_ratio(&mut self, target: f64) {
        StrategyKnobs::set_target_skip_ratio(self, target);
    }

    /// Whether the layers that run depend on the data (the plan is then an upper plan).
    pub fn is_dynamic(&self) -> bool {
        StrategyKnobs::is_dynamic(self)
    }

    /// The same knobs with `prompt_len = P` wherever a rule reads the sequence clock (HSD,
    /// SkipDecode and D3 with `position = "sequence"`, also as `random`'s reference) and no
    /// `prompt_len` is stated: under that clock the skip ratio of given knobs depends on the
    /// prompt, so the runner solves targets at the prompt width its batches decode with.
    /// Every other config comes back unchanged.
    pub fn for_prompt_len(&self, prompt_len: usize) -> Self {
        let fill = |position: Position, knob: &mut Option<usize>| {
            if position == Position::Sequence && knob.is_none() {
                *knob = Some(prompt_len);
            }
        };
        let mut config = self.clone();
        match &mut config {
            Self::Hsd(knobs) => fill(knobs.position, &mut knobs.prompt_len),
            Self::SkipDecode(knobs) => fill(knobs.position, &mut knobs.prompt_len),
            Self::D3(knobs) => fill(knobs.position, &mut knobs.prompt_len),
            Self::Random(knobs) => {
                if let Some(reference) = &mut knobs.reference {
                    **reference = reference.for_prompt_len(prompt_len);
                }
            }
            _ => {}
        }
        config
    }

    /// Whether [`StrategyConfig::for_prompt_len`] would change these knobs.
    pub fn reads_prompt_len(&self) -> bool {
        self.for_prompt_len(1) != *self
    }

    /// The same strategy with every knob filled in: solved from `target_skip_ratio` when one
    /// is given (for `max_new_tokens` generated tokens after a prompt of the config's
    /// `prompt_len`, 0 when unset; see [`StrategyConfig::for_prompt_len`]), else defaulted.
    /// The target stays in the result for the record.
    pub fn solve(&self, layers: usize, max_new_tokens: usize) -> Result<Self, SkipError> {
        StrategyKnobs::solve(self, layers, max_new_tokens)
    }

    /// The solved knobs as a JSON object (everything but `name`), for reports and records.
    pub fn solved_knobs(
        &self,
        layers: usize,
        max_new_tokens: usize,
    ) -> Result<Map<String, Value>, SkipError> {
        let solved = self.solve(layers, max_new_tokens)?;
        match serde_json::to_value(&solved) {
            Ok(Value::Object(mut knobs)) => {
                knobs.remove("name");
                Ok(knobs)
            }
            other => Err(SkipError::Config {
                strategy: self.name().into(),
                message: format!("solved knobs did not serialize to an object: {other:?}"),
            }),
        }
    }

    /// The strategy for an `L`-layer model generating up to `max_new_tokens` tokens.
    pub fn build(
        &self,
        layers: usize,
        max_new_tokens: usize,
    ) -> Result<Box<dyn Strategy + Send>, SkipError> {
        self.solved_strategy(layers, max_new_tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HsdConfig, KvFill, StepContext, skip_ratio, static_schedule};
    use proptest::prelude::*;

    fn ratio_of(config: &StrategyConfig, layers: usize, tokens: usize) -> f64 {
        skip_ratio(&static_schedule(
            &mut *config.build(layers, tokens).unwrap(),
            layers,
            tokens,
            0,
        ))
    }

    #[test]
    fn a_manifest_table_deserializes_with_its_knobs() {
        let config: StrategyConfig =
            toml::from_str("name = \"hsd\"\nlevels = 3\nkv_fill = \"none\"\n").unwrap();
        let expected = HsdConfig {
            levels: Some(3),
            kv_fill: KvFill::None,
            ..Default::default()
        };
        assert_eq!(config, StrategyConfig::Hsd(expected));
        let random: StrategyConfig = toml::from_str(
            "name = \"random\"\nseed = 3\n[reference]\nname = \"skipdecode\"\nmin_layers = 4\n",
        )
        .unwrap();
        assert_eq!(
            random,
            StrategyConfig::from_settings(
                "random",
                &[
                    "seed=3",
                    "reference.name=skipdecode",
                    "reference.min_layers=4"
                ]
            )
            .unwrap()
        );
    }

    #[test]
    fn the_prompt_length_reaches_only_rules_on_the_sequence_clock() {
        let set = |name, settings: &[&str]| StrategyConfig::from_settings(name, settings).unwrap();
        for (name, knobs) in [
            ("hsd", &["target_skip_ratio=0.5"][..]),
            ("skipdecode", &["target_skip_ratio=0.5"][..]),
            ("d3", &["target_skip_ratio=0.5"][..]),
        ] {
            let generated = set(name, knobs);
            assert!(!generated.reads_prompt_len(), "{name}");
            assert_eq!(generated.for_prompt_len(400), generated);
            let sequence = set(name, &[knobs, &["position=sequence"]].concat());
            assert!(sequence.reads_prompt_len(), "{name}");
            let solved = sequence.for_prompt_len(400).solved_knobs(30, 32).unwrap();
            assert_eq!(solved["prompt_len"], 400, "{name}");
            // A stated prompt length wins over the runner's.
            let stated = set(
                name,
                &[knobs, &["position=sequence", "prompt_len=7"]].concat(),
            );
            assert_eq!(stated.for_prompt_len(400), stated, "{name}");
        }
        let random = set(
            "random",
            &[
                "reference.name=hsd",
                "reference.position=sequence",
                "target_skip_ratio=0.5",
            ],
        );
        let StrategyConfig::Random(filled) = random.for_prompt_len(90) else {
            panic!("random stays random");
        };
        let Some(StrategyConfig::Hsd(reference)) = filled.reference.as_deref() else {
            panic!("the reference stays HSD");
        };
        assert_eq!(reference.prompt_len, Some(90));
        assert!(!set("calm", &["threshold=0.9", "position=sequence"]).reads_prompt_len());
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_strategy() {
        let err = StrategyConfig::from_settings("skipdecode", &["min_layers=4", "levels=2"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("skipdecode") && err.contains("levels"),
            "{err}"
        );
        let err = toml::from_str::<StrategyConfig>("name = \"calm\"\nthreshhold = 0.9\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("threshhold"), "{err}");
        let err = StrategyConfig::from_settings("hsd", &["levels"]).unwrap_err();
        assert!(matches!(err, SkipError::MalformedSetting { .. }), "{err}");
        assert!(
            StrategyConfig::named("skip_everything")
                .unwrap_err()
                .to_string()
                .contains("skip_everything")
        );
    }

    #[test]
    fn settings_read_json_scalars_and_bare_words() {
        let config = StrategyConfig::from_settings(
            "calm",
            &["threshold=0.8", "measure=state", "min_exit=2"],
        )
        .unwrap();
        let StrategyConfig::Calm(calm) = config else {
            panic!("not calm: {config:?}")
        };
        assert_eq!((calm.threshold, calm.min_exit), (Some(0.8), 2));
    }

    #[test]
    fn every_name_round_trips_and_full_skips_nothing() {
        for name in StrategyConfig::NAMES {
            let config = StrategyConfig::named(name).unwrap();
            assert_eq!(config.name(), name);
            let json = serde_json::to_string(&config).unwrap();
            assert_eq!(
                serde_json::from_str::<StrategyConfig>(&json).unwrap(),
                config
            );
        }
        let full = StrategyConfig::named("full").unwrap();
        for plan in static_schedule(&mut *full.build(24, 16).unwrap(), 24, 16, 9) {
            assert_eq!(plan.run.count(), 24);
        }
    }

    #[test]
    fn a_dynamic_reference_of_random_is_rejected() {
        let config = StrategyConfig::from_settings("random", &["reference.name=oracle"]).unwrap();
        assert!(matches!(
            config.solve(12, 16),
            Err(SkipError::DynamicReference { .. })
        ));
    }

    #[test]
    fn solved_knobs_report_what_the_target_chose() {
        let config =
            StrategyConfig::from_settings("early_exit", &["target_skip_ratio=0.25"]).unwrap();
        let knobs = config.solved_knobs(12, 32).unwrap();
        assert_eq!(knobs["n_layers"], 9);
        assert_eq!(knobs["target_skip_ratio"], 0.25);
    }

    #[test]
    fn targets_outside_the_unit_interval_are_rejected() {
        let config = StrategyConfig::from_settings("hsd", &["target_skip_ratio=1.5"]).unwrap();
        assert!(matches!(
            config.build(12, 8),
            Err(SkipError::TargetOutOfRange { .. })
        ));
    }

    fn with_target(name: &str, target: f64) -> StrategyConfig {
        let mut config = StrategyConfig::named(name).unwrap();
        config.set_target_skip_ratio(target);
        config
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn plans_cover_every_layer(layers in 2usize..40, tokens in 1usize..40, prompt in 0usize..50, name in 0..StrategyConfig::NAMES.len()) {
            let name = StrategyConfig::NAMES[name];
            let settings: &[&str] = match name {
                "calm" => &["threshold=0.9"],
                "skipdecode" => &["min_layers=1"],
                "early_exit" => &["n_layers=1"],
                "drop" => &["layer=1"],
                _ => &[],
            };
            let config = StrategyConfig::from_settings(name, settings).unwrap();
            let mut strategy = config.build(layers, tokens).unwrap();
            for t in 0..tokens {
                let plan = strategy.plan(&StepContext { t, max_new_tokens: tokens, prompt_len: prompt, layers });
                prop_assert_eq!(plan.run.universe(), layers);
                prop_assert_eq!(plan.checks.universe(), layers);
                prop_assert!(!plan.run.is_empty());
            }
        }

        #[test]
        fn a_solved_target_is_met_within_one_layer_in_l(
            layers in 2usize..40, tokens in 1usize..100, target in 0.0f64..0.95, name in 0usize..6,
        ) {
            let name = ["hsd", "skipdecode", "static", "early_exit", "d3", "random"][name];
            let config = with_target(name, target);
            if let Ok(solved) = config.solve(layers, tokens) {
                let realized = ratio_of(&solved, layers, tokens);
                prop_assert!((realized - target).abs() <= 1.0 / layers as f64 + 1e-12, "{solved:?}: {realized}");
                prop_assert_eq!(realized, ratio_of(&config, layers, tokens));
            }
        }

        #[test]
        fn continuous_strategies_reach_every_target_in_their_range(
            layers in 12usize..40, tokens in 8usize..100, target in 0.0f64..0.5,
        ) {
            for name in ["early_exit", "skipdecode", "d3"] {
                prop_assert!(with_target(name, target).solve(layers, tokens).is_ok(), "{} {}", name, target);
            }
            if target >= 0.3 {
                prop_assert!(with_target("hsd", target).solve(layers, tokens).is_ok(), "hsd {}", target);
            }
        }
    }
}
