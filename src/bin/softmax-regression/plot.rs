//! SVG figures for the binary: the training curve (`train --plot`) and the confusion
//! matrix heat map (`evaluate --plot`). Written as plain, self-contained SVG text so they
//! render the same everywhere without fonts or a plotting backend.
//!
//! No text is measured by a renderer here, so its width is estimated from its length: a
//! glyph is taken as 0.62 em wide (0.70 em bold), DejaVu Sans's width for digits and above
//! its average for letters. Every layout decision (panel margins, cell size, the width the
//! title gets) uses that estimate, so text fits wherever the estimate holds.

use std::fmt::Write;

/// One line of a chart: a name, a colour and (x, y) points.
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// How a panel maps values to heights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Logarithmic; values ≤ 0 are left out.
    Log,
}

/// One chart of a figure: its heading, y-axis label, scale and lines.
pub struct Panel<'a> {
    pub title: String,
    pub y_label: String,
    pub scale: Scale,
    pub series: Vec<Series<'a>>,
}

const EM: f64 = 0.62;
const EM_BOLD: f64 = 0.70;

fn text_width(s: &str, size: f64, bold: bool) -> f64 {
    s.chars().count() as f64 * size * if bold { EM_BOLD } else { EM }
}

/// `s` and a font size at most `size` at which it fits `width`. Below `min` the font stops
/// shrinking and the middle of the text gives way to an ellipsis, which keeps both the
/// start of a path and its file name.
fn fit(s: &str, width: f64, size: f64, min: f64, bold: bool) -> (String, f64) {
    let per_char = if bold { EM_BOLD } else { EM };
    let n = s.chars().count().max(1) as f64;
    let fitting = (width / (n * per_char) * 10.0).floor() / 10.0;
    if fitting >= size {
        return (s.to_string(), size);
    }
    if fitting >= min {
        return (s.to_string(), fitting);
    }
    let keep = ((width / (min * per_char)).floor() as usize)
        .saturating_sub(1)
        .max(2);
    let chars: Vec<char> = s.chars().collect();
    let head = keep / 2;
    let tail = keep - head;
    let mut short: String = chars[..head].iter().collect();
    short.push('…');
    short.extend(&chars[chars.len() - tail..]);
    (short, min)
}

/// Text as SVG character data: markup escaped, control characters (which XML forbids,
/// and which a file name may hold) shown as `?`.
fn escape(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A `<text>` element; `extra` holds further attributes. Turned text (`rotate`) reads
/// upwards, anchored at (x, y).
#[allow(clippy::too_many_arguments)]
fn text(
    svg: &mut String,
    (x, y): (f64, f64),
    size: f64,
    anchor: &str,
    bold: bool,
    rotate: bool,
    extra: &str,
    s: &str,
) {
    let _ = write!(
        svg,
        r#"<text x="{x:.1}" y="{y:.1}" font-size="{size:.1}" text-anchor="{anchor}""#
    );
    if bold {
        svg.push_str(r#" font-weight="bold""#);
    }
    if rotate {
        let _ = write!(svg, r#" transform="rotate(-90 {x:.1} {y:.1})""#);
    }
    if !extra.is_empty() {
        svg.push(' ');
        svg.push_str(extra);
    }
    let _ = write!(svg, ">{}</text>", escape(s));
}

/// "Nice" tick values covering [lo, hi], spaced at least `min_step` apart.
fn ticks(lo: f64, hi: f64, target: usize, min_step: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / target as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= target as f64)
        .unwrap_or(10.0 * mag)
        .max(min_step);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Ticks of a logarithmic axis over [lo, hi] (both > 0): powers of ten over wide ranges,
/// 1-2-5 over a decade or two, and plain round values within one decade.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let decades = (hi / lo).log10();
    if decades < 1.0 {
        return ticks(lo, hi, 8, 0.0);
    }
    let (a, b) = (lo.log10().floor() as i32, hi.log10().floor() as i32);
    let mantissas: &[f64] = if decades < 2.5 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    // Every decade, or every n-th over very wide ranges (n dividing the exponents, so that
    // 1 is among them).
    let every = (b - a) / 8 + 1;
    (a..=b)
        .filter(|e| e.rem_euclid(every) == 0)
        .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
        .filter(|&v| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9))
        .collect()
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e4 || v.abs() < 1e-3 {
        // `1e-6`, `2.5e-7`: four significant digits at most, no trailing zeros.
        let s = format!("{v:.3e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        format!("{mantissa}e{exponent}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// One panel of a line chart in `frame` = (x0, y0, width, height) over x in `x_range`:
/// heading, legend (when more than one line) between the heading and the plotting area,
/// axes, lines. Room for a legend is kept in every panel, so that side by side panels'
/// plotting areas line up.
fn panel(
    svg: &mut String,
    frame: (f64, f64, f64, f64),
    (x_range, x_log): ((f64, f64), bool),
    x_label: &str,
    p: &Panel<'_>,
) {
    let (x0, y0, w, h) = frame;
    // The value range and its ticks come first: the widest tick label sets the left
    // margin.
    let range = value_range(p);
    let tick_w = range.as_ref().map_or(0.0, |r| {
        r.2.iter()
            .map(|&t| text_width(&fmt_tick(t), TICK_SIZE, false))
            .fold(0.0, f64::max)
    });
    let (ml, mr, mt, mb) = ((tick_w + 8.0 + 24.0).max(64.0), 16.0, 52.0, 46.0);
    let (px, py, pw, ph) = (x0 + ml, y0 + mt, w - ml - mr, h - mt - mb);

    let (heading, size) = fit(&p.title, w - 16.0, 13.0, 9.0, true);
    text(
        svg,
        (x0 + w / 2.0, y0 + 16.0),
        size,
        "middle",
        true,
        false,
        "",
        &heading,
    );
    let _ = write!(
        svg,
        r##"<rect class="plot-area" x="{px:.1}" y="{py:.1}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="#444"/>"##
    );
    if p.series.len() > 1 {
        legend(svg, (px, y0 + 24.0, pw), &p.series);
    }
    let (y_label, size) = fit(&p.y_label, ph, 12.0, 9.0, false);
    text(
        svg,
        (px - tick_w - 8.0 - 6.0, py + ph / 2.0),
        size,
        "middle",
        false,
        true,
        "",
        &y_label,
    );
    text(
        svg,
        (px + pw / 2.0, y0 + h - 8.0),
        12.0,
        "middle",
        false,
        false,
        "",
        x_label,
    );
    let Some((ylo, yhi, y_ticks)) = range else {
        return;
    };
    let (mut xlo, mut xhi) = x_range;
    if xhi <= xlo {
        xlo -= 0.5;
        xhi += 0.5;
    }
    let area = Area {
        left: px,
        top: py,
        width: pw,
        height: ph,
        x: (xlo, xhi),
        y: (ylo, yhi),
    };
    grid(svg, &area, (p.scale, x_log), &y_ticks);
    for s in &p.series {
        line(svg, &area, p.scale, s);
    }
}

/// The size of tick labels.
const TICK_SIZE: f64 = 11.0;

/// Whether a point can be drawn on a panel of this scale.
fn usable(scale: Scale, &(x, y): &(f64, f64)) -> bool {
    x.is_finite() && y.is_finite() && (scale == Scale::Linear || y > 0.0)
}

/// A value on the panel's vertical axis: itself, or its decimal logarithm.
fn to_axis(scale: Scale, y: f64) -> f64 {
    match scale {
        Scale::Linear => y,
        Scale::Log => y.log10(),
    }
}

/// The vertical axis of a panel, padded by 5% (in axis units), with its ticks in values;
/// `None` when no point can be drawn.
fn value_range(p: &Panel<'_>) -> Option<(f64, f64, Vec<f64>)> {
    let pts: Vec<(f64, f64)> = p
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|q| usable(p.scale, q))
        .collect();
    (!pts.is_empty()).then(|| {
        let (mut ylo, mut yhi) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), q| {
            (a.min(to_axis(p.scale, q.1)), b.max(to_axis(p.scale, q.1)))
        });
        let pad = if yhi > ylo {
            (yhi - ylo) * 0.05
        } else {
            match p.scale {
                Scale::Linear => (ylo.abs() * 0.05).max(1e-3),
                Scale::Log => 0.1,
            }
        };
        ylo -= pad;
        yhi += pad;
        let ticks = match p.scale {
            Scale::Linear => ticks(ylo, yhi, 6, 0.0),
            Scale::Log => log_ticks(10f64.powf(ylo), 10f64.powf(yhi)),
        };
        (ylo, yhi, ticks)
    })
}

/// A panel's plotting area on the canvas and the x and (axis-unit) y ranges it spans.
struct Area {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    x: (f64, f64),
    y: (f64, f64),
}

impl Area {
    fn sx(&self, x: f64) -> f64 {
        let (xlo, xhi) = self.x;
        self.left + (x - xlo) / (xhi - xlo) * self.width
    }

    fn sy(&self, v: f64) -> f64 {
        let (ylo, yhi) = self.y;
        self.top + self.height - (v - ylo) / (yhi - ylo) * self.height
    }
}

/// Grid lines and tick labels: minor lines on a log axis of a few decades, then the value
/// ticks, then the whole-number x ticks.
fn grid(svg: &mut String, area: &Area, (scale, x_log): (Scale, bool), y_ticks: &[f64]) {
    let (px, py, pw, ph) = (area.left, area.top, area.width, area.height);
    let (ylo, yhi) = area.y;
    let (xlo, xhi) = area.x;
    // Faint lines at 2…9 × 10^e where a log axis ticks whole decades, up to a few of them.
    let decades = yhi - ylo;
    if scale == Scale::Log && (2.5..=8.0).contains(&decades) {
        for e in ylo.floor() as i32..=yhi.ceil() as i32 {
            for m in 2..=9 {
                let v = (m as f64 * 10f64.powi(e)).log10();
                if v > ylo && v < yhi {
                    let y = area.sy(v);
                    let _ = write!(
                        svg,
                        r##"<line x1="{px:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#f0f0f0"/>"##,
                        px + pw
                    );
                }
            }
        }
    }
    for &t in y_ticks {
        let y = area.sy(to_axis(scale, t));
        let _ = write!(
            svg,
            r##"<line x1="{px:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
            px + pw
        );
        text(
            svg,
            (px - 5.0, y + 4.0),
            TICK_SIZE,
            "end",
            false,
            false,
            "",
            &fmt_tick(t),
        );
    }
    // Epochs and iterations are whole numbers.
    for t in ticks(xlo, xhi, 8, 1.0) {
        let x = area.sx(t);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{py:.1}" y2="{:.1}" stroke="#ddd"/>"##,
            py + ph
        );
        text(
            svg,
            (x, py + ph + 15.0),
            TICK_SIZE,
            "middle",
            false,
            false,
            "",
            &if x_log { decade(t) } else { fmt_tick(t) },
        );
    }
}

/// The label of decade 10^t: plain from 0.001 to 1000, else 1e-5, 1e4, ….
fn decade(t: f64) -> String {
    let e = t.round() as i32;
    if (-3..=3).contains(&e) {
        let v = 10f64.powi(e);
        // 10^e rounds to a number whose shortest decimal form is the decade's.
        format!("{v}")
    } else {
        format!("1e{e}")
    }
}

/// One series as a polyline, with markers when it has few points.
fn line(svg: &mut String, area: &Area, scale: Scale, s: &Series<'_>) {
    let kept: Vec<(f64, f64)> = s
        .points
        .iter()
        .copied()
        .filter(|q| usable(scale, q))
        .map(|(x, y)| (area.sx(x), area.sy(to_axis(scale, y))))
        .collect();
    if kept.is_empty() {
        return;
    }
    let path: Vec<String> = kept.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let _ = write!(
        svg,
        r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
        s.colour,
        path.join(" ")
    );
    // Markers show where the values are when there are few of them (one point draws
    // no line at all).
    if kept.len() <= 60 {
        for (x, y) in kept {
            let _ = write!(
                svg,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{}"/>"#,
                s.colour
            );
        }
    }
}

/// A framed row of legend entries centred over the plotting area, between the panel's
/// heading and the area's top edge: `(x, y, width)` is the area's left, the row's top and
/// the area's width.
fn legend(svg: &mut String, (x, y, width): (f64, f64, f64), series: &[Series<'_>]) {
    let (swatch, gap, spacing, pad) = (18.0, 5.0, 16.0, 8.0);
    let mut size: f64 = 11.0;
    let total = |size: f64| {
        series
            .iter()
            .map(|s| swatch + gap + text_width(s.name, size, false))
            .sum::<f64>()
            + spacing * (series.len() - 1) as f64
            + 2.0 * pad
    };
    while total(size) > width && size > 7.0 {
        size -= 0.5;
    }
    let mut lx = x + (width - total(size)).max(0.0) / 2.0;
    let _ = write!(
        svg,
        r##"<rect class="legend" x="{lx:.1}" y="{y:.1}" width="{:.1}" height="18" fill="white" stroke="#ccc"/>"##,
        total(size)
    );
    lx += pad;
    for s in series {
        let _ = write!(
            svg,
            r#"<line x1="{lx:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{}" stroke-width="3"/>"#,
            lx + swatch,
            y + 9.0,
            y + 9.0,
            s.colour
        );
        text(
            svg,
            (lx + swatch + gap, y + 13.0),
            size,
            "start",
            false,
            false,
            "",
            s.name,
        );
        lx += swatch + gap + text_width(s.name, size, false) + spacing;
    }
}

/// Title lines centred at the top of a `width`-wide canvas, the first bold; returns the
/// height they take.
fn title_block(svg: &mut String, width: f64, lines: &[String]) -> f64 {
    let mut y = 8.0;
    for (i, line) in lines.iter().enumerate() {
        let bold = i == 0;
        let (line, size) = fit(
            line,
            width - 20.0,
            if bold { 16.0 } else { 13.0 },
            9.0,
            bold,
        );
        y += size + 6.0;
        text(
            svg,
            (width / 2.0, y),
            size,
            "middle",
            bold,
            false,
            "",
            &line,
        );
    }
    y + 8.0
}

/// The width `lines` want for their preferred font sizes (16 bold, then 13).
fn title_width(lines: &[String]) -> f64 {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| text_width(l, if i == 0 { 16.0 } else { 13.0 }, i == 0) + 24.0)
        .fold(0.0, f64::max)
}

fn open_svg(w: f64, h: f64) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>"#
    )
}

/// The training curve: a title and the panels side by side, x counted in `x_label`
/// (epochs or iterations).
pub fn training_curve(title: &[String], x_label: &str, panels: &[Panel<'_>]) -> String {
    figure(title, x_label, false, panels)
}

/// Panels whose x values are decimal logarithms (of a regularisation strength), ticked
/// at whole decades labelled 1e-4, 1e-3, ….
pub fn validation_curve(title: &[String], x_label: &str, panels: &[Panel<'_>]) -> String {
    figure(title, x_label, true, panels)
}

fn figure(title: &[String], x_label: &str, x_log: bool, panels: &[Panel<'_>]) -> String {
    let n = panels.len().max(1) as f64;
    let w = (n * 420.0).max(840.0).max(title_width(title).min(1260.0));
    let h_panel = 400.0;
    // The title block's height is known only once written; lay it out in a scratch
    // buffer first.
    let mut head = String::new();
    let top = title_block(&mut head, w.round(), title);
    let h = top + h_panel;
    let mut svg = open_svg(w.round(), h);
    svg.push_str(&head);
    let pw = w.round() / n;
    // One x range for all panels, so that a given epoch sits at the same place in each.
    let x_range = panels
        .iter()
        .flat_map(|p| p.series.iter().flat_map(|s| s.points.iter()))
        .map(|p| p.0)
        .filter(|x| x.is_finite())
        .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    for (i, p) in panels.iter().enumerate() {
        panel(
            &mut svg,
            (i as f64 * pw, top, pw, h_panel),
            (x_range, x_log),
            x_label,
            p,
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Light to dark (ColorBrewer YlGnBu without its near-white end, so that the smallest
/// share still stands out from an empty cell's white).
const RAMP: [(f64, f64, f64); 8] = [
    (237.0, 248.0, 177.0),
    (199.0, 233.0, 180.0),
    (127.0, 205.0, 187.0),
    (65.0, 182.0, 196.0),
    (29.0, 145.0, 192.0),
    (34.0, 94.0, 168.0),
    (37.0, 52.0, 148.0),
    (8.0, 29.0, 88.0),
];

fn ramp(t: f64) -> (f64, f64, f64) {
    let t = t.clamp(0.0, 1.0) * (RAMP.len() - 1) as f64;
    let i = (t.floor() as usize).min(RAMP.len() - 2);
    let f = t - i as f64;
    let (a, b) = (RAMP[i], RAMP[i + 1]);
    (
        a.0 + (b.0 - a.0) * f,
        a.1 + (b.1 - a.1) * f,
        a.2 + (b.2 - a.2) * f,
    )
}

fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p >= 1.0 {
        format!("{p:.0}%")
    } else {
        format!("{}%", fmt_tick(p))
    }
}

/// A heat map of the confusion matrix (rows: true class, columns: predicted) with the
/// count written in every cell. A cell's colour is its share of the row (of the true
/// class) on a logarithmic scale from the smallest non-zero share (10 % at most) to 100 %,
/// so that a single error in a large class is as visible as its count; empty cells stay
/// white. A colour bar gives the scale. `title` holds the lines of the
/// title, the first drawn bold.
pub fn confusion_heat_map(names: &[String], confusion: &[Vec<usize>], title: &[String]) -> String {
    let k = names.len().min(confusion.len());
    let largest = confusion.iter().flatten().copied().max().unwrap_or(0);
    let digits = largest.to_string().len() as f64;
    // Cells wide enough for the longest count at 7 px or more.
    let cell = (640.0 / k.max(1) as f64)
        .clamp(22.0, 100.0)
        .max(digits * EM * 7.0 + 4.0)
        .round();
    let count_size = (cell * 0.42).min((cell - 4.0) / (digits * EM)).min(14.0);
    let count_size = (count_size * 10.0).floor() / 10.0;
    let label_size = (cell * 0.5).clamp(8.0, 12.0).floor();
    // Long class names are shortened in the middle to at most 160 px.
    let labels: Vec<String> = names
        .iter()
        .map(|n| fit(n, 160.0, label_size, label_size, false).0)
        .collect();
    let label_w = labels
        .iter()
        .map(|l| text_width(l, label_size, false))
        .fold(0.0, f64::max);
    // Column labels turn upright when they are wider than a cell.
    let turned = label_w > cell - 4.0;
    let col_band = if turned {
        label_w + 8.0
    } else {
        label_size + 8.0
    };
    let grid = cell * k as f64;

    let shares = row_shares(confusion, k);
    let smallest = shares
        .iter()
        .flatten()
        .copied()
        .filter(|&s| s > 0.0)
        .fold(1.0, f64::min);
    // The scale starts at the smallest share, so that the rarest error gets the ramp's
    // first colour, and spans at least one decade (at most six).
    let lo = smallest.clamp(1e-6, 0.1);
    let bar_ticks = log_ticks(lo, 1.0);

    let tick_w = bar_ticks
        .iter()
        .map(|&v| text_width(&percent(v), BAR_TICK_SIZE, false))
        .fold(text_width("0", BAR_TICK_SIZE, false), f64::max);
    let bar_h = grid.max(200.0);
    let (left_axis, left) = (22.0, 22.0 + 8.0 + label_w + 8.0);
    let right = 24.0 + 16.0 + 6.0 + tick_w + 10.0 + 14.0 + 10.0;
    let content = left + grid + right;
    let w = content
        .max(title_width(title).min(1000.0))
        .max(420.0)
        .round();
    let ox = ((w - content) / 2.0).round();

    let mut head = String::new();
    let title_h = title_block(&mut head, w, title);
    let top = (title_h + 22.0 + col_band).round();
    let h = (top + bar_h.max(grid) + 40.0).round();
    let mut svg = open_svg(w, h);
    svg.push_str(&head);

    let gx = ox + left;
    text(
        &mut svg,
        (gx + grid / 2.0, title_h + 12.0),
        12.0,
        "middle",
        false,
        false,
        "",
        "predicted class",
    );
    text(
        &mut svg,
        (ox + left_axis - 4.0, top + grid / 2.0),
        12.0,
        "middle",
        false,
        true,
        "",
        "true class",
    );
    let at = GridAt { gx, top, cell, k };
    cells(&mut svg, &at, names, confusion, &shares, count_size, lo);
    class_labels(&mut svg, &at, &labels, label_size, turned);
    colour_bar(
        &mut svg,
        (gx + grid + 24.0, top, bar_h),
        lo,
        &bar_ticks,
        tick_w,
    );
    svg.push_str("</svg>\n");
    svg
}

/// Tick labels of the colour bar.
const BAR_TICK_SIZE: f64 = 10.0;

/// Where the heat map's grid lies: its left edge, its top, the cell size and K.
struct GridAt {
    gx: f64,
    top: f64,
    cell: f64,
    k: usize,
}

/// The position on the colour ramp (0 to 1) of a share, on a log scale from `lo`.
fn colour_t(lo: f64, share: f64) -> f64 {
    share.log10() / -lo.log10() + 1.0
}

/// Each cell's count as a share of its row's (true class's) total; 0 in an empty row.
fn row_shares(confusion: &[Vec<usize>], k: usize) -> Vec<Vec<f64>> {
    confusion
        .iter()
        .take(k)
        .map(|row| {
            let total: usize = row.iter().take(k).sum();
            row.iter()
                .take(k)
                .map(|&c| {
                    if total > 0 {
                        c as f64 / total as f64
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect()
}

/// The cells: a coloured square with a tooltip and the count written in it.
fn cells(
    svg: &mut String,
    at: &GridAt,
    names: &[String],
    confusion: &[Vec<usize>],
    shares: &[Vec<f64>],
    count_size: f64,
    lo: f64,
) {
    let GridAt { gx, top, cell, k } = *at;
    for (r, row) in confusion.iter().take(k).enumerate() {
        let total: usize = row.iter().take(k).sum();
        for (c, &count) in row.iter().take(k).enumerate() {
            let share = shares[r][c];
            let (x, y) = (gx + c as f64 * cell, top + r as f64 * cell);
            let (t, (rr, gg, bb)) = if count == 0 {
                (0.0, (255.0, 255.0, 255.0))
            } else {
                let t = colour_t(lo, share);
                (t, ramp(t))
            };
            let _ = write!(
                svg,
                r##"<rect class="cell" x="{x:.1}" y="{y:.1}" width="{cell:.1}" height="{cell:.1}" fill="rgb({rr:.0},{gg:.0},{bb:.0})" stroke="#e4e4e4" stroke-width="0.5"><title>{}: true {}, predicted {}: {count} of {total} ({})</title></rect>"##,
                if r == c { "correct" } else { "error" },
                escape(&names[r]),
                escape(&names[c]),
                percent(share)
            );
            let colour = if count == 0 {
                "#aaa"
            } else if t > 0.55 {
                "white"
            } else {
                "black"
            };
            text(
                svg,
                (x + cell / 2.0, y + cell / 2.0 + count_size * 0.35),
                count_size,
                "middle",
                false,
                false,
                &format!(r#"fill="{colour}""#),
                &count.to_string(),
            );
        }
    }
}

/// The grid's frame and the class names: beside each row and above each column (turned
/// upright when wider than a cell).
fn class_labels(svg: &mut String, at: &GridAt, labels: &[String], label_size: f64, turned: bool) {
    let GridAt { gx, top, cell, k } = *at;
    let grid = cell * k as f64;
    let _ = write!(
        svg,
        r##"<rect x="{gx:.1}" y="{top:.1}" width="{grid:.1}" height="{grid:.1}" fill="none" stroke="#888"/>"##
    );
    for (i, label) in labels.iter().enumerate() {
        let p = i as f64 * cell + cell / 2.0;
        text(
            svg,
            (gx - 6.0, top + p + label_size * 0.35),
            label_size,
            "end",
            false,
            false,
            "",
            label,
        );
        if turned {
            text(
                svg,
                (gx + p + label_size * 0.35, top - 6.0),
                label_size,
                "start",
                false,
                true,
                "",
                label,
            );
        } else {
            text(
                svg,
                (gx + p, top - 6.0),
                label_size,
                "middle",
                false,
                false,
                "",
                label,
            );
        }
    }
}

/// The colour bar at `(bx, top, bar_h)`: the ramp from the lowest share (bottom) to 100 %
/// (top), then a white swatch for empty cells.
fn colour_bar(
    svg: &mut String,
    (bx, top, bar_h): (f64, f64, f64),
    lo: f64,
    bar_ticks: &[f64],
    tick_w: f64,
) {
    let swatch = 14.0;
    let bar = bar_h - swatch - 8.0;
    svg.push_str(r#"<defs><linearGradient id="share-ramp" x1="0" y1="1" x2="0" y2="0">"#);
    for (i, (r, g, b)) in RAMP.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<stop offset="{:.4}" stop-color="rgb({r:.0},{g:.0},{b:.0})"/>"#,
            i as f64 / (RAMP.len() - 1) as f64
        );
    }
    svg.push_str("</linearGradient></defs>");
    let _ = write!(
        svg,
        r##"<rect x="{bx:.1}" y="{top:.1}" width="16" height="{bar:.1}" fill="url(#share-ramp)" stroke="#888"/>"##
    );
    for &v in bar_ticks {
        let y = top + bar * (1.0 - colour_t(lo, v));
        let _ = write!(
            svg,
            r##"<line x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#444"/>"##,
            bx + 16.0,
            bx + 20.0
        );
        text(
            svg,
            (bx + 22.0, y + 3.5),
            BAR_TICK_SIZE,
            "start",
            false,
            false,
            "",
            &percent(v),
        );
    }
    let sy = top + bar + 8.0;
    let _ = write!(
        svg,
        r##"<rect x="{bx:.1}" y="{sy:.1}" width="16" height="{swatch:.1}" fill="white" stroke="#888"/>"##
    );
    text(
        svg,
        (bx + 22.0, sy + swatch / 2.0 + 3.5),
        BAR_TICK_SIZE,
        "start",
        false,
        false,
        "",
        "0",
    );
    let (bar_label, size) = fit(
        "share of the true class (log scale)",
        bar_h,
        11.0,
        8.0,
        false,
    );
    text(
        svg,
        (bx + 22.0 + tick_w + 16.0, top + bar_h / 2.0),
        size,
        "middle",
        false,
        true,
        "",
        &bar_label,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_the_range_with_round_steps() {
        assert_eq!(
            ticks(0.0, 1.0, 5, 0.0),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(ticks(1.0, 100.0, 4, 0.0), vec![50.0, 100.0]);
        // Whole epochs only, however short the run.
        assert_eq!(ticks(0.5, 2.5, 8, 1.0), vec![1.0, 2.0]);
    }

    #[test]
    fn log_ticks_are_decades_over_wide_ranges_and_round_values_within_one() {
        let wide = log_ticks(3e-9, 2.0);
        assert_eq!(wide.first(), Some(&1e-8));
        assert_eq!(wide.last(), Some(&1.0));
        assert!(wide.windows(2).all(|p| (p[1] / p[0] - 100.0).abs() < 1e-9));
        assert_eq!(log_ticks(2e-5, 0.5), vec![1e-4, 1e-3, 1e-2, 1e-1]);
        assert_eq!(log_ticks(0.15, 3.0), vec![0.2, 0.5, 1.0, 2.0]);
        let narrow: Vec<String> = log_ticks(1.85, 2.35).iter().map(|&t| fmt_tick(t)).collect();
        assert_eq!(narrow, ["1.9", "2", "2.1", "2.2", "2.3"]);
        assert_eq!(fmt_tick(1e-6), "1e-6");
        assert_eq!(fmt_tick(2e-5), "2e-5");
        assert_eq!(fmt_tick(2.5e-7), "2.5e-7");
        assert_eq!(fmt_tick(1e72), "1e72");
        assert_eq!(fmt_tick(0.01), "0.01");
    }

    #[test]
    fn long_text_shrinks_then_loses_its_middle() {
        assert_eq!(
            fit("abc", 100.0, 12.0, 9.0, false),
            ("abc".to_string(), 12.0)
        );
        let (s, size) = fit(&"x".repeat(20), 100.0, 12.0, 7.0, false);
        assert!(size < 12.0 && text_width(&s, size, false) <= 100.0);
        let (s, size) = fit(
            &format!("/a/{}/file.npy", "d".repeat(200)),
            200.0,
            12.0,
            9.0,
            false,
        );
        assert_eq!(size, 9.0);
        assert!(s.starts_with("/a/") && s.ends_with("file.npy") && s.contains('…'));
        assert!(text_width(&s, size, false) <= 200.0);
    }

    #[test]
    fn control_characters_never_reach_the_svg() {
        assert_eq!(escape("a\u{1}b<c"), "a?b&lt;c");
    }

    #[test]
    fn figures_are_svg_with_their_content() {
        let s = training_curve(
            &["title".to_string()],
            "epoch",
            &[Panel {
                title: "loss".to_string(),
                y_label: "J".to_string(),
                scale: Scale::Log,
                series: vec![Series {
                    name: "train",
                    colour: "#1f77b4",
                    points: vec![(1.0, 2.3), (2.0, 1.0)],
                }],
            }],
        );
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("<polyline") && s.contains(">title<"));
        let c = confusion_heat_map(
            &["a<b".to_string(), "c".to_string()],
            &[vec![3, 1], vec![0, 4]],
            &["confusion".to_string()],
        );
        assert!(c.contains("a&lt;b") && c.contains(">3<") && c.contains(">4<"));
        assert_eq!(c.matches(r#"class="cell""#).count(), 4);
    }

    #[test]
    fn a_log_panel_leaves_out_what_it_cannot_draw() {
        // Zero, negative and non-finite values have no place on a log axis; one point
        // still shows as a marker.
        let s = training_curve(
            &[],
            "iteration",
            &[Panel {
                title: "J".to_string(),
                y_label: "J − min J".to_string(),
                scale: Scale::Log,
                series: vec![Series {
                    name: "training",
                    colour: "#1f77b4",
                    points: vec![(1.0, 0.5), (2.0, 0.0), (3.0, -1.0), (4.0, f64::NAN)],
                }],
            }],
        );
        assert_eq!(s.matches("<circle").count(), 1, "{s}");
        assert!(!s.contains("NaN") && !s.contains("inf"), "{s}");
    }
}
