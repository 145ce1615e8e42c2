//! The backend the model tests run on, so that one test suite covers every backend:
//! `HSD_TEST_BACKEND` (flex | tch | wgpu | ndarray) when set, else the first backend compiled
//! in (`cargo test -p hsd-model --no-default-features --features tch` runs on LibTorch).

use hsd_model::Backend;

pub fn test_backend() -> Backend {
    match std::env::var("HSD_TEST_BACKEND") {
        Ok(name) => {
            let backend: Backend = name
                .parse()
                .unwrap_or_else(|err| panic!("HSD_TEST_BACKEND: {err}"));
            assert!(
                backend.is_compiled(),
                "HSD_TEST_BACKEND={name}: rebuild the tests with `--features {backend}`"
            );
            backend
        }
        Err(_) => Backend::default(),
    }
}
