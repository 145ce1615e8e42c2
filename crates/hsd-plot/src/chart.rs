//! Line charts: one line per series, optional confidence bands, horizontal reference lines,
//! laid out as a grid of panels sharing one legend style.

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::style::{self, FONT};
use crate::{Format, PlotError, draw_error};

/// One observation: `y` at `x`, with an optional interval `[lo, hi]` drawn as a band.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub band: Option<(f64, f64)>,
}

impl Point {
    pub fn new(x: f64, y: f64) -> Self {
        Self { x, y, band: None }
    }

    pub fn with_band(x: f64, y: f64, lo: f64, hi: f64) -> Self {
        Self {
            x,
            y,
            band: Some((lo, hi)),
        }
    }
}

/// How a series is drawn.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum SeriesStyle {
    /// A coloured line with a marker at every point: measured data.
    #[default]
    Measured,
    /// A grey dashed line without markers: a bound or a model, not a measurement.
    Reference,
}

/// A named line. Points are drawn in the order given; sort them by `x` first.
#[derive(Clone, PartialEq, Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<Point>,
    pub style: SeriesStyle,
}

impl Series {
    pub fn measured(label: impl Into<String>, points: Vec<Point>) -> Self {
        Self {
            label: label.into(),
            points,
            style: SeriesStyle::Measured,
        }
    }

    pub fn reference(label: impl Into<String>, points: Vec<Point>) -> Self {
        Self {
            label: label.into(),
            points,
            style: SeriesStyle::Reference,
        }
    }
}

/// A horizontal line at `y`, labelled at its right end (e.g. the 90% retained-quality line).
#[derive(Clone, PartialEq, Debug)]
pub struct RefLine {
    pub y: f64,
    pub label: String,
}

/// One panel.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub ref_lines: Vec<RefLine>,
    /// Fixed axis ranges; `None` fits the data (bands and reference lines included) with a margin.
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
}

impl LineChart {
    fn validate(&self, path: &Path) -> Result<(), PlotError> {
        if self.series.iter().all(|s| s.points.is_empty()) {
            return Err(PlotError::Empty {
                path: path.to_path_buf(),
                what: format!("panel '{}' has no points", self.title),
            });
        }
        for series in &self.series {
            for p in &series.points {
                let band_ok = p
                    .band
                    .is_none_or(|(lo, hi)| lo.is_finite() && hi.is_finite());
                if !(p.x.is_finite() && p.y.is_finite() && band_ok) {
                    return Err(PlotError::NonFinite {
                        path: path.to_path_buf(),
                        what: format!("panel '{}', series '{}'", self.title, series.label),
                    });
                }
            }
        }
        Ok(())
    }

    fn ranges(&self) -> (Range<f64>, Range<f64>) {
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        let xs = points().map(|p| p.x);
        let ys = points()
            .flat_map(|p| [Some(p.y), p.band.map(|b| b.0), p.band.map(|b| b.1)])
            .flatten()
            .chain(self.ref_lines.iter().map(|r| r.y));
        let x = self.x_range.map_or_else(|| padded(xs, 0.04), |(a, b)| a..b);
        let y = self.y_range.map_or_else(|| padded(ys, 0.08), |(a, b)| a..b);
        (x, y)
    }
}

fn padded(values: impl Iterator<Item = f64>, fraction: f64) -> Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
    (lo - span * fraction)..(hi + span * fraction)
}

/// Draws `panels` in a grid `columns` wide into `path` (`.png` or `.svg`).
pub fn render_panels(panels: &[LineChart], columns: usize, path: &Path) -> Result<(), PlotError> {
    if panels.is_empty() {
        return Err(PlotError::Empty {
            path: path.to_path_buf(),
            what: "no panels".into(),
        });
    }
    for panel in panels {
        panel.validate(path)?;
    }
    style::ensure_font()?;
    let columns = columns.clamp(1, panels.len());
    let rows = panels.len().div_ceil(columns);
    let (w, h) = (
        style::PANEL_WIDTH * columns as u32,
        style::PANEL_HEIGHT * rows as u32,
    );
    match Format::from_path(path)? {
        Format::Png => {
            let s = style::PNG_SCALE;
            let root = BitMapBackend::new(path, (w * s, h * s)).into_drawing_area();
            draw_grid(&root, panels, rows, columns, s).map_err(|e| draw_error(path, e))?;
            root.present().map_err(|e| draw_error(path, e))
        }
        Format::Svg => {
            let root = SVGBackend::new(path, (w, h)).into_drawing_area();
            draw_grid(&root, panels, rows, columns, 1).map_err(|e| draw_error(path, e))?;
            root.present().map_err(|e| draw_error(path, e))
        }
    }
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw_grid<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panels: &[LineChart],
    rows: usize,
    columns: usize,
    scale: u32,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let areas = root.split_evenly((rows, columns));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        draw_panel(area, panel, scale)?;
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &LineChart,
    scale: u32,
) -> DrawResult<DB> {
    let px = |v: u32| (v * scale) as i32;
    let (x_range, y_range) = panel.ranges();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, px(17)).into_font())
        .margin(px(10))
        .x_label_area_size(px(40))
        .y_label_area_size(px(56))
        .build_cartesian_2d(x_range.clone(), y_range)?;
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .axis_desc_style((FONT, px(14)))
        .label_style((FONT, px(12)))
        .light_line_style(style::GRID.mix(0.0))
        .bold_line_style(style::GRID.stroke_width(scale))
        .axis_style(BLACK.stroke_width(scale))
        .x_labels(7)
        .y_labels(6)
        .draw()?;

    for line in &panel.ref_lines {
        let stroke = style::REFERENCE.stroke_width(scale);
        chart.draw_series(DashedLineSeries::new(
            [(x_range.start, line.y), (x_range.end, line.y)],
            px(6),
            px(4),
            stroke,
        ))?;
        chart.draw_series(std::iter::once(Text::new(
            line.label.clone(),
            (x_range.start + (x_range.end - x_range.start) * 0.02, line.y),
            (FONT, px(11)).into_font().color(&style::REFERENCE).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    plotters::style::text_anchor::VPos::Bottom,
                ),
            ),
        )))?;
    }

    let mut measured = 0;
    for series in &panel.series {
        let color = match series.style {
            SeriesStyle::Measured => {
                measured += 1;
                style::color(measured - 1)
            }
            SeriesStyle::Reference => style::REFERENCE,
        };
        let banded: Vec<(f64, f64, f64)> = series
            .points
            .iter()
            .filter_map(|p| p.band.map(|(lo, hi)| (p.x, lo, hi)))
            .collect();
        if banded.len() >= 2 {
            let outline: Vec<(f64, f64)> = banded
                .iter()
                .map(|&(x, _, hi)| (x, hi))
                .chain(banded.iter().rev().map(|&(x, lo, _)| (x, lo)))
                .collect();
            chart.draw_series(std::iter::once(Polygon::new(
                outline,
                color.mix(0.14).filled(),
            )))?;
        }
        let xy: Vec<(f64, f64)> = series.points.iter().map(|p| (p.x, p.y)).collect();
        let stroke = color.stroke_width(2 * scale);
        let legend_stroke = stroke;
        let reference = series.style == SeriesStyle::Reference;
        let drawn = if reference {
            chart.draw_series(DashedLineSeries::new(xy.clone(), px(7), px(4), stroke))?
        } else {
            chart.draw_series(LineSeries::new(xy.clone(), stroke))?
        };
        drawn.label(series.label.clone()).legend(move |(x, y)| {
            PathElement::new([(x, y), (x + 20 * scale as i32, y)], legend_stroke)
        });
        if !reference {
            chart.draw_series(
                xy.iter()
                    .map(|&p| Circle::new(p, 3 * scale, color.filled())),
            )?;
        }
    }

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .margin(px(8))
        .legend_area_size(px(26))
        .label_font((FONT, px(12)))
        .background_style(WHITE.mix(0.85))
        .border_style(style::GRID.stroke_width(scale))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> LineChart {
        LineChart {
            title: "XSum".into(),
            x_label: "measured skip ratio".into(),
            y_label: "ROUGE-L".into(),
            series: vec![
                Series::measured(
                    "hsd",
                    (0..6)
                        .map(|i| f64::from(i) / 10.0)
                        .map(|x| {
                            Point::with_band(x, 30.0 - 10.0 * x, 28.0 - 10.0 * x, 32.0 - 10.0 * x)
                        })
                        .collect(),
                ),
                Series::reference(
                    "Amdahl bound",
                    vec![Point::new(0.0, 1.0), Point::new(0.5, 2.0)],
                ),
            ],
            ref_lines: vec![RefLine {
                y: 27.0,
                label: "90% of vanilla".into(),
            }],
            x_range: None,
            y_range: None,
        }
    }

    #[test]
    fn ranges_cover_bands_and_reference_lines() {
        let (x, y) = demo().ranges();
        assert!(x.start < 0.0 && x.end > 0.5);
        assert!(y.start < 1.0 && y.end > 32.0);
    }

    #[test]
    fn png_and_svg_are_written_with_the_bundled_font() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("q.png");
        let svg = dir.path().join("q.svg");
        render_panels(&[demo(), demo()], 2, &png).unwrap();
        render_panels(&[demo()], 1, &svg).unwrap();
        let png_bytes = std::fs::read(&png).unwrap();
        assert_eq!(&png_bytes[..8], b"\x89PNG\r\n\x1a\n");
        let svg_text = std::fs::read_to_string(&svg).unwrap();
        assert!(svg_text.contains("DejaVu Sans"));
        assert!(svg_text.contains("90% of vanilla"));
        assert!(svg_text.contains("Amdahl bound"));
    }

    #[test]
    fn bad_input_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.png");
        let mut chart = demo();
        chart.series[0].points[1].y = f64::NAN;
        let err = render_panels(&[chart], 1, &path).unwrap_err();
        assert!(matches!(err, PlotError::NonFinite { .. }));
        assert!(err.to_string().contains("bad.png"));
        assert!(matches!(
            render_panels(&[], 1, &path),
            Err(PlotError::Empty { .. })
        ));
    }
}
