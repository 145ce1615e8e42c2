//! Evaluation data for hsd: loaders for the splits under the shared data root (and for the
//! same datasets in their Hugging Face schemas), and the prompt templates that turn an
//! [`Example`] into model input. Knows nothing of models: token counts come in as a closure.
//!
//! The crate README lists the datasets, their counts and fields, and the template schema.

mod data_root;
mod dataset;
mod error;
mod example;
mod loaders;
mod names;
mod table;
mod template;
#[cfg(test)]
mod testing;
mod xml;

pub use data_root::data_root;
pub use dataset::{DatasetSpec, load};
pub use error::{DataError, Location};
pub use example::{Attribute, Category, Example, Source, Triple};
pub use names::{DatasetName, Split};
pub use template::{
    InstructionRole, Message, Mode, Prompt, PromptBody, PromptTemplate, RenderOptions, Role,
    ShotPool, Truncation,
};
