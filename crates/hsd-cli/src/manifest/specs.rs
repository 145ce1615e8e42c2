//! Which file or name each model block loads: `--model NAME=SPEC` on the command line, else
//! the block's `spec_env` variable, else its `spec`.

use std::collections::BTreeMap;

use super::blocks::ModelBlock;
use super::error::ManifestError;

/// The `--model NAME=SPEC` overrides of one command line.
#[derive(Clone, Debug, Default)]
pub struct ModelSpecs {
    overrides: BTreeMap<String, String>,
}

impl ModelSpecs {
    pub fn from_flags(flags: &[String]) -> Result<Self, ManifestError> {
        let overrides = flags
            .iter()
            .map(|flag| match flag.split_once('=') {
                Some((name, spec)) if !name.is_empty() && !spec.is_empty() => {
                    Ok((name.to_owned(), spec.to_owned()))
                }
                _ => Err(ManifestError::ModelFlag {
                    given: flag.clone(),
                }),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { overrides })
    }

    /// The spec for `block`; `None` for an optional model with none, an error for a required
    /// one.
    pub fn resolve(&self, block: &ModelBlock) -> Result<Option<String>, ManifestError> {
        let from_env = block
            .spec_env
            .as_deref()
            .and_then(|v| std::env::var(v).ok())
            .filter(|v| !v.is_empty());
        match self
            .overrides
            .get(&block.name)
            .cloned()
            .or(from_env)
            .or_else(|| block.spec.clone())
        {
            Some(spec) => Ok(Some(spec)),
            None if block.optional => Ok(None),
            None => Err(ManifestError::NoModelSpec {
                model: block.name.clone(),
                variable: block.spec_env.clone().unwrap_or_else(|| "spec".into()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_or_name_themselves() {
        let specs = ModelSpecs::from_flags(&["gpt2=/m/gpt2".into()]).unwrap();
        assert_eq!(specs.overrides["gpt2"], "/m/gpt2");
        let err = ModelSpecs::from_flags(&["gpt2".into()]).unwrap_err();
        assert_eq!(err.to_string(), "--model \"gpt2\": expected NAME=SPEC");
    }

    #[test]
    fn optional_models_without_a_spec_are_left_out_and_required_ones_are_errors() {
        let mut block = ModelBlock {
            name: "gpt2".into(),
            spec: None,
            spec_env: Some("HSD_TEST_UNSET_VARIABLE".into()),
            optional: true,
            prompt_mode: hsd_data::Mode::Plain,
            shapes: None,
            adapter: None,
        };
        assert_eq!(ModelSpecs::default().resolve(&block).unwrap(), None);
        let specs = ModelSpecs::from_flags(&["gpt2=/m".into()]).unwrap();
        assert_eq!(specs.resolve(&block).unwrap().as_deref(), Some("/m"));
        block.optional = false;
        let err = ModelSpecs::default()
            .resolve(&block)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("set HSD_TEST_UNSET_VARIABLE or pass --model gpt2=SPEC"),
            "{err}"
        );
    }
}
