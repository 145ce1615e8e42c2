//! Where each generated token could have exited, as a strategy observed it while decoding:
//! the early-exit oracle's findings per token and batch row, and the per-row view that a run's
//! records store.

use serde::{Deserialize, Serialize};

/// The oracle's finding for one generated token; layers are 0-based, one entry per batch row,
/// `None` where a check came without probabilities.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OracleToken {
    pub t: usize,
    /// The first layer whose argmax is the last layer's: an exit after it needs `first + 1` layers.
    pub first_match: Vec<Option<usize>>,
    /// The first layer from which every layer's argmax is the last layer's.
    pub settled: Vec<Option<usize>>,
}

/// The findings of one decode of a batch: one [`OracleToken`] per generated token whose last
/// layer was checked, in decoding order.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ExitObservations {
    tokens: Vec<OracleToken>,
}

impl ExitObservations {
    pub(crate) fn push(&mut self, token: OracleToken) {
        self.tokens.push(token);
    }

    pub fn tokens(&self) -> &[OracleToken] {
        &self.tokens
    }

    /// For batch row `row`, which generated `tokens` tokens: per token `t`, the fewest layers
    /// whose exit gives the full model's token (`first_match + 1`). `None` where the row had no
    /// finding for that token: no probabilities, or no check (the first token comes from the
    /// prefill). A run's records store this as `oracle_layers`.
    pub fn fewest_layers(&self, row: usize, tokens: usize) -> Vec<Option<usize>> {
        let mut layers = vec![None; tokens];
        for token in &self.tokens {
            if let Some(slot) = layers.get_mut(token.t) {
                *slot = token
                    .first_match
                    .get(row)
                    .copied()
                    .flatten()
                    .map(|layer| layer + 1);
            }
        }
        layers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewest_layers_places_each_rows_finding_at_its_token() {
        let mut observations = ExitObservations::default();
        for (t, first_match) in [
            (1, vec![Some(0), None]),
            (2, vec![Some(3), Some(5)]),
            (9, vec![Some(1), Some(1)]),
        ] {
            observations.push(OracleToken {
                t,
                settled: first_match.clone(),
                first_match,
            });
        }
        assert_eq!(
            observations.fewest_layers(0, 4),
            [None, Some(1), Some(4), None]
        );
        assert_eq!(observations.fewest_layers(1, 3), [None, None, Some(6)]);
        assert_eq!(observations.fewest_layers(2, 3), [None, None, None]);
    }
}
