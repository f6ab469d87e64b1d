//! The SVG chart of a comparison: one horizontal bar per case (the median of the pairwise
//! Rust/Python ratios), a whisker over their min–max, and a vertical line at 1.0.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::stats::Summary;

/// Bars for ratios at or below 1 (Rust as fast or faster).
const FASTER: RGBColor = RGBColor(70, 130, 180);
/// Bars for ratios above 1.
const SLOWER: RGBColor = RGBColor(222, 125, 60);

/// Pixels per case.
const ROW: u32 = 22;

/// The chart as an SVG document: `rows` are (case name, summary of its pairwise ratios), drawn
/// top to bottom in the given order.
pub fn ratio_chart(rows: &[(String, Summary)], title: &str) -> Result<String, String> {
    if rows.is_empty() {
        return Err("no measured case to chart".to_owned());
    }
    let n = i32::try_from(rows.len()).map_err(|_| "too many cases".to_owned())?;
    let longest = rows.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(0);
    let label_width = (longest as u32 * 7 + 16).min(460);
    let height = 90 + ROW * rows.len() as u32;
    let xmax = rows.iter().map(|(_, s)| s.max).fold(1.0f64, f64::max) * 1.12;
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (label_width + 620, height)).into_drawing_area();
        let err = |e: &dyn std::fmt::Display| format!("chart: {e}");
        root.fill(&WHITE).map_err(|e| err(&e))?;
        // Segments 0..=n-1, one per case; case 0 is drawn at the top.
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(label_width)
            .build_cartesian_2d(0.0..xmax, (0..n - 1).into_segmented())
            .map_err(|e| err(&e))?;
        let name_of = |v: &SegmentValue<i32>| match v {
            SegmentValue::Exact(i) | SegmentValue::CenterOf(i) => usize::try_from(n - 1 - *i)
                .ok()
                .and_then(|k| rows.get(k))
                .map_or(String::new(), |(name, _)| name.clone()),
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_labels(10)
            .max_light_lines(1)
            .y_labels(rows.len())
            .y_label_formatter(&name_of)
            .x_desc("Rust / Python time (median of pairwise ratios; whisker: min–max; < 1: Rust faster)")
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(|e| err(&e))?;
        for (k, (_, s)) in rows.iter().enumerate() {
            let y = n - 1 - k as i32;
            let color = if s.median <= 1.0 { FASTER } else { SLOWER };
            let mut bar = Rectangle::new(
                [(0.0, SegmentValue::Exact(y)), (s.median, SegmentValue::Exact(y + 1))],
                color.filled(),
            );
            bar.set_margin(4, 4, 0, 0);
            chart.draw_series(std::iter::once(bar)).map_err(|e| err(&e))?;
            let mid = SegmentValue::CenterOf(y);
            let whisker = PathElement::new(vec![(s.min, mid.clone()), (s.max, mid.clone())], BLACK);
            chart.draw_series(std::iter::once(whisker)).map_err(|e| err(&e))?;
            let label = Text::new(
                format!(" {:.2}", s.median),
                (s.max, mid),
                ("sans-serif", 11)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            );
            chart.draw_series(std::iter::once(label)).map_err(|e| err(&e))?;
        }
        let one = PathElement::new(
            vec![(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Last)],
            BLACK.stroke_width(2),
        );
        chart.draw_series(std::iter::once(one)).map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(median: f64, min: f64, max: f64) -> Summary {
        Summary { count: 10, median, min, max }
    }

    #[test]
    fn draws_every_case_with_its_ratio() {
        let rows = vec![
            ("matmul/256x256x256".to_owned(), s(0.98, 0.9, 1.05)),
            ("host/chain1000/build".to_owned(), s(0.61, 0.5, 0.7)),
        ];
        let svg = ratio_chart(&rows, "Rust / Python").unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("matmul/256x256x256") && svg.contains("host/chain1000/build"));
        assert!(svg.contains(" 0.98") && svg.contains(" 0.61"));
        // Two bars: one per case, in the "faster" colour (both medians below 1).
        assert_eq!(svg.matches("fill=\"#4682B4\"").count(), 2, "{svg}");
        assert!(ratio_chart(&[], "x").unwrap_err().contains("no measured case"));
    }
}
