//! hsd-plot
