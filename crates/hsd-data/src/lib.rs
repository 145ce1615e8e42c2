//! hsd-data
