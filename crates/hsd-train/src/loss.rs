//! The causal-LM loss on target tokens only: a sequence is its prompt and target, the prompt's
//! positions are inputs but never labels.

use burn::tensor::{Int, Tensor, TensorData, activation};
use hsd_model::{Batch, Decoder, TokenRuns};

use crate::TrainError;

/// One training sequence: the prompt exactly as evaluation encodes it, and the tokens the
/// model should generate after it (the reference answer and the end-of-turn token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainExample {
    pub id: String,
    pub prompt: Vec<u32>,
    pub target: Vec<u32>,
}

impl TrainExample {
    /// The model's inputs: the prompt and every target token but the last.
    pub fn inputs(&self) -> Vec<u32> {
        let mut inputs = self.prompt.clone();
        inputs.extend(&self.target[..self.target.len().saturating_sub(1)]);
        inputs
    }

    /// Input and target tokens together.
    pub fn len(&self) -> usize {
        self.prompt.len() + self.target.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// At most `max_len` tokens: the prompt loses its start first, then the target its end.
    pub fn truncated(mut self, max_len: usize) -> Self {
        let excess = self.len().saturating_sub(max_len);
        let from_prompt = excess.min(self.prompt.len().saturating_sub(1));
        self.prompt.drain(..from_prompt);
        self.target.truncate(max_len - self.prompt.len());
        self
    }

    pub(crate) fn check(&self) -> Result<(), TrainError> {
        let bad = |reason: &str| TrainError::Example {
            id: self.id.clone(),
            reason: reason.into(),
        };
        if self.prompt.is_empty() {
            return Err(bad("has no prompt tokens"));
        }
        if self.target.is_empty() {
            return Err(bad("has no target tokens (an empty reference?)"));
        }
        Ok(())
    }
}

/// The summed negative log-likelihood of every target token of `rows` (`[1]`, differentiable
/// when the installed LoRA factors are) and the number of target tokens.
pub fn target_nll(
    decoder: &Decoder,
    rows: &[&TrainExample],
    runs: Option<&TokenRuns>,
    pad_id: u32,
) -> Result<(Tensor<1>, usize), TrainError> {
    let batch = Batch::new(rows.iter().map(|e| e.inputs()).collect(), pad_id)?;
    let hidden = decoder.sequence_hidden(&batch, runs)?;
    let [b, width, d] = hidden.dims();
    let padding = batch.padding();
    let mut positions = Vec::new();
    let mut labels = Vec::new();
    for (row, (example, pad)) in rows.iter().zip(padding).enumerate() {
        let first = row * width + pad + example.prompt.len() - 1;
        positions.extend((0..example.target.len()).map(|j| (first + j) as i64));
        labels.extend(example.target.iter().map(|&id| id as i64));
    }
    let n = positions.len();
    let device = decoder.device();
    let picked = hidden.reshape([b * width, d]).select(
        0,
        Tensor::<1, Int>::from_data(TensorData::new(positions, [n]), device),
    );
    let log_probs = activation::log_softmax(decoder.head(picked), 1);
    let labels = Tensor::<2, Int>::from_data(TensorData::new(labels, [n, 1]), device);
    let nll = log_probs.gather(1, labels).sum().neg();
    Ok((nll, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(prompt: usize, target: usize) -> TrainExample {
        TrainExample {
            id: "x".into(),
            prompt: (0..prompt as u32).collect(),
            target: (100..100 + target as u32).collect(),
        }
    }

    #[test]
    fn truncation_takes_the_prompt_first_and_keeps_one_prompt_token() {
        let e = example(10, 4).truncated(8);
        assert_eq!(e.prompt, vec![6, 7, 8, 9]);
        assert_eq!(e.target.len(), 4);
        let e = example(3, 10).truncated(5);
        assert_eq!(e.prompt, vec![2]);
        assert_eq!(e.target, vec![100, 101, 102, 103]);
        assert_eq!(example(3, 3).inputs(), vec![0, 1, 2, 100, 101]);
    }

    #[test]
    fn an_example_without_a_target_is_an_error_naming_it() {
        let err = example(3, 0).check().unwrap_err().to_string();
        assert!(err.contains("`x`") && err.contains("no target"), "{err}");
    }
}
