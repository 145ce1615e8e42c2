//! One look for every figure: the bundled font, a colour-blind-safe palette, sizes.

use std::sync::OnceLock;

use plotters::style::{FontStyle, RGBColor};

use crate::PlotError;

/// The family name the bundled font is registered under; SVG output names it too.
pub(crate) const FONT: &str = "DejaVu Sans";

static FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// Registers the bundled font once per process.
pub(crate) fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
            && plotters::style::register_font(FONT, FontStyle::Bold, FONT_BYTES).is_ok()
    });
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

/// Okabe and Ito's palette (2008), distinguishable under the common colour-vision deficiencies;
/// black first so the first series (by convention the method under study) stands out.
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 0, 0),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(0, 114, 178),
    RGBColor(204, 121, 167),
    RGBColor(240, 228, 66),
];

pub(crate) const GRID: RGBColor = RGBColor(225, 225, 225);
pub(crate) const REFERENCE: RGBColor = RGBColor(110, 110, 110);

/// Pixel sizes of one panel; PNGs are drawn at twice these for print resolution.
pub(crate) const PANEL_WIDTH: u32 = 520;
pub(crate) const PANEL_HEIGHT: u32 = 400;
pub(crate) const PNG_SCALE: u32 = 2;

pub(crate) fn color(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// Viridis, sampled at nine stops and interpolated linearly: perceptually uniform and
/// readable in grey scale.
pub(crate) fn viridis(v: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ];
    let v = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let scaled = v * (STOPS.len() - 1) as f64;
    let lower = (scaled.floor() as usize).min(STOPS.len() - 2);
    let frac = scaled - lower as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * frac).round() as u8;
    let (a, b) = (STOPS[lower], STOPS[lower + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_spans_its_endpoints_and_clamps() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(-3.0), viridis(0.0));
        assert_eq!(viridis(7.0), viridis(1.0));
        assert_eq!(viridis(0.5), RGBColor(33, 144, 141));
    }

    #[test]
    fn the_bundled_font_registers() {
        ensure_font().unwrap();
    }
}
