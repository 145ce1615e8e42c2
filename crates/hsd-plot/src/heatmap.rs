//! Heat maps of a fraction per (layer, position), e.g. how often each layer ran at each
//! generated position, with a colour bar.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::style::{self, FONT};
use crate::{Format, PlotError, draw_error};

/// `values[layer][position]` in `[0, 1]`; layer 0 is drawn at the bottom and labelled 1.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct HeatMap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub colorbar_label: String,
    pub values: Vec<Vec<f64>>,
}

impl HeatMap {
    fn validate(&self, path: &Path) -> Result<usize, PlotError> {
        let columns = self.values.first().map_or(0, Vec::len);
        if columns == 0 {
            return Err(PlotError::Empty {
                path: path.to_path_buf(),
                what: format!("heat map '{}' has no cells", self.title),
            });
        }
        for (row, values) in self.values.iter().enumerate() {
            if values.len() != columns {
                return Err(PlotError::Empty {
                    path: path.to_path_buf(),
                    what: format!(
                        "heat map '{}': row {row} has {} cells, row 0 has {columns}",
                        self.title,
                        values.len()
                    ),
                });
            }
            if values.iter().any(|v| !v.is_finite()) {
                return Err(PlotError::NonFinite {
                    path: path.to_path_buf(),
                    what: format!("heat map '{}', row {row}", self.title),
                });
            }
        }
        Ok(columns)
    }
}

/// Draws `maps` side by side into `path` (`.png` or `.svg`).
pub fn render_heat_map(maps: &[HeatMap], path: &Path) -> Result<(), PlotError> {
    if maps.is_empty() {
        return Err(PlotError::Empty {
            path: path.to_path_buf(),
            what: "no heat maps".into(),
        });
    }
    for map in maps {
        map.validate(path)?;
    }
    style::ensure_font()?;
    let (w, h) = (
        style::PANEL_WIDTH * maps.len() as u32 + BAR_WIDTH,
        style::PANEL_HEIGHT,
    );
    match Format::from_path(path)? {
        Format::Png => {
            let s = style::PNG_SCALE;
            let root = BitMapBackend::new(path, (w * s, h * s)).into_drawing_area();
            draw(&root, maps, s).map_err(|e| draw_error(path, e))?;
            root.present().map_err(|e| draw_error(path, e))
        }
        Format::Svg => {
            let root = SVGBackend::new(path, (w, h)).into_drawing_area();
            draw(&root, maps, 1).map_err(|e| draw_error(path, e))?;
            root.present().map_err(|e| draw_error(path, e))
        }
    }
}

/// Width of the colour bar strip, labels included.
const BAR_WIDTH: u32 = 120;

/// Labels cells at whole coordinates only (cells are centred on them), shifted by `offset`
/// so layers count from 1.
fn integer_tick(value: f64, offset: usize) -> String {
    let rounded = value.round();
    if (value - rounded).abs() < 1e-6 && rounded >= 0.0 {
        (rounded as usize + offset).to_string()
    } else {
        String::new()
    }
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    maps: &[HeatMap],
    scale: u32,
) -> DrawResult<DB> {
    let px = |v: u32| (v * scale) as i32;
    root.fill(&WHITE)?;
    let (panels, bar) = root.split_horizontally(root.dim_in_pixel().0 - (BAR_WIDTH * scale));
    for (map, area) in maps.iter().zip(panels.split_evenly((1, maps.len())).iter()) {
        let layers = map.values.len();
        let positions = map.values[0].len();
        let mut chart = ChartBuilder::on(area)
            .caption(&map.title, (FONT, px(17)).into_font())
            .margin(px(10))
            .x_label_area_size(px(40))
            .y_label_area_size(px(48))
            .build_cartesian_2d(-0.5..positions as f64 - 0.5, -0.5..layers as f64 - 0.5)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(&map.x_label)
            .y_desc(&map.y_label)
            .axis_desc_style((FONT, px(14)))
            .label_style((FONT, px(12)))
            .x_labels(positions.min(9))
            .y_labels(layers.min(11))
            .x_label_formatter(&|x| integer_tick(*x, 0))
            .y_label_formatter(&|y| integer_tick(*y, 1))
            .draw()?;
        chart.draw_series(map.values.iter().enumerate().flat_map(|(layer, row)| {
            row.iter().enumerate().map(move |(pos, &v)| {
                let (x, y) = (pos as f64, layer as f64);
                Rectangle::new(
                    [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                    style::viridis(v).filled(),
                )
            })
        }))?;
    }

    let label = maps[0].colorbar_label.clone();
    let mut colorbar = ChartBuilder::on(&bar)
        .margin_top(px(42))
        .margin_bottom(px(50))
        .margin_right(px(44))
        .margin_left(px(6))
        .y_label_area_size(px(0))
        .right_y_label_area_size(px(40))
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
    colorbar
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc(label)
        .axis_desc_style((FONT, px(12)))
        .label_style((FONT, px(11)))
        .y_labels(6)
        .draw()?;
    const STEPS: usize = 100;
    colorbar.draw_series((0..STEPS).map(|i| {
        let lo = i as f64 / STEPS as f64;
        let hi = (i + 1) as f64 / STEPS as f64;
        Rectangle::new(
            [(0.0, lo), (1.0, hi)],
            style::viridis((lo + hi) / 2.0).filled(),
        )
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_label_whole_cells_only() {
        assert_eq!(integer_tick(3.0, 1), "4");
        assert_eq!(integer_tick(2.5, 0), "");
        assert_eq!(integer_tick(-0.5, 0), "");
    }

    #[test]
    fn heat_maps_render_and_reject_ragged_rows() {
        let dir = tempfile::tempdir().unwrap();
        let map = HeatMap {
            title: "hsd".into(),
            x_label: "generated position".into(),
            y_label: "layer".into(),
            colorbar_label: "fraction of tokens that ran the layer".into(),
            values: (0..30)
                .map(|l| {
                    (0..48)
                        .map(|t| if (l + t) % 3 == 0 { 1.0 } else { 0.2 })
                        .collect()
                })
                .collect(),
        };
        let png = dir.path().join("h.png");
        render_heat_map(&[map.clone(), map.clone()], &png).unwrap();
        assert!(std::fs::metadata(&png).unwrap().len() > 1000);
        render_heat_map(std::slice::from_ref(&map), &dir.path().join("h.svg")).unwrap();

        let mut ragged = map;
        ragged.values[3].pop();
        let err = render_heat_map(&[ragged], &png).unwrap_err();
        assert!(err.to_string().contains("row 3"), "{err}");
    }
}
