//! hsd-model
