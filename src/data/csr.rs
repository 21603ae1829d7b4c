//! X in compressed sparse row (CSR) form: for text, click logs and one-hot tables, where
//! almost every value is zero and only the stored ones cost memory.
//!
//! Row r's stored values are `values[indptr[r]..indptr[r + 1]]`, in the columns
//! `indices[indptr[r]..indptr[r + 1]]`. The offsets are u64, so a matrix may hold more
//! than 2³² values in all; column indices are u32 and values f32, the layout the device
//! reads. [`Csr::new`] validates once: offsets start at 0, never decrease and end at the
//! number of stored values; every index is below n; indices increase strictly within a
//! row (sorted, no repeats); every value is finite. [`Csr::from_entries`] takes entries
//! in any order and applies the documented rule for repeats: they are summed, as SciPy's
//! `sum_duplicates` and scikit-learn do.
//!
//! Each array is a [`CsrArray`]: owned, or a view into a memory-mapped file (a directory
//! of `.npy` arrays, an uncompressed `.npz`) whose bytes already have this layout, so a
//! large matrix is validated in place rather than copied; [`Csr::from_arrays`] takes
//! either with the same checks as [`Csr::new`].
//!
//! Written here rather than taken from `sprs`: the layout above is what the kernels bind
//! as it is (u64 offsets, u32 indices, f32 values, no conversion or copy), its checks
//! must name the row and column of a bad entry the way every other reader's errors do,
//! and the f64 reference needs only the two products below, a few lines each.

use ndarray::{Array2, ArrayView1, ArrayView2};

use crate::data::source::ChunkSource;
use crate::error::{Error, Result};
use crate::formats::{CsrArray, SparseRows};

/// A validated m × n sparse matrix in CSR form.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    n_rows: usize,
    n_cols: usize,
    indptr: CsrArray<u64>,
    indices: CsrArray<u32>,
    values: CsrArray<f32>,
}

fn invalid(detail: String) -> Error {
    Error::InvalidSparse { detail }
}

impl Csr {
    /// Checks and takes the three arrays of an `n_rows` × `n_cols` CSR matrix.
    pub fn new(
        n_rows: usize,
        n_cols: usize,
        indptr: Vec<u64>,
        indices: Vec<u32>,
        values: Vec<f32>,
    ) -> Result<Self> {
        Csr::from_arrays(n_rows, n_cols, indptr.into(), indices.into(), values.into())
    }

    /// [`Csr::new`] for arrays that may be views into a memory-mapped file: the same
    /// checks, made in place.
    pub fn from_arrays(
        n_rows: usize,
        n_cols: usize,
        indptr: CsrArray<u64>,
        indices: CsrArray<u32>,
        values: CsrArray<f32>,
    ) -> Result<Self> {
        if n_cols > u32::MAX as usize + 1 {
            return Err(invalid(format!(
                "{n_cols} columns is more than u32 column indices can address"
            )));
        }
        if indptr.len() != n_rows + 1 {
            return Err(invalid(format!(
                "{} row offsets for {n_rows} rows; expected {}",
                indptr.len(),
                n_rows + 1
            )));
        }
        if indices.len() != values.len() {
            return Err(invalid(format!(
                "{} column indices but {} values",
                indices.len(),
                values.len()
            )));
        }
        if indptr[0] != 0 || indptr[n_rows] != values.len() as u64 {
            return Err(invalid(format!(
                "row offsets run from {} to {}; expected 0 to {}, the number of stored values",
                indptr[0],
                indptr[n_rows],
                values.len()
            )));
        }
        let csr = Csr {
            n_rows,
            n_cols,
            indptr,
            indices,
            values,
        };
        for r in 0..n_rows {
            let (start, end) = (csr.indptr[r], csr.indptr[r + 1]);
            if end < start || end > csr.values.len() as u64 {
                return Err(invalid(format!(
                    "row {r}: offsets {start} to {end} do not lie in order within the {} stored values",
                    csr.values.len()
                )));
            }
            let (cols, vals) = csr.row(r);
            for (i, (&c, &v)) in cols.iter().zip(vals).enumerate() {
                if c as usize >= n_cols {
                    return Err(invalid(format!(
                        "row {r}: column index {c} is beyond the {n_cols} columns"
                    )));
                }
                if i > 0 && c <= cols[i - 1] {
                    return Err(invalid(format!(
                        "row {r}: column index {c} comes after {}; indices must increase within a row",
                        cols[i - 1]
                    )));
                }
                if !v.is_finite() {
                    return Err(invalid(format!(
                        "row {r}, column {c}: value {v} is not finite"
                    )));
                }
            }
        }
        Ok(csr)
    }

    /// A matrix from `(row, column, value)` entries in any order; entries of the same row
    /// and column are summed. Explicit zeros are kept as stored values.
    pub fn from_entries(
        n_rows: usize,
        n_cols: usize,
        mut entries: Vec<(usize, u32, f32)>,
    ) -> Result<Self> {
        if let Some(&(r, _, _)) = entries.iter().find(|e| e.0 >= n_rows) {
            return Err(invalid(format!(
                "row index {r} is beyond the {n_rows} rows"
            )));
        }
        entries.sort_by_key(|&(r, c, _)| (r, c));
        let mut indptr = vec![0u64; n_rows + 1];
        let mut indices: Vec<u32> = Vec::with_capacity(entries.len());
        let mut values: Vec<f32> = Vec::with_capacity(entries.len());
        let mut last: Option<(usize, u32)> = None;
        for (r, c, v) in entries {
            match values.last_mut() {
                Some(sum) if last == Some((r, c)) => *sum += v,
                _ => {
                    indices.push(c);
                    values.push(v);
                    indptr[r + 1] += 1;
                }
            }
            last = Some((r, c));
        }
        for r in 0..n_rows {
            indptr[r + 1] += indptr[r];
        }
        Csr::new(n_rows, n_cols, indptr, indices, values)
    }

    /// The stored values of a dense matrix: every entry that is not 0.
    pub fn from_dense(x: ArrayView2<'_, f32>) -> Result<Self> {
        let (m, n) = x.dim();
        let mut indptr = Vec::with_capacity(m + 1);
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        indptr.push(0);
        for row in x.outer_iter() {
            for (c, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    indices.push(c as u32);
                    values.push(v);
                }
            }
            indptr.push(values.len() as u64);
        }
        Csr::new(m, n, indptr, indices, values)
    }

    /// Number of rows, m.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Number of columns (features), n.
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    /// Number of stored values.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// The row offsets, m + 1 of them.
    pub fn indptr(&self) -> &[u64] {
        &self.indptr
    }

    /// The column index of every stored value, row after row.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// Every stored value, row after row.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Whether any of the three arrays is a view into a memory-mapped file.
    pub fn is_mapped(&self) -> bool {
        self.indptr.is_mapped() || self.indices.is_mapped() || self.values.is_mapped()
    }

    /// Row r's column indices and values.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (start, end) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
        (&self.indices[start..end], &self.values[start..end])
    }

    /// The given rows, in the given order, as a new matrix.
    pub fn select_rows(&self, rows: &[usize]) -> Csr {
        let mut indptr = Vec::with_capacity(rows.len() + 1);
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        indptr.push(0);
        for &r in rows {
            let (cols, vals) = self.row(r);
            indices.extend_from_slice(cols);
            values.extend_from_slice(vals);
            indptr.push(values.len() as u64);
        }
        Csr {
            n_rows: rows.len(),
            n_cols: self.n_cols,
            indptr: indptr.into(),
            indices: indices.into(),
            values: values.into(),
        }
    }

    /// The dense matrix, for tests and small data.
    pub fn to_dense(&self) -> Array2<f32> {
        let mut x = Array2::zeros((self.n_rows, self.n_cols));
        for r in 0..self.n_rows {
            let (cols, vals) = self.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                x[(r, c as usize)] = v;
            }
        }
        x
    }

    /// Z = XΘ + 1bᵀ (m, K) in f64: the sparse twin of [`crate::reference::logits`].
    pub fn logits_f64(&self, theta: ArrayView2<'_, f64>, bias: ArrayView1<'_, f64>) -> Array2<f64> {
        let k = theta.ncols();
        let mut z = Array2::zeros((self.n_rows, k));
        for (r, mut z_row) in z.outer_iter_mut().enumerate() {
            z_row.assign(&bias);
            let (cols, vals) = self.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                z_row.scaled_add(f64::from(v), &theta.row(c as usize));
            }
        }
        z
    }

    /// Xᵀ D (n, K) in f64 for D (m, K): the sparse twin of the gradient's product.
    pub fn transpose_times_f64(&self, d: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut g = Array2::zeros((self.n_cols, d.ncols()));
        for (r, d_row) in d.outer_iter().enumerate() {
            let (cols, vals) = self.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                g.row_mut(c as usize).scaled_add(f64::from(v), &d_row);
            }
        }
        g
    }
}

/// A sparse file's rows ([`crate::formats::load_sparse`]), checked.
impl TryFrom<SparseRows> for Csr {
    type Error = Error;

    fn try_from(x: SparseRows) -> Result<Self> {
        Csr::from_arrays(x.n_rows, x.n_cols, x.indptr, x.indices, x.values)
    }
}

/// Rows read as dense rows (zeros where nothing is stored), for the paths that take X
/// row by row: the device's chunks are dense, so what they hold is bounded by the chunk
/// size and the memory budget, not by the whole dense matrix.
impl ChunkSource for Csr {
    fn n_rows(&self) -> usize {
        self.n_rows
    }

    fn n_features(&self) -> usize {
        self.n_cols
    }

    fn read_rows(&self, start: usize, out: &mut [f32]) -> Result<()> {
        out.fill(0.0);
        for (i, row) in out.chunks_mut(self.n_cols.max(1)).enumerate() {
            let (cols, vals) = self.row(start + i);
            for (&c, &v) in cols.iter().zip(vals) {
                row[c as usize] = v;
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "a sparse matrix ({} × {}, {} stored values{})",
            self.n_rows,
            self.n_cols,
            self.nnz(),
            if self.is_mapped() {
                ", memory-mapped"
            } else {
                ""
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// A matrix with an empty row, an empty column and one row holding most values.
    fn awkward(m: usize, n: usize, seed: u64) -> Array2<f32> {
        let mut rng = SplitMix64::new(seed);
        Array2::from_shape_fn((m, n), |(r, c)| {
            let keep = match r {
                1 => false,
                2 => c != 3,
                _ => c != 3 && rng.below(10) == 0,
            };
            if keep { rng.normal() as f32 } else { 0.0 }
        })
    }

    #[test]
    fn products_match_the_dense_ones() {
        let x = awkward(23, 17, 5);
        let csr = Csr::from_dense(x.view()).unwrap();
        assert_eq!(csr.to_dense(), x);
        assert!(csr.row(1).0.is_empty(), "row 1 is empty");
        let mut rng = SplitMix64::new(9);
        let theta = Array2::from_shape_simple_fn((17, 4), || rng.normal());
        let bias = ndarray::Array1::from_shape_simple_fn(4, || rng.normal());
        let x64 = x.mapv(f64::from);
        let z = csr.logits_f64(theta.view(), bias.view());
        let dense = x64.dot(&theta) + &bias;
        assert!((&z - &dense).iter().all(|e| e.abs() < 1e-12));
        let d = Array2::from_shape_simple_fn((23, 4), || rng.normal());
        let g = csr.transpose_times_f64(d.view());
        assert!((&g - &x64.t().dot(&d)).iter().all(|e| e.abs() < 1e-12));
        assert!(
            g.row(3).iter().all(|&v| v == 0.0),
            "column 3 holds no value"
        );
    }

    #[test]
    fn rows_read_densely_and_selected_rows_match_the_dense_ones() {
        let x = awkward(9, 6, 3);
        let csr = Csr::from_dense(x.view()).unwrap();
        let mut rows = vec![1f32; 4 * 6];
        csr.read_rows(2, &mut rows).unwrap();
        assert_eq!(
            rows,
            x.slice(ndarray::s![2..6, ..])
                .iter()
                .copied()
                .collect::<Vec<_>>()
        );
        let picked = csr.select_rows(&[4, 1, 8]);
        assert_eq!(picked.to_dense(), x.select(ndarray::Axis(0), &[4, 1, 8]));
    }

    #[test]
    fn entries_in_any_order_are_sorted_and_repeats_summed() {
        let csr = Csr::from_entries(
            3,
            4,
            vec![
                (2, 1, 1.0),
                (0, 3, 2.0),
                (0, 1, 0.5),
                (2, 1, 0.25),
                (0, 3, -1.0),
            ],
        )
        .unwrap();
        assert_eq!(csr.indptr(), &[0, 2, 2, 3]);
        assert_eq!(csr.indices(), &[1, 3, 1]);
        assert_eq!(csr.values(), &[0.5, 1.0, 1.25]);
    }

    #[test]
    fn bad_structure_is_refused_naming_the_row() {
        let refused = |indptr: Vec<u64>, indices: Vec<u32>, values: Vec<f32>| {
            Csr::new(2, 3, indptr, indices, values)
                .unwrap_err()
                .to_string()
        };
        let offsets = refused(vec![0, 2], vec![0, 1], vec![1.0, 1.0]);
        assert!(offsets.contains("2 row offsets for 2 rows"), "{offsets}");
        let ends = refused(vec![0, 2, 1], vec![0, 1], vec![1.0, 1.0]);
        assert!(ends.contains("expected 0 to 2"), "{ends}");
        let decreasing = refused(vec![0, 5, 2], vec![0, 1], vec![1.0, 1.0]);
        assert!(
            decreasing.contains("row 0: offsets 0 to 5 do not lie in order"),
            "{decreasing}"
        );
        let unsorted = refused(vec![0, 2, 2], vec![1, 0], vec![1.0, 1.0]);
        assert!(
            unsorted.contains("row 0: column index 0 comes after 1"),
            "{unsorted}"
        );
        let repeated = refused(vec![0, 1, 3], vec![0, 2, 2], vec![1.0, 1.0, 1.0]);
        assert!(
            repeated.contains("row 1: column index 2 comes after 2"),
            "{repeated}"
        );
        let beyond = refused(vec![0, 1, 1], vec![3], vec![1.0]);
        assert!(
            beyond.contains("row 0: column index 3 is beyond the 3 columns"),
            "{beyond}"
        );
        let nan = refused(vec![0, 0, 1], vec![2], vec![f32::NAN]);
        assert!(
            nan.contains("row 1, column 2: value NaN is not finite"),
            "{nan}"
        );
        let lengths = refused(vec![0, 0, 1], vec![2, 1], vec![1.0]);
        assert!(
            lengths.contains("2 column indices but 1 values"),
            "{lengths}"
        );
    }
}
