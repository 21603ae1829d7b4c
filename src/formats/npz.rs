//! SciPy's sparse `.npz` (`scipy.sparse.save_npz`, compressed or not): a zip archive of
//! `.npy` arrays. `format` names the layout (`csr`, `csc` or `coo`), `shape` is (m, n),
//! `data` holds the stored values, and `indices` with `indptr` (CSR, CSC) or `row` with
//! `col` (COO) place them. Every layout becomes CSR rows; within a row the columns are
//! sorted and a column given more than once gets the sum of its values, as SciPy's
//! `sum_duplicates` does.

use std::io::{Cursor, Read};
use std::path::Path;

use super::elements::{Num, element_f64, element_i64};
use super::memory::{available_memory, reserve};
use super::npy::{Npy, NpyType, npy_data_check, parse_npy};
use super::{FormatError, SparseRows, beyond_float32, fail};

/// The arrays of one archive, read out of their members.
struct Archive<'p> {
    path: &'p Path,
    zip: zip::ZipArchive<Cursor<&'p [u8]>>,
}

impl<'p> Archive<'p> {
    fn open(path: &'p Path, bytes: &'p [u8]) -> Result<Self, FormatError> {
        let zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            fail(
                path,
                format_args!("is not an .npz archive ({e}); save it with scipy.sparse.save_npz"),
            )
        })?;
        Ok(Archive { path, zip })
    }

    /// The bytes of member `name.npy`, no more than it declares, or `None` when the
    /// archive has no such member.
    fn member(&mut self, name: &str) -> Result<Option<Vec<u8>>, FormatError> {
        let path = self.path;
        let mut file = match self.zip.by_name(&format!("{name}.npy")) {
            Ok(file) => file,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(fail(path, format_args!("cannot read {name}.npy: {e}"))),
        };
        let size = file.size();
        if let Some(memory) = available_memory()
            && size > memory
        {
            return Err(fail(
                path,
                format_args!(
                    "{name}.npy holds {}, more than the {} of memory available",
                    crate::util::human_bytes(size),
                    crate::util::human_bytes(memory)
                ),
            ));
        }
        // The declared size is a claim of the archive: memory grows with what the member
        // really holds, never allocated up front from the claim.
        let mut out = Vec::with_capacity(size.min(1 << 20) as usize);
        // One byte beyond the declared size shows a member that holds more than it says.
        (&mut file)
            .take(size.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| fail(path, format_args!("cannot read {name}.npy: {e}")))?;
        if out.len() as u64 != size {
            return Err(fail(
                path,
                format_args!("{name}.npy does not hold the {size} bytes its entry declares"),
            ));
        }
        Ok(Some(out))
    }

    fn required(&mut self, name: &str) -> Result<Vec<u8>, FormatError> {
        self.member(name)?.ok_or_else(|| {
            fail(
                self.path,
                format_args!("has no {name}.npy; save it with scipy.sparse.save_npz"),
            )
        })
    }
}

/// A 1-D numeric array of an archive member.
struct Column<'a> {
    name: &'static str,
    num: Num,
    big_endian: bool,
    npy: Npy<'a>,
}

impl<'a> Column<'a> {
    fn parse(path: &Path, name: &'static str, bytes: &'a [u8]) -> Result<Self, FormatError> {
        let npy = parse_npy(path, bytes).map_err(|e| {
            fail(
                path,
                format_args!("{name}.npy: {}", strip(path, &e.message)),
            )
        })?;
        let Some(dtype @ NpyType::Num(num, big_endian)) = npy.dtype else {
            return Err(fail(
                path,
                format_args!("{name}.npy has dtype '{}'; expected numbers", npy.descr),
            ));
        };
        if npy.shape.len() != 1 {
            return Err(fail(path, format_args!("{name}.npy is not a 1-D array")));
        }
        npy_data_check(path, &npy, dtype).map_err(|e| {
            fail(
                path,
                format_args!("{name}.npy: {}", strip(path, &e.message)),
            )
        })?;
        Ok(Column {
            name,
            num,
            big_endian,
            npy,
        })
    }

    fn len(&self) -> usize {
        self.npy.shape[0]
    }

    fn chunk(&self, i: usize) -> &[u8] {
        let size = self.num.size();
        &self.npy.data[i * size..(i + 1) * size]
    }

    /// Element i as a non-negative index below `bound`.
    fn index(&self, path: &Path, i: usize, bound: u64, what: &str) -> Result<u64, FormatError> {
        let value = if self.num.is_float() {
            None
        } else {
            element_i64(self.chunk(i), self.num, self.big_endian)
        };
        match value {
            Some(v) if v >= 0 && (v as u64) < bound => Ok(v as u64),
            _ => Err(fail(
                path,
                format_args!(
                    "{}.npy entry {} is {}, not {what} from 0 to {}",
                    self.name,
                    i + 1,
                    element_f64(self.chunk(i), self.num, self.big_endian),
                    bound.saturating_sub(1)
                ),
            )),
        }
    }

    fn value(&self, i: usize) -> f64 {
        element_f64(self.chunk(i), self.num, self.big_endian)
    }
}

/// A member's message without the path, which the caller puts in front again.
fn strip<'m>(path: &Path, message: &'m str) -> &'m str {
    let shown = path.display().to_string();
    message
        .strip_prefix(&shown)
        .map_or(message, |rest| rest.trim_start_matches(':').trim_start())
}

/// The archive's layout: `csr`, `csc` or `coo`.
fn layout(path: &Path, bytes: &[u8]) -> Result<String, FormatError> {
    let npy = parse_npy(path, bytes).map_err(|e| {
        fail(
            path,
            format_args!("format.npy: {}", strip(path, &e.message)),
        )
    })?;
    let text = match npy.dtype {
        Some(NpyType::Bytes(_)) => String::from_utf8_lossy(npy.data).into_owned(),
        Some(NpyType::Unicode(..)) => npy
            .data
            .chunks(4)
            .filter_map(|c| char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => String::new(),
    };
    Ok(text.trim_end_matches('\0').to_string())
}

/// The rows of a SciPy sparse `.npz`, as CSR arrays.
pub(super) fn load_npz_sparse(path: &Path, bytes: &[u8]) -> Result<SparseRows, FormatError> {
    let mut archive = Archive::open(path, bytes)?;
    let format_bytes = archive.required("format")?;
    let layout = layout(path, &format_bytes)?;
    let shape_bytes = archive.required("shape")?;
    let shape = Column::parse(path, "shape", &shape_bytes)?;
    if shape.len() != 2 {
        return Err(fail(path, "shape.npy does not hold two numbers (m, n)"));
    }
    let (m, n) = (
        shape.index(path, 0, u64::MAX, "a row count")? as usize,
        shape.index(path, 1, u64::MAX, "a column count")? as usize,
    );
    if m == 0 || n == 0 {
        return Err(fail(path, format_args!("has shape ({m}, {n}): no data")));
    }
    if n > u32::MAX as usize + 1 {
        return Err(fail(
            path,
            format_args!("has {n} columns, more than sparse rows can address (2³²)"),
        ));
    }
    let data_bytes = archive.required("data")?;
    let data = Column::parse(path, "data", &data_bytes)?;
    let entries = match layout.as_str() {
        "csr" | "csc" => {
            let (indices_bytes, indptr_bytes) =
                (archive.required("indices")?, archive.required("indptr")?);
            let indices = Column::parse(path, "indices", &indices_bytes)?;
            let indptr = Column::parse(path, "indptr", &indptr_bytes)?;
            let major = if layout == "csr" { m } else { n };
            compressed_entries(
                path,
                &data,
                &indices,
                &indptr,
                major,
                (m, n),
                layout == "csr",
            )?
        }
        "coo" => {
            let (row_bytes, col_bytes) = (archive.required("row")?, archive.required("col")?);
            let rows = Column::parse(path, "row", &row_bytes)?;
            let cols = Column::parse(path, "col", &col_bytes)?;
            coo_entries(path, &data, &rows, &cols, (m, n))?
        }
        other => {
            return Err(fail(
                path,
                format_args!(
                    "holds a sparse matrix in format {other:?}; save it as csr, csc or coo (x.tocsr())"
                ),
            ));
        }
    };
    rows_of(path, (m, n), entries)
}

/// (row, column, value) of every stored value of a CSR (`by_row`) or CSC matrix.
fn compressed_entries(
    path: &Path,
    data: &Column<'_>,
    indices: &Column<'_>,
    indptr: &Column<'_>,
    major: usize,
    (m, n): (usize, usize),
    by_row: bool,
) -> Result<Vec<(usize, u32, f64)>, FormatError> {
    let nnz = data.len();
    if indices.len() != nnz {
        return Err(fail(
            path,
            format_args!(
                "indices.npy holds {} entries but data.npy holds {nnz}",
                indices.len()
            ),
        ));
    }
    if indptr.len() != major + 1 {
        return Err(fail(
            path,
            format_args!(
                "indptr.npy holds {} offsets; a shape of ({m}, {n}) needs {}",
                indptr.len(),
                major + 1
            ),
        ));
    }
    let minor = if by_row { n } else { m } as u64;
    let what = if by_row { "a column" } else { "a row" };
    let mut entries = Vec::with_capacity(nnz);
    let mut start = indptr.index(path, 0, nnz as u64 + 1, "an offset")?;
    if start != 0 {
        return Err(fail(path, "indptr.npy does not start at 0"));
    }
    for major_i in 0..major {
        let end = indptr.index(path, major_i + 1, nnz as u64 + 1, "an offset")?;
        if end < start {
            return Err(fail(
                path,
                format_args!(
                    "indptr.npy decreases at entry {} ({start} then {end}); offsets must not decrease",
                    major_i + 2
                ),
            ));
        }
        for i in start as usize..end as usize {
            let minor_i = indices.index(path, i, minor, what)? as usize;
            let (r, c) = if by_row {
                (major_i, minor_i)
            } else {
                (minor_i, major_i)
            };
            entries.push((r, c as u32, data.value(i)));
        }
        start = end;
    }
    if start != nnz as u64 {
        return Err(fail(
            path,
            format_args!("indptr.npy ends at {start} but data.npy holds {nnz} values"),
        ));
    }
    Ok(entries)
}

/// (row, column, value) of every stored value of a COO matrix.
fn coo_entries(
    path: &Path,
    data: &Column<'_>,
    rows: &Column<'_>,
    cols: &Column<'_>,
    (m, n): (usize, usize),
) -> Result<Vec<(usize, u32, f64)>, FormatError> {
    let nnz = data.len();
    for c in [rows, cols] {
        if c.len() != nnz {
            return Err(fail(
                path,
                format_args!(
                    "{}.npy holds {} entries but data.npy holds {nnz}",
                    c.name,
                    c.len()
                ),
            ));
        }
    }
    (0..nnz)
        .map(|i| {
            let r = rows.index(path, i, m as u64, "a row")? as usize;
            let c = cols.index(path, i, n as u64, "a column")? as u32;
            Ok((r, c, data.value(i)))
        })
        .collect()
}

/// CSR rows from entries in any order: sorted by row and column, repeats summed, every
/// value finite and within float32's range.
fn rows_of(
    path: &Path,
    (m, n): (usize, usize),
    mut entries: Vec<(usize, u32, f64)>,
) -> Result<SparseRows, FormatError> {
    entries.sort_by_key(|&(r, c, _)| (r, c));
    // The shape is only a claim: m + 1 offsets are reserved against the memory there is.
    let mut indptr: Vec<u64> = Vec::new();
    reserve(
        path,
        &mut indptr,
        m.saturating_add(1),
        format_args!("{m} row offsets"),
    )?;
    indptr.resize(m + 1, 0);
    let mut indices: Vec<u32> = Vec::with_capacity(entries.len());
    let mut sums: Vec<f64> = Vec::with_capacity(entries.len());
    let mut last = None;
    let mut rows = Vec::with_capacity(entries.len());
    for (r, c, v) in entries {
        match sums.last_mut() {
            Some(sum) if last == Some((r, c)) => *sum += v,
            _ => {
                indices.push(c);
                sums.push(v);
                rows.push(r);
                indptr[r + 1] += 1;
            }
        }
        last = Some((r, c));
    }
    for r in 0..m {
        indptr[r + 1] += indptr[r];
    }
    let mut values = Vec::with_capacity(sums.len());
    for ((&v, &c), &r) in sums.iter().zip(&indices).zip(&rows) {
        let at = format!("row {}, column {}", r + 1, c + 1);
        if !v.is_finite() {
            return Err(fail(path, format_args!("{at}: value {v} is not finite")));
        }
        let stored = v as f32;
        if !stored.is_finite() {
            return Err(fail(path, format_args!("{at}: {}", beyond_float32(v))));
        }
        values.push(stored);
    }
    Ok(SparseRows {
        n_rows: m,
        n_cols: n,
        indptr,
        indices,
        values,
    })
}
