//! hsd-metrics
