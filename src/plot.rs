//! SVG figures for the binary: the training curve (`train --plot`) and the confusion
//! matrix heat map (`evaluate --plot`). Written as plain SVG text so they render the same
//! everywhere without fonts or a plotting backend.

use std::fmt::Write;

/// One line of a chart: a name, a colour and (x, y) points.
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub points: Vec<(f64, f64)>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// "Nice" tick values covering [lo, hi].
fn ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / target as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= target as f64)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e4 || v.abs() < 1e-3 {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// One panel of a line chart in `frame` = (x0, y0, width, height).
fn panel(
    svg: &mut String,
    frame: (f64, f64, f64, f64),
    title: &str,
    x_label: &str,
    series: &[Series<'_>],
) {
    let (x0, y0, w, h) = frame;
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    let (ml, mr, mt, mb) = (60.0, 15.0, 30.0, 45.0);
    let (pw, ph) = (w - ml - mr, h - mt - mb);
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="15" text-anchor="middle" font-weight="bold">{}</text>"#,
        x0 + ml + pw / 2.0,
        y0 + 20.0,
        escape(title)
    );
    if pts.is_empty() {
        return;
    }
    let (mut xlo, mut xhi) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (mut ylo, mut yhi) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    if xhi <= xlo {
        xlo -= 0.5;
        xhi += 0.5;
    }
    let pad = ((yhi - ylo) * 0.05).max(1e-9);
    ylo -= pad;
    yhi += pad;
    let sx = |x: f64| x0 + ml + (x - xlo) / (xhi - xlo) * pw;
    let sy = |y: f64| y0 + mt + ph - (y - ylo) / (yhi - ylo) * ph;
    let _ = write!(
        svg,
        r##"<rect x="{:.1}" y="{:.1}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="#444"/>"##,
        x0 + ml,
        y0 + mt
    );
    for t in ticks(ylo, yhi, 6) {
        let y = sy(t);
        let _ = write!(
            svg,
            r##"<line x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            x0 + ml,
            x0 + ml + pw,
            x0 + ml - 5.0,
            y + 4.0,
            fmt_tick(t)
        );
    }
    for t in ticks(xlo, xhi, 8) {
        let x = sx(t);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
            y0 + mt,
            y0 + mt + ph,
            y0 + mt + ph + 15.0,
            fmt_tick(t)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
        x0 + ml + pw / 2.0,
        y0 + h - 8.0,
        escape(x_label)
    );
    for (i, s) in series.iter().enumerate() {
        let path: Vec<String> = s
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        if path.is_empty() {
            continue;
        }
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            s.colour,
            path.join(" ")
        );
        let ly = y0 + mt + 15.0 + 16.0 * i as f64;
        let lx = x0 + ml + pw - 150.0;
        let _ = write!(
            svg,
            r#"<line x1="{lx:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{}" stroke-width="3"/><text x="{:.1}" y="{ly:.1}" font-size="12">{}</text>"#,
            lx + 20.0,
            ly - 4.0,
            ly - 4.0,
            s.colour,
            lx + 25.0,
            escape(s.name)
        );
    }
}

/// The training curve: loss (left) and accuracy (right) per epoch.
pub fn training_curve(loss: &[Series<'_>], accuracy: &[Series<'_>]) -> String {
    let (w, h) = (1000.0, 420.0);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>"#
    );
    panel(&mut svg, (0.0, 0.0, w / 2.0, h), "loss", "epoch", loss);
    panel(
        &mut svg,
        (w / 2.0, 0.0, w / 2.0, h),
        "accuracy",
        "epoch",
        accuracy,
    );
    svg.push_str("</svg>\n");
    svg
}

/// A heat map of the confusion matrix (rows: true class, columns: predicted), each row
/// coloured by its share of the row's total, with the counts written in when K ≤ 30.
pub fn confusion_heat_map(names: &[String], confusion: &[Vec<usize>], title: &str) -> String {
    let k = names.len().max(1);
    let cell = (600.0 / k as f64).clamp(6.0, 48.0);
    let (left, top) = (110.0, 80.0);
    let (w, h) = (left + cell * k as f64 + 30.0, top + cell * k as f64 + 60.0);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>"#
    );
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="24" font-size="15" text-anchor="middle" font-weight="bold">{}</text>"#,
        w / 2.0,
        escape(title)
    );
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">predicted class</text>"#,
        left + cell * k as f64 / 2.0,
        top - 35.0
    );
    let _ = write!(
        svg,
        r#"<text x="20" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 20 {:.1})">true class</text>"#,
        top + cell * k as f64 / 2.0,
        top + cell * k as f64 / 2.0
    );
    let label_every = (k as f64 / 30.0).ceil() as usize;
    for (r, row) in confusion.iter().enumerate() {
        let total: usize = row.iter().sum();
        for (c, &count) in row.iter().enumerate() {
            let share = if total > 0 {
                count as f64 / total as f64
            } else {
                0.0
            };
            // White to dark blue.
            let (rr, gg, bb) = (
                255.0 - 222.0 * share,
                255.0 - 180.0 * share,
                255.0 - 75.0 * share,
            );
            let (x, y) = (left + c as f64 * cell, top + r as f64 * cell);
            let _ = write!(
                svg,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{cell:.1}" height="{cell:.1}" fill="rgb({rr:.0},{gg:.0},{bb:.0})" stroke="#fff"/>"##
            );
            if k <= 30 && count > 0 {
                let colour = if share > 0.5 { "white" } else { "black" };
                let _ = write!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" font-size="{:.0}" text-anchor="middle" fill="{colour}">{count}</text>"#,
                    x + cell / 2.0,
                    y + cell / 2.0 + 4.0,
                    (cell * 0.3).clamp(7.0, 13.0)
                );
            }
        }
    }
    for (i, name) in names
        .iter()
        .enumerate()
        .filter(|(i, _)| i % label_every == 0)
    {
        let p = i as f64 * cell + cell / 2.0;
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"#,
            left - 6.0,
            top + p + 4.0,
            escape(name)
        );
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
            left + p,
            top - 8.0,
            escape(name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_the_range_with_round_steps() {
        assert_eq!(
            ticks(0.0, 1.0, 5),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(ticks(1.0, 100.0, 4), vec![50.0, 100.0]);
    }

    #[test]
    fn figures_are_svg_with_their_content() {
        let s = training_curve(
            &[Series {
                name: "train",
                colour: "#1f77b4",
                points: vec![(1.0, 2.3), (2.0, 1.0)],
            }],
            &[],
        );
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("<polyline") && s.contains(">train<"));
        let c = confusion_heat_map(
            &["a<b".to_string(), "c".to_string()],
            &[vec![3, 1], vec![0, 4]],
            "confusion",
        );
        assert!(c.contains("a&lt;b") && c.contains(">3<") && c.contains(">4<"));
        assert_eq!(c.matches("<rect").count(), 1 + 4);
    }
}
