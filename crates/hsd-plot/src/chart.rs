//! Line charts: one line per series, optional confidence bands, horizontal reference lines,
//! laid out as a grid of panels sharing one legend style.

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
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

/// How a measured line is stroked, each with its own marker, so that a second grouping (a
/// model arm beside a strategy's colour) reads without a second palette.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Stroke {
    /// A solid line with round markers.
    #[default]
    Solid,
    /// A dashed line with triangles.
    Dashed,
    /// A dotted line with crosses.
    Dotted,
}

impl Stroke {
    /// The strokes in order, for the `i`-th group.
    pub fn nth(i: usize) -> Self {
        [Self::Solid, Self::Dashed, Self::Dotted][i % 3]
    }

    /// Dash length and gap in unscaled pixels; `None` for a solid line.
    fn dash(self) -> Option<(u32, u32)> {
        match self {
            Self::Solid => None,
            Self::Dashed => Some((7, 4)),
            Self::Dotted => Some((2, 3)),
        }
    }
}

/// A named line. Points are drawn in the order given; sort them by `x` first.
#[derive(Clone, PartialEq, Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<Point>,
    pub style: SeriesStyle,
    /// The palette index of a measured line; `None` takes the next colour of its panel.
    pub color: Option<usize>,
    pub stroke: Stroke,
}

impl Series {
    pub fn measured(label: impl Into<String>, points: Vec<Point>) -> Self {
        Self {
            label: label.into(),
            points,
            style: SeriesStyle::Measured,
            color: None,
            stroke: Stroke::Solid,
        }
    }

    pub fn reference(label: impl Into<String>, points: Vec<Point>) -> Self {
        Self {
            label: label.into(),
            points,
            style: SeriesStyle::Reference,
            color: None,
            stroke: Stroke::Dashed,
        }
    }

    /// The same series in palette colour `index`, whatever its place in the panel.
    pub fn with_color(mut self, index: usize) -> Self {
        self.color = Some(index);
        self
    }

    pub fn with_stroke(mut self, stroke: Stroke) -> Self {
        self.stroke = stroke;
        self
    }
}

/// How one series looks once its panel has assigned colours: what a legend entry shows.
#[derive(Clone, Copy, PartialEq, Debug)]
struct Look {
    color: RGBColor,
    stroke: Stroke,
    reference: bool,
}

/// The look of every series of `panel`, in order: measured lines without a colour take the
/// palette in turn, references are grey.
fn looks(panel: &LineChart) -> Vec<Look> {
    let mut measured = 0;
    panel
        .series
        .iter()
        .map(|series| match series.style {
            SeriesStyle::Measured => {
                let color = style::color(series.color.unwrap_or(measured));
                measured += 1;
                Look {
                    color,
                    stroke: series.stroke,
                    reference: false,
                }
            }
            SeriesStyle::Reference => Look {
                color: style::REFERENCE,
                stroke: Stroke::Dashed,
                reference: true,
            },
        })
        .collect()
}

/// One legend for every panel, when each label looks the same wherever it appears: the
/// labels in order of first appearance. `None` when a label changes look between panels.
fn shared_legend(panels: &[LineChart]) -> Option<Vec<(String, Look)>> {
    let mut entries: Vec<(String, Look)> = Vec::new();
    for panel in panels {
        for (series, look) in panel.series.iter().zip(looks(panel)) {
            match entries.iter().find(|(label, _)| *label == series.label) {
                Some((_, seen)) if *seen != look => return None,
                Some(_) => {}
                None => entries.push((series.label.clone(), look)),
            }
        }
    }
    Some(entries)
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
    // A grid with a free cell gets one legend there instead of one over each panel's data.
    let legend = (rows * columns > panels.len())
        .then(|| shared_legend(panels))
        .flatten();
    let (w, h) = (
        style::PANEL_WIDTH * columns as u32,
        style::PANEL_HEIGHT * rows as u32,
    );
    match Format::from_path(path)? {
        Format::Png => {
            let s = style::PNG_SCALE;
            let root = BitMapBackend::new(path, (w * s, h * s)).into_drawing_area();
            draw_grid(&root, panels, (rows, columns), legend.as_deref(), s)
                .map_err(|e| draw_error(path, e))?;
            root.present().map_err(|e| draw_error(path, e))
        }
        Format::Svg => {
            let root = SVGBackend::new(path, (w, h)).into_drawing_area();
            draw_grid(&root, panels, (rows, columns), legend.as_deref(), 1)
                .map_err(|e| draw_error(path, e))?;
            root.present().map_err(|e| draw_error(path, e))
        }
    }
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw_grid<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panels: &[LineChart],
    grid: (usize, usize),
    legend: Option<&[(String, Look)]>,
    scale: u32,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let areas = root.split_evenly(grid);
    for (panel, area) in panels.iter().zip(areas.iter()) {
        draw_panel(area, panel, legend.is_none(), scale)?;
    }
    if let (Some(entries), Some(area)) = (legend, areas.get(panels.len())) {
        draw_legend(area, entries, scale)?;
    }
    Ok(())
}

/// `entries` as rows of a line sample, its marker and the label, in one column or, past 14
/// entries, two.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, Look)],
    scale: u32,
) -> DrawResult<DB> {
    let px = |v: u32| (v * scale) as i32;
    let columns = if entries.len() > 14 { 2 } else { 1 };
    let per_column = entries.len().div_ceil(columns);
    let (width, _) = area.dim_in_pixel();
    let column_width = (width as i32 - px(40)) / columns as i32;
    let font = (FONT, px(12)).into_font();
    for (i, (label, look)) in entries.iter().enumerate() {
        let x = px(30) + (i / per_column) as i32 * column_width;
        let y = px(40) + (i % per_column) as i32 * px(22);
        let sample = [(x, y), (x + px(34), y)];
        draw_stroked(area, &sample, *look, scale)?;
        if !look.reference {
            area.draw(&marker((x + px(17), y), *look, scale))?;
        }
        area.draw(&Text::new(
            label.clone(),
            (x + px(44), y - px(7)),
            font.clone(),
        ))?;
    }
    Ok(())
}

/// A polyline in `look`'s colour and stroke pattern.
fn draw_stroked<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[(i32, i32)],
    look: Look,
    scale: u32,
) -> DrawResult<DB> {
    let px = |v: u32| (v * scale) as i32;
    let stroke = look.color.stroke_width(2 * scale);
    match look.stroke.dash() {
        None => area.draw(&PathElement::new(points.to_vec(), stroke)),
        Some((dash, gap)) => area.draw(&DashedPathElement::new(
            points.iter().copied(),
            px(dash),
            px(gap),
            stroke,
        )),
    }
}

/// The marker of `look`'s stroke at `at`.
fn marker<DB: DrawingBackend, C: Clone + 'static>(
    at: C,
    look: Look,
    scale: u32,
) -> DynElement<'static, DB, C> {
    let size = 3 * scale as i32;
    let filled = look.color.filled();
    match look.stroke {
        Stroke::Solid => Circle::new(at, size, filled).into_dyn(),
        Stroke::Dashed => TriangleMarker::new(at, size + scale as i32, filled).into_dyn(),
        Stroke::Dotted => Cross::new(at, size, look.color.stroke_width(scale)).into_dyn(),
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &LineChart,
    with_legend: bool,
    scale: u32,
) -> DrawResult<DB> {
    let px = move |v: u32| (v * scale) as i32;
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

    for (series, look) in panel.series.iter().zip(looks(panel)) {
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
                look.color.mix(0.14).filled(),
            )))?;
        }
        let xy: Vec<(f64, f64)> = series.points.iter().map(|p| (p.x, p.y)).collect();
        let stroke = look.color.stroke_width(2 * scale);
        let drawn = match look.stroke.dash() {
            None => chart.draw_series(LineSeries::new(xy.clone(), stroke))?,
            Some((dash, gap)) => {
                chart.draw_series(DashedLineSeries::new(xy.clone(), px(dash), px(gap), stroke))?
            }
        };
        let dash = look.stroke.dash();
        drawn.label(series.label.clone()).legend(
            move |(x, y)| -> DynElement<'static, DB, (i32, i32)> {
                let ends = [(x, y), (x + px(20), y)];
                match dash {
                    None => PathElement::new(ends, stroke).into_dyn(),
                    Some((dash, gap)) => {
                        DashedPathElement::new(ends, px(dash), px(gap), stroke).into_dyn()
                    }
                }
            },
        );
        if !look.reference {
            chart.draw_series(xy.iter().map(|&p| marker(p, look, scale)))?;
        }
    }

    if with_legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .margin(px(8))
            .legend_area_size(px(26))
            .label_font((FONT, px(12)))
            .background_style(WHITE.mix(0.85))
            .border_style(style::GRID.stroke_width(scale))
            .draw()?;
    }
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
    fn a_free_cell_holds_one_legend_when_every_label_looks_the_same_everywhere() {
        let arm = |label: &str, color, stroke| {
            Series::measured(label, vec![Point::new(1.0, 2.0), Point::new(2.0, 1.0)])
                .with_color(color)
                .with_stroke(stroke)
        };
        let panel = |series| LineChart {
            title: "p".into(),
            series,
            ..Default::default()
        };
        let a = panel(vec![
            arm("tuned hsd", 0, Stroke::Solid),
            arm("skip hsd", 0, Stroke::Dashed),
        ]);
        let b = panel(vec![
            arm("skip hsd", 0, Stroke::Dashed),
            arm("tuned calm", 2, Stroke::Solid),
        ]);
        let legend = shared_legend(&[a.clone(), b.clone()]).unwrap();
        let labels: Vec<&str> = legend.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["tuned hsd", "skip hsd", "tuned calm"]);
        // Colours by order differ between panels holding different series: no shared legend.
        let unset = |label: &str| Series::measured(label, vec![Point::new(1.0, 2.0)]);
        let c = panel(vec![unset("x"), unset("y")]);
        let d = panel(vec![unset("y")]);
        assert!(shared_legend(&[c, d]).is_none());

        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("legend.svg");
        render_panels(&[a.clone(), b, a], 2, &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert_eq!(text.matches("skip hsd").count(), 1);
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
