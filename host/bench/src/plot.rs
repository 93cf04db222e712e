//! The chart of one benchmark (`bench.png`), drawn with plotters.

use std::path::Path;

use crate::report::Stage;

/// A horizontal bar chart: p50 and p95 per stage, with the target marked.
pub(super) fn chart(stages: &[Stage], path: &Path) -> Result<(), String> {
    use plotters::prelude::*;
    const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    let font = std::fs::read(FONT)
        .map_err(|e| format!("{FONT}: {e}; install it: apt-get install fonts-dejavu-core"))?;
    // plotters keeps registered fonts for the life of the process and takes them only as
    // `&'static [u8]`, so the bytes are leaked on purpose (once per chart drawn).
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| format!("{FONT} is not a usable font"))?;
    let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    let max = stages
        .iter()
        .flat_map(|s| [s.p95_ms, s.target_ms, s.target_p50_ms])
        .flatten()
        .fold(100.0, f64::max)
        * 1.1;
    let n = stages.len();
    let root = BitMapBackend::new(path, (1100, 120 + 70 * n as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut c = ChartBuilder::on(&root)
        .caption(
            "voicehost dialog latency (p50 dark, p95 light, target red)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(10)
        .build_cartesian_2d(0.0..max, 0.0..n as f64)
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("ms")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, s) in stages.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        if let Some(p95) = s.p95_ms {
            c.draw_series([Rectangle::new(
                [(0.0, y + 0.2), (p95, y + 0.8)],
                RGBColor(158, 202, 225).filled(),
            )])
            .map_err(|e| err(&e))?;
        }
        if let Some(p50) = s.p50_ms {
            c.draw_series([Rectangle::new(
                [(0.0, y + 0.3), (p50, y + 0.7)],
                RGBColor(33, 113, 181).filled(),
            )])
            .map_err(|e| err(&e))?;
        }
        let label = format!(
            "{}: p50 {} ms, p95 {} ms{}",
            s.name,
            s.p50_ms.map_or("-".to_owned(), |v| format!("{v:.0}")),
            s.p95_ms.map_or("-".to_owned(), |v| format!("{v:.0}")),
            match (s.target_p50_ms, s.target_ms) {
                (Some(p50), Some(p95)) => format!(", targets p50 {p50:.0} / p95 {p95:.0} ms"),
                (Some(p50), None) => format!(", target p50 {p50:.0} ms"),
                (None, Some(t)) => format!(", target {t:.0} ms"),
                (None, None) => String::new(),
            }
        );
        c.draw_series([Text::new(label, (max * 0.005, y + 1.0), ("sans-serif", 15))])
            .map_err(|e| err(&e))?;
        for t in [s.target_p50_ms, s.target_ms].into_iter().flatten() {
            c.draw_series([PathElement::new(
                vec![(t, y + 0.05), (t, y + 0.75)],
                RED.stroke_width(3),
            )])
            .map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::STAGES;

    #[test]
    fn the_chart() {
        let stages: Vec<Stage> = STAGES
            .iter()
            .map(|(name, _, _, target)| Stage {
                name: (*name).to_owned(),
                samples: 2,
                p50_ms: Some(120.0),
                p95_ms: Some(300.0),
                target_ms: *target,
                target_p50_ms: None,
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("bench.png");
        chart(&stages, &png).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000);
        if let Ok(keep) = std::env::var("VOICEHOST_KEEP_CHART") {
            std::fs::copy(&png, keep).unwrap();
        }
    }
}
