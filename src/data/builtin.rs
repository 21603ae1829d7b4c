//! Data shipped inside the crate, for demos, tests and benchmarks.

use std::io::Read;

use ndarray::Array2;

use crate::data::dataset::Dataset;
use crate::error::{Error, Result};

/// The UCI "Optical Recognition of Handwritten Digits" test set as distributed with
/// scikit-learn (Alpaydin & Kaynak, doi:10.24432/C50P49, CC BY 4.0): 1797 rows, 64 pixel
/// counts 0–16, label 0–9 last. See src/data/README.md.
const DIGITS_CSV_GZ: &[u8] = include_bytes!("digits.csv.gz");

/// The digits data: 1797 × 64 features scaled by 1/16 to [0, 1], K = 10.
pub fn digits() -> Result<Dataset> {
    let damaged = |message: String| Error::Io {
        path: "embedded digits data".into(),
        message,
    };
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .map_err(|e| damaged(e.to_string()))?;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let values = line
            .split(',')
            .map(|v| v.trim().parse::<f32>())
            .collect::<std::result::Result<Vec<f32>, _>>()
            .map_err(|e| damaged(format!("row {}: {e}", i + 1)))?;
        let Some((label, features)) = values.split_last() else {
            continue;
        };
        x.extend(features.iter().map(|v| v / 16.0));
        y.push(*label as u32);
    }
    let m = y.len();
    let x =
        Array2::from_shape_vec((m, x.len() / m.max(1)), x).map_err(|e| damaged(e.to_string()))?;
    Dataset::new(x, &y, 10)
}
