//! One loader per dataset family. Each reads the layout under the shared data root and the
//! same dataset in its Hugging Face schema, choosing by the file's columns (or extension).

mod common_gen;
mod dialogue;
mod document;
mod e2e;
mod layout;
mod triples;

use std::path::Path;

use crate::error::DataError;
use crate::example::Example;
use crate::names::DatasetName;

pub(crate) fn load_file(
    name: DatasetName,
    path: &Path,
    id_prefix: &str,
) -> Result<Vec<Example>, DataError> {
    match name {
        DatasetName::CnnDailymail => document::load_news(path, "article", "highlights"),
        DatasetName::Xsum => document::load_news(path, "document", "summary"),
        DatasetName::Scitldr => document::load_scitldr(path),
        DatasetName::E2e => e2e::load(path, id_prefix),
        DatasetName::CommonGen => common_gen::load(path),
        DatasetName::Samsum => dialogue::load_samsum(path, id_prefix),
        DatasetName::Dialogsum => dialogue::load_dialogsum(path),
        DatasetName::Dart => triples::load_dart(path, id_prefix),
        DatasetName::Webnlg2017 => triples::load_webnlg(path),
    }
}
