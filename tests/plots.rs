//! The figures of `train --plot` and `evaluate --plot`, read back from their SVG: nothing
//! drawn outside the canvas or over the curves, a logarithmic loss axis, the right word on
//! the x axis, and a confusion heat map whose every cell and label is written out.
//!
//! Text boxes are estimated from the character count (0.62 em a glyph, 0.70 em bold, which
//! is DejaVu Sans's width for digits and above its average for letters), an ascent of 0.8 em
//! and a descent of 0.25 em.

mod common;

use common::{run, s};

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// One SVG element: its tag, attributes and (for `<text>`) its content.
#[derive(Debug)]
struct El {
    tag: String,
    attrs: HashMap<String, String>,
    text: String,
}

impl El {
    fn num(&self, name: &str) -> f64 {
        self.attrs
            .get(name)
            .unwrap_or_else(|| panic!("{} without {name}: {self:?}", self.tag))
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number: {self:?}"))
    }

    fn attr(&self, name: &str) -> &str {
        self.attrs.get(name).map_or("", String::as_str)
    }

    /// (left, top, right, bottom) of a rectangle.
    fn rect(&self) -> (f64, f64, f64, f64) {
        let (x, y) = (self.num("x"), self.num("y"));
        (x, y, x + self.num("width"), y + self.num("height"))
    }

    /// The estimated box of a `<text>`, horizontal or turned by `rotate(-90 x y)`.
    fn text_box(&self) -> (f64, f64, f64, f64) {
        let (x, y, size) = (self.num("x"), self.num("y"), self.num("font-size"));
        let em = if self.attr("font-weight") == "bold" {
            0.70
        } else {
            0.62
        };
        let w = self.text.chars().count() as f64 * size * em;
        let (before, after) = match self.attr("text-anchor") {
            "middle" => (w / 2.0, w / 2.0),
            "end" => (w, 0.0),
            _ => (0.0, w),
        };
        match self.attrs.get("transform") {
            None => (x - before, y - 0.8 * size, x + after, y + 0.25 * size),
            Some(t) => {
                assert_eq!(
                    t,
                    &format!("rotate(-90 {} {})", self.attr("x"), self.attr("y")),
                    "only quarter turns about the text's anchor are expected"
                );
                (x - 0.8 * size, y - after, x + 0.25 * size, y + before)
            }
        }
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// Every element of an SVG file, in document order.
fn elements(svg: &str) -> Vec<El> {
    let mut out = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        if rest.starts_with('/') || rest.starts_with('!') || rest.starts_with('?') {
            continue;
        }
        let end = rest.find('>').expect("a tag ends");
        let inside = rest[..end].trim_end_matches('/');
        let (tag, mut attrs_text) = inside.split_once(' ').unwrap_or((inside, ""));
        let mut attrs = HashMap::new();
        while let Some(eq) = attrs_text.find("=\"") {
            let name = attrs_text[..eq].trim().to_string();
            let value_end = attrs_text[eq + 2..].find('"').expect("a quoted value ends");
            attrs.insert(name, unescape(&attrs_text[eq + 2..eq + 2 + value_end]));
            attrs_text = &attrs_text[eq + 2 + value_end + 1..];
        }
        let mut text = String::new();
        if tag == "text" {
            let close = rest.find("</text>").expect("a text ends");
            text = unescape(&rest[end + 1..close]);
        }
        out.push(El {
            tag: tag.to_string(),
            attrs,
            text,
        });
        rest = &rest[end + 1..];
    }
    out
}

fn canvas(els: &[El]) -> (f64, f64) {
    let svg = els
        .iter()
        .find(|e| e.tag == "svg")
        .expect("an <svg> element");
    (svg.num("width"), svg.num("height"))
}

fn intersects(a: (f64, f64, f64, f64), b: (f64, f64, f64, f64)) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

fn inside(p: (f64, f64), r: (f64, f64, f64, f64)) -> bool {
    p.0 >= r.0 && p.0 <= r.2 && p.1 >= r.1 && p.1 <= r.3
}

/// Asserts that every piece of text lies on the canvas, so that nothing is clipped.
fn assert_all_text_on_canvas(what: &str, els: &[El]) {
    let (w, h) = canvas(els);
    let texts: Vec<&El> = els.iter().filter(|e| e.tag == "text").collect();
    assert!(!texts.is_empty(), "{what}: no text");
    for t in texts {
        let b = t.text_box();
        assert!(
            b.0 >= 0.0 && b.1 >= 0.0 && b.2 <= w && b.3 <= h,
            "{what}: {:?} (box {b:?}) leaves the {w} × {h} canvas",
            t.text
        );
    }
}

/// The plotting areas of a chart: the framed rectangles the curves are drawn in.
fn plot_areas(els: &[El]) -> Vec<(f64, f64, f64, f64)> {
    els.iter()
        .filter(|e| e.tag == "rect" && e.attr("fill") == "none" && e.attr("class") != "legend")
        .map(El::rect)
        .collect()
}

fn polyline_points(e: &El) -> Vec<(f64, f64)> {
    e.attr("points")
        .split_whitespace()
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

/// The bold heading straight above a plotting area.
fn heading_of(els: &[El], area: (f64, f64, f64, f64)) -> &str {
    els.iter()
        .filter(|e| e.tag == "text" && e.attr("font-weight") == "bold")
        .filter(|e| {
            let x = e.num("x");
            x >= area.0 && x <= area.2 && e.num("y") < area.1
        })
        .max_by(|a, b| a.num("y").total_cmp(&b.num("y")))
        .map_or("", |e| e.text.as_str())
}

/// The y-axis tick labels left of a plotting area, as (value, y).
fn y_ticks(els: &[El], area: (f64, f64, f64, f64)) -> Vec<(f64, f64)> {
    els.iter()
        .filter(|e| e.tag == "text" && e.attr("text-anchor") == "end")
        .filter(|e| !e.attrs.contains_key("transform"))
        .filter(|e| {
            let (x, y) = (e.num("x"), e.num("y"));
            x < area.0 && x > area.0 - 60.0 && y >= area.1 - 2.0 && y <= area.3 + 8.0
        })
        .map(|e| {
            let v: f64 = e
                .text
                .parse()
                .unwrap_or_else(|_| panic!("tick label {:?} is not a number", e.text));
            (v, e.num("y"))
        })
        .collect()
}

fn train_plot(dir: &Path, name: &str, extra: &[&str]) -> String {
    let curve = dir.join(format!("{name}.svg"));
    let model = dir.join(format!("{name}.safetensors"));
    let mut args = vec![
        "train",
        "--backend",
        "cpu",
        "--out",
        s(&model),
        "--plot",
        s(&curve),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    ok(&run(&args));
    std::fs::read_to_string(&curve).unwrap()
}

#[test]
fn training_curve_legends_lie_outside_the_plotting_areas() {
    let dir = common::scratch("plots-legend");
    let svg = train_plot(&dir, "adam", &["--optimizer", "adam", "--epochs", "6"]);
    let els = elements(&svg);
    assert_all_text_on_canvas("adam curve", &els);
    let areas = plot_areas(&els);
    assert!(areas.len() >= 2, "{svg}");
    let legend: Vec<&El> = els
        .iter()
        .filter(|e| e.tag == "text")
        .filter(|e| {
            [
                "training",
                "validation",
                "training J",
                "validation log-loss",
            ]
            .contains(&e.text.as_str())
        })
        .collect();
    assert!(legend.len() >= 2, "no legend entries in {svg}");
    for t in legend {
        for &a in &areas {
            assert!(
                !intersects(t.text_box(), a),
                "legend entry {:?} {:?} overlaps the plotting area {a:?}",
                t.text,
                t.text_box()
            );
        }
    }
    assert!(
        els.iter()
            .any(|e| e.tag == "text" && e.text == "epoch" && e.attr("font-weight") != "bold"),
        "adam's x axis counts epochs"
    );
}

#[test]
fn lbfgs_curve_counts_iterations_on_a_logarithmic_loss_axis() {
    let dir = common::scratch("plots-lbfgs");
    let svg = train_plot(&dir, "lbfgs", &["--optimizer", "lbfgs", "--l2", "0.001"]);
    let els = elements(&svg);
    assert_all_text_on_canvas("lbfgs curve", &els);
    let texts: Vec<&str> = els
        .iter()
        .filter(|e| e.tag == "text")
        .map(|e| e.text.as_str())
        .collect();
    assert!(texts.contains(&"iteration"), "{texts:?}");
    assert!(!texts.iter().any(|t| t.contains("epoch")), "{texts:?}");
    // The title names the data, the optimizer and λ.
    let (w, _) = canvas(&els);
    let title: String = els
        .iter()
        .filter(|e| e.tag == "text" && e.num("y") < 60.0 && (e.num("x") - w / 2.0).abs() < 1.0)
        .map(|e| e.text.clone())
        .collect::<Vec<_>>()
        .join(" ");
    for needle in ["digits", "lbfgs", "λ = 0.001"] {
        assert!(title.contains(needle), "title {title:?} lacks {needle:?}");
    }

    // The training objective has its own panel, drawn as J − min J on a log axis whose
    // ticks are evenly spaced by decade and span at least two of them.
    let areas = plot_areas(&els);
    let objective = *areas
        .iter()
        .find(|&&a| heading_of(&els, a).contains("objective J"))
        .unwrap_or_else(|| panic!("no panel for the training objective in {svg}"));
    assert!(texts.iter().any(|t| t.contains("J − min J")), "{texts:?}");
    let ticks = y_ticks(&els, objective);
    assert!(ticks.len() >= 3, "{ticks:?}");
    let (lo, hi) = ticks
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), t| (a.min(t.0), b.max(t.0)));
    assert!(lo > 0.0 && hi / lo >= 100.0, "ticks {ticks:?}");
    let at = |v: f64| ticks.iter().find(|t| t.0 == v).unwrap().1;
    let per_decade = (at(lo) - at(hi)) / (hi / lo).log10();
    for &(v, y) in &ticks {
        let want = at(lo) - per_decade * (v / lo).log10();
        assert!((y - want).abs() < 1.0, "tick {v} at {y}, expected {want}");
    }

    // Validation log-loss (no λ term) is never drawn on the training objective's axis.
    let lines_in = |a: (f64, f64, f64, f64)| {
        els.iter()
            .filter(|e| e.tag == "polyline")
            .filter(|e| polyline_points(e).iter().all(|&p| inside(p, a)))
            .count()
    };
    assert_eq!(lines_in(objective), 1, "{svg}");
    let validation = *areas
        .iter()
        .find(|&&a| heading_of(&els, a).contains("validation log-loss"))
        .unwrap_or_else(|| panic!("no panel for the validation log-loss in {svg}"));
    assert_ne!(validation, objective);
    assert_eq!(lines_in(validation), 1, "{svg}");
}

/// Synthetic data with K classes, an L-BFGS model of it, and `evaluate --json --plot`:
/// the heat map's elements and the confusion matrix the JSON reports.
fn confusion(dir: &Path, k: usize, rows: usize) -> (Vec<El>, Vec<Vec<usize>>, String) {
    let (x, y) = (dir.join(format!("x{k}.npy")), dir.join(format!("y{k}.npy")));
    let (model, heat) = (
        dir.join(format!("m{k}.safetensors")),
        dir.join(format!("c{k}.svg")),
    );
    let (ks, rs) = (k.to_string(), rows.to_string());
    ok(&run(&[
        "synth",
        "--rows",
        &rs,
        "--features",
        "8",
        "--classes",
        &ks,
        "--separation",
        "1",
        "--out",
        s(&x),
        "--labels",
        s(&y),
        "--quiet",
    ]));
    ok(&run(&[
        "train",
        "--data",
        s(&x),
        "--labels",
        s(&y),
        "--optimizer",
        "lbfgs",
        "--epochs",
        "30",
        "--backend",
        "cpu",
        "--out",
        s(&model),
        "--quiet",
    ]));
    let o = run(&[
        "evaluate",
        "--model",
        s(&model),
        "--data",
        s(&x),
        "--labels",
        s(&y),
        "--backend",
        "cpu",
        "--json",
        "--plot",
        s(&heat),
    ]);
    ok(&o);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let matrix: Vec<Vec<usize>> = serde_json::from_value(report["confusion"].clone()).unwrap();
    let svg = std::fs::read_to_string(&heat).unwrap();
    (elements(&svg), matrix, svg)
}

fn rgb(fill: &str) -> (f64, f64, f64) {
    let inner = fill
        .strip_prefix("rgb(")
        .and_then(|f| f.strip_suffix(')'))
        .unwrap_or_else(|| panic!("fill {fill:?} is not rgb(…)"));
    let c: Vec<f64> = inner.split(',').map(|v| v.parse().unwrap()).collect();
    (c[0], c[1], c[2])
}

/// Every cell holds its count, as the JSON reports it, readable inside the cell; every class
/// is named on both axes without overlap; every non-zero cell is visibly tinted, and the
/// scale is explained by a colour bar; nothing leaves the canvas.
fn check_heat_map(k: usize, rows: usize) {
    let dir = common::scratch(&format!("plots-confusion-{k}"));
    let (els, matrix, svg) = confusion(&dir, k, rows);
    let what = format!("K = {k}");
    assert_all_text_on_canvas(&what, &els);
    let cells: Vec<&El> = els
        .iter()
        .filter(|e| e.tag == "rect" && e.attr("class") == "cell")
        .collect();
    assert_eq!(cells.len(), k * k, "{what}: cells");
    let (left, top) = cells.iter().fold((f64::MAX, f64::MAX), |(l, t), c| {
        (l.min(c.num("x")), t.min(c.num("y")))
    });
    let size = cells[0].num("width");
    let grid = (left, top, left + size * k as f64, top + size * k as f64);
    let mut seen = vec![vec![None; k]; k];
    for t in els.iter().filter(|e| e.tag == "text") {
        let (x, y) = (t.num("x"), t.num("y"));
        if !inside((x, y), grid) {
            continue;
        }
        let (c, r) = (
            ((x - left) / size).floor() as usize,
            ((y - top) / size).floor() as usize,
        );
        let count: usize = t.text.parse().unwrap_or_else(|_| {
            panic!(
                "{what}: text {:?} in cell ({r}, {c}) is not a count",
                t.text
            )
        });
        let cell = (
            left + c as f64 * size,
            top + r as f64 * size,
            left + (c + 1) as f64 * size,
            top + (r + 1) as f64 * size,
        );
        let b = t.text_box();
        assert!(
            b.0 >= cell.0 && b.2 <= cell.2 && b.1 >= cell.1 && b.3 <= cell.3,
            "{what}: count {count} {b:?} overflows its cell {cell:?}"
        );
        assert!(
            seen[r][c].is_none(),
            "{what}: two counts in cell ({r}, {c})"
        );
        seen[r][c] = Some(count);
    }
    let seen: Vec<Vec<usize>> = seen
        .into_iter()
        .enumerate()
        .map(|(r, row)| {
            row.into_iter()
                .enumerate()
                .map(|(c, v)| v.unwrap_or_else(|| panic!("{what}: no count in cell ({r}, {c})")))
                .collect()
        })
        .collect();
    assert_eq!(seen, matrix, "{what}: counts");
    assert!(
        (0..k).any(|r| (0..k).any(|c| r != c && matrix[r][c] > 0)),
        "{what}: the data should give some errors"
    );

    // Class names: one per row left of the grid, one per column above it, none overlapping.
    let names: Vec<String> = (0..k).map(|c| c.to_string()).collect();
    let labels = |side: &dyn Fn(&El) -> bool| -> Vec<&El> {
        els.iter()
            .filter(|e| e.tag == "text" && names.contains(&e.text) && side(e))
            .collect()
    };
    let rows_named = labels(&|e| e.text_box().2 <= grid.0);
    let cols_named = labels(&|e| e.text_box().3 <= grid.1);
    for (side, found) in [("rows", &rows_named), ("columns", &cols_named)] {
        let mut got: Vec<&str> = found.iter().map(|e| e.text.as_str()).collect();
        got.sort_by_key(|t| t.parse::<usize>().unwrap());
        assert_eq!(got, names, "{what}: labels of the {side}");
        for a in found.iter() {
            for b in found.iter() {
                assert!(
                    std::ptr::eq(*a, *b) || !intersects(a.text_box(), b.text_box()),
                    "{what}: labels {:?} and {:?} overlap",
                    a.text,
                    b.text
                );
            }
        }
    }

    // Colour: zero cells white, every other cell visibly tinted, however small its share.
    for cell in &cells {
        let (x, y) = (cell.num("x"), cell.num("y"));
        let (c, r) = (
            ((x - left) / size).round() as usize,
            ((y - top) / size).round() as usize,
        );
        let (red, green, blue) = rgb(cell.attr("fill"));
        let lightest = red.min(green).min(blue);
        if matrix[r][c] == 0 {
            assert_eq!(
                (red, green, blue),
                (255.0, 255.0, 255.0),
                "{what}: ({r}, {c})"
            );
        } else {
            assert!(
                lightest <= 240.0,
                "{what}: cell ({r}, {c}) with {} of {} is hardly tinted: {}",
                matrix[r][c],
                matrix[r].iter().sum::<usize>(),
                cell.attr("fill")
            );
        }
    }
    assert!(
        svg.contains("<linearGradient")
            && els
                .iter()
                .any(|e| e.tag == "rect" && e.attr("fill").starts_with("url(#")),
        "{what}: no colour bar"
    );
    assert!(
        els.iter().any(|e| e.tag == "text" && e.text == "100%"),
        "{what}: colour bar without its scale"
    );
}

#[test]
fn confusion_heat_map_for_two_classes() {
    check_heat_map(2, 300);
}

#[test]
fn confusion_heat_map_for_ten_classes() {
    check_heat_map(10, 1000);
}

#[test]
fn confusion_heat_map_for_forty_classes_writes_every_count_and_label() {
    check_heat_map(40, 2000);
}
