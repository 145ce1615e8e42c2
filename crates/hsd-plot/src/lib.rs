//! The reproduction's figures: line charts with confidence bands and reference lines, and
//! layer-usage heat maps, written as PNG or SVG.
//!
//! Text is drawn with DejaVu Sans, bundled in the binary and registered with plotters'
//! `ab_glyph` renderer, so a PNG looks the same on every machine whatever fonts it has.
//! SVG output names the same family and leaves rendering to the viewer.
//!
//! The crate knows nothing about experiments: callers hand it numbers and labels.

mod chart;
mod heatmap;
mod style;

pub use chart::{LineChart, Point, RefLine, Series, SeriesStyle, Stroke, render_panels};
pub use heatmap::{HeatMap, render_heat_map};

use std::path::{Path, PathBuf};

/// Why a figure could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{path}: unsupported figure extension (expected .png or .svg)")]
    Extension { path: PathBuf },
    #[error("{path}: nothing to draw: {what}")]
    Empty { path: PathBuf, what: String },
    #[error("{path}: non-finite value in {what}")]
    NonFinite { path: PathBuf, what: String },
    #[error("{path}: drawing failed: {message}")]
    Draw { path: PathBuf, message: String },
    #[error("the bundled font could not be registered")]
    Font,
}

/// The two output formats, chosen from the file extension.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    pub fn from_path(path: &Path) -> Result<Self, PlotError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => Ok(Self::Png),
            Some("svg") => Ok(Self::Svg),
            _ => Err(PlotError::Extension {
                path: path.to_path_buf(),
            }),
        }
    }
}

fn draw_error(path: &Path, err: impl std::fmt::Display) -> PlotError {
    PlotError::Draw {
        path: path.to_path_buf(),
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(
            Format::from_path(Path::new("a/b.PNG")).unwrap(),
            Format::Png
        );
        assert_eq!(Format::from_path(Path::new("b.svg")).unwrap(), Format::Svg);
        assert!(matches!(
            Format::from_path(Path::new("b.pdf")),
            Err(PlotError::Extension { .. })
        ));
    }
}
