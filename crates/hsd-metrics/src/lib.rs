//! Text-generation metrics in pure Rust, each equal to the implementation the field reports:
//!
//! | metric | reference implementation |
//! |---|---|
//! | [`Rouge`] (1, 2, L, Lsum) | Google `rouge-score` 0.1.2, Porter stemming |
//! | [`Bleu`] | sacreBLEU 2.6.0 corpus BLEU, 13a tokenizer, exp smoothing |
//! | [`Chrf`] | sacreBLEU 2.6.0 chrF2 |
//! | [`Meteor`] | NLTK 3.10 `meteor_score`, WordNet 3.0 |
//! | [`Cider`] | pycocoevalcap 1.2 `Cider` (CIDEr-D) |
//!
//! Every metric scores a corpus of predictions, each against one or more references, and
//! returns the corpus score together with one score per example (for bootstrap intervals).
//! Examples are scored in parallel with rayon.

mod bleu;
mod chrf;
mod cider;
mod meteor;
mod metric;
pub mod porter;
pub mod ptb;
mod pytext;
mod rouge;
mod sacre;
pub mod wordnet;

pub use bleu::Bleu;
pub use chrf::Chrf;
pub use cider::{Cider, CiderTokenization};
pub use meteor::{Meteor, tokenize as meteor_tokenize};
pub use metric::{Metric, MetricError, SACREBLEU_VERSION, Scores};
pub use rouge::{Prf, Rouge, RougeType};
pub use wordnet::WordNet;

/// The metric `name` with its default (reference) configuration; METEOR loads WordNet from
/// the places [`WordNet::locate`] searches.
pub fn by_name(name: &str) -> Result<Box<dyn Metric>, MetricError> {
    Ok(match name {
        "rouge" => Box::new(Rouge::default()),
        "bleu" => Box::new(Bleu),
        "chrf" => Box::new(Chrf),
        "meteor" => Box::new(Meteor::new(WordNet::load_default()?)),
        "cider" => Box::new(Cider::default()),
        _ => {
            return Err(MetricError::UnknownMetric {
                name: name.to_owned(),
            });
        }
    })
}
