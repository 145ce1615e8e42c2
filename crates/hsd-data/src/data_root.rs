//! Where the evaluation data is, found when the program runs (never where it was compiled), so
//! that an installed `hsd` reads the data of whichever checkout it is run from.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::error::DataError;

/// The folder that holds the evaluation splits: `HSD_DATA` when it is set (an error if it is
/// not a folder), else the first `shared/data` folder in the current directory or one of its
/// ancestors. The data lives beside the checkouts (`/work/shared/data` for a checkout at
/// `/work/main`), so any directory inside a checkout finds it.
pub fn data_root() -> Result<PathBuf, DataError> {
    let start = std::env::current_dir().map_err(|source| DataError::Io {
        path: PathBuf::from("."),
        source,
    })?;
    resolve(std::env::var_os("HSD_DATA").as_deref(), &start)
}

/// `data_root` with the environment variable's value and the search's start passed in.
fn resolve(hsd_data: Option<&OsStr>, start: &Path) -> Result<PathBuf, DataError> {
    if let Some(path) = hsd_data.filter(|path| !path.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_dir() {
            Ok(path)
        } else {
            Err(DataError::DataRootNotADirectory { path })
        };
    }
    start
        .ancestors()
        .map(shared_data)
        .find(|candidate| candidate.is_dir())
        .ok_or_else(|| DataError::NoDataRoot {
            searched_from: start.to_owned(),
        })
}

fn shared_data(dir: &Path) -> PathBuf {
    dir.join("shared").join("data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsd_data_wins_and_must_be_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let found = resolve(Some(dir.path().as_os_str()), Path::new("/")).unwrap();
        assert_eq!(found, dir.path());
        let err = resolve(Some(OsStr::new("/nonexistent/x")), dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("HSD_DATA points to /nonexistent/x"), "{err}");
    }

    #[test]
    fn the_nearest_shared_data_above_the_start_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("main/crates/hsd-data");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::create_dir_all(shared_data(dir.path())).unwrap();
        assert_eq!(resolve(None, &inside).unwrap(), shared_data(dir.path()));
        assert_eq!(
            resolve(Some(OsStr::new("")), &inside).unwrap(),
            shared_data(dir.path()),
            "an empty HSD_DATA counts as unset"
        );
        let checkout = dir.path().join("main");
        std::fs::create_dir_all(shared_data(&checkout)).unwrap();
        assert_eq!(resolve(None, &inside).unwrap(), shared_data(&checkout));
    }

    #[test]
    fn finding_nothing_names_hsd_data_and_the_start() {
        let dir = tempfile::tempdir().unwrap();
        if dir.path().ancestors().any(|d| shared_data(d).is_dir()) {
            eprintln!(
                "skipping: a shared/data folder sits above {}",
                dir.path().display()
            );
            return;
        }
        let err = resolve(None, dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("HSD_DATA") && err.contains(&dir.path().display().to_string()),
            "{err}"
        );
    }
}
