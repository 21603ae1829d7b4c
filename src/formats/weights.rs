//! Per-sample weights, from a float `.npy` or a text file of one number per line.

use std::path::Path;

use super::csv::parse_feature;
use super::elements::decode_features;
use super::npy::{NpyType, npy_data_check, parse_npy};
use super::read::{Contents, read_file};
use super::{Format, FormatError, as_text, fail, numbered_lines, shape_text};

/// Per-sample weights from a float `.npy` of shape (m,) or (m, 1), or a text file with
/// one number per line. Each weight must be finite and ≥ 0, and there must be `m` of them
/// (`data` names the data file in that message).
pub fn load_weights(path: &Path, m: usize, data: &Path) -> Result<Vec<f32>, FormatError> {
    let format = Format::from_path(path);
    let bytes = read_file(path, Contents::of(format))?;
    let weights: Vec<f32> = if format == Some(Format::Npy) {
        let npy = parse_npy(path, &bytes)?;
        let rows = match npy.shape.as_slice() {
            [rows] | [rows, 1] => *rows,
            _ => {
                return Err(fail(
                    path,
                    format_args!(
                        "has shape {}; sample weights need shape (m,)",
                        shape_text(&npy.shape)
                    ),
                ));
            }
        };
        let (num, big_endian) = match npy.dtype {
            Some(NpyType::Num(num, big_endian)) if num.is_float() => (num, big_endian),
            _ => {
                return Err(fail(
                    path,
                    format_args!(
                        "has dtype '{}'; sample weights must be float32 or float64",
                        npy.descr
                    ),
                ));
            }
        };
        npy_data_check(path, &npy, NpyType::Num(num, big_endian))?;
        decode_features(path, npy.data, num, big_endian, (rows, 1), false)?
            .into_raw_vec_and_offset()
            .0
    } else {
        let text = as_text(path, &bytes)?;
        let mut weights = Vec::new();
        for (line, cell) in numbered_lines(text)
            .map(|(l, c)| (l, c.trim()))
            .filter(|(_, c)| !c.is_empty())
        {
            weights.push(parse_feature(path, cell, line, 1)?);
        }
        weights
    };
    if let Some((i, w)) = weights
        .iter()
        .enumerate()
        .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
    {
        return Err(fail(
            path,
            format_args!("weight {w} of sample {} is not a finite number ≥ 0", i + 1),
        ));
    }
    if weights.len() != m {
        return Err(FormatError {
            path: path.to_path_buf(),
            message: format!(
                "{} has {} weights but {} has {m} rows",
                path.display(),
                weights.len(),
                data.display()
            ),
        });
    }
    Ok(weights)
}
